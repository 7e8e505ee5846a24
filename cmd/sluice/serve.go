package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

// serveOptions are the inputs of `sluice serve`.
type serveOptions struct {
	// configPath is the configuration file; empty means the embedded
	// default (config.Default) with its data folder ./sluice-data.
	configPath string

	// proxyOptions are given to proxy.New, with Logger and ConfigPath
	// filled in: the demo sets its replay timing here.
	proxyOptions proxy.Options

	// signals, if not nil, replaces the process's SIGHUP, SIGINT and
	// SIGTERM, so a test can ask for a reload or a shutdown without
	// signalling itself.
	signals <-chan os.Signal
	// ready, if not nil, is called once the proxy and admin listeners are
	// bound and the server is starting, with their addresses.
	ready func(srv *proxy.Server, proxyAddr, adminAddr net.Addr)
}

func newServeCommand(o *serveOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the proxy and its admin API",
		Long: `Serve runs the sidecar: the reverse proxy on the configuration's listen
address and the admin API (metrics, health, dead-letter queue, configuration)
on admin.listen. Without --config it runs the embedded default configuration:
the proxy on 127.0.0.1:8080 in front of $SLUICE_UPSTREAM (default
http://127.0.0.1:9000), the admin API on 127.0.0.1:9901, and the dead-letter
queue in ./sluice-data.

Signals:
  SIGHUP           read the configuration file again and apply it in place;
                   a file that fails validation is refused, logged, and the
                   running configuration keeps serving
  SIGINT, SIGTERM  stop accepting, let in-flight requests finish within
                   shutdown_grace, close the dead-letter store; a second
                   signal exits at once

Logs go to stderr, at the level and in the format of the configuration's log
section.`,
		Example: `  sluice serve --config sluice.yaml
  SLUICE_UPSTREAM=http://127.0.0.1:3000 sluice serve`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "configuration `FILE` (default: the embedded configuration)")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func (o *serveOptions) run(ctx context.Context, stderr io.Writer) error {
	cfg, err := o.load()
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(stderr, "sluice serve: the configuration has %d problem(s):\n", len(errs))
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
			return &exitError{code: 1}
		}
		return err
	}
	log := newLogger(stderr, cfg.Log)
	redis.SetLogger(redisLog{log}) // go-redis's dial failures, in the log's format

	sigs := o.signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}

	popts := o.proxyOptions
	popts.Logger, popts.ConfigPath = log, o.configPath
	srv, err := proxy.New(cfg, popts)
	if err != nil {
		return err
	}
	pl, al, err := listen(cfg)
	if err != nil {
		_ = srv.Close()
		return err
	}
	source := o.configPath
	if source == "" {
		source = "embedded default"
	}
	log.Info("sluice serving", slog.String("version", version), slog.String("config", source),
		slog.String("proxy", "http://"+pl.Addr().String()), slog.String("admin", "http://"+al.Addr().String()),
		slog.Int("routes", len(cfg.Routes)), slog.String("dlq", config.MaskURL(cfg.Storage.DLQ.URL)))

	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, pl, al) }()
	if o.ready != nil {
		o.ready(srv, pl.Addr(), al.Addr())
	}

	stopping := false
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			log.Info("sluice stopped")
			return nil
		case <-ctxDone:
			ctxDone = nil
			stopping = true
			stop()
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP && !stopping:
				reload(srv, o.configPath, log)
			case sig == syscall.SIGHUP:
			case stopping:
				log.Warn("second signal: exiting without waiting", slog.String("signal", sig.String()))
				return &exitError{code: 1}
			default:
				log.Info("shutting down; send the signal again to exit at once", slog.String("signal", sig.String()),
					slog.Duration("grace", srv.Config().ShutdownGrace))
				stopping = true
				stop()
			}
		}
	}
}

// load reads the configuration file, or the embedded default.
func (o *serveOptions) load() (*config.Config, error) {
	if o.configPath == "" {
		return config.Default()
	}
	return config.Load(o.configPath)
}

// reload applies the configuration file again. The proxy logs the outcome
// and keeps the running configuration when the file is refused.
func reload(srv *proxy.Server, path string, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP ignored: running the embedded configuration, there is no file to read again")
		return
	}
	log.Info("SIGHUP: reloading the configuration", slog.String("config", path))
	_ = srv.ReloadFile()
}

// listen binds the proxy's and the admin API's addresses.
func listen(cfg *config.Config) (proxyLn, adminLn net.Listener, err error) {
	proxyLn, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		proxyLn.Close()
		return nil, nil, fmt.Errorf("admin.listen: %w", err)
	}
	return proxyLn, adminLn, nil
}

// redisLog passes go-redis's own messages (failed dials while Redis is
// away, which the limits and the store report themselves) to the process
// log at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// newLogger returns the process log: text (or JSON) on w at the
// configuration's level.
func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(lc.Level))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
