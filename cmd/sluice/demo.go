package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/proxy"
)

// demoOptions are the inputs of `sluice demo`.
type demoOptions struct {
	duration time.Duration
	dataDir  string
	rate     float64
	verbose  bool
}

// The limits of the demo's flags.
const (
	demoMinDuration = 3 * time.Second
	demoMaxRate     = 1000
)

func newDemoCommand(o *demoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [--duration 60s]",
		Short: "Watch sluice absorb an outage: a flaky upstream, the proxy and load, all on loopback",
		Long: `Demo is the quick start. On loopback ports of its own it starts:

  - a flaky upstream that follows a schedule scaled to --duration: healthy;
    an outage (every request gets 503); recovery; a brownout (30 % of
    requests fail); a latency spike (some answers slower than the timeout);
    healthy again;
  - 'sluice serve' in process in front of it, with two routes taken from
    examples/sluice.yaml, their times scaled down: /agents/ (commands, POST
    with an Idempotency-Key; on_exhausted: queue) and /api/ (status reads,
    GET; failing fast while the breaker is open);
  - a load generator offering --rate requests a second, half to each route.

It shows live progress — requests, successes, retries, requests failed fast
by an open breaker, requests queued to the dead-letter queue and replayed
from it, and the breakers' states — on one redrawn line on a terminal, or as
plain lines every few seconds otherwise (in CI). The admin API's URL is
printed at the start, so you can run 'sluice health' or 'sluice dlq list
--admin URL' while it runs (the hint says 'go run ./cmd/sluice health' when
sluice is not on PATH and the demo was started with go run). At the end it prints a summary, including the
tally of the dead-letter queue: every queued request was replayed once the
upstream recovered (or parked, if it kept failing).

The data (the dead-letter queue and the demo's configuration) lives in a
temporary folder removed at the end, unless --data names one to keep.`,
		Example: `  sluice demo
  sluice demo --duration 15s`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.duration < demoMinDuration:
				return usageError{fmt.Errorf("--duration must be at least %v, got %v", demoMinDuration, o.duration)}
			case !(o.rate > 0 && o.rate <= demoMaxRate):
				return usageError{fmt.Errorf("--rate must be above 0 and at most %d, got %v", demoMaxRate, o.rate)}
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().DurationVarP(&o.duration, "duration", "d", time.Minute, "how long the load runs; the upstream's schedule is scaled to it")
	cmd.Flags().StringVar(&o.dataDir, "data", "", "keep the demo's data in `DIR` (default: a temporary folder, removed at the end)")
	cmd.Flags().Float64Var(&o.rate, "rate", 40, "requests per second offered to the proxy")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "log what the proxy does (queued and replayed requests, reloads) to stderr")
	_ = cmd.MarkFlagDirname("data")
	return cmd
}

// demoTimes are the proxy's times, scaled to the run.
type demoTimes struct {
	window     time.Duration // the breakers' failure-rate window
	openFor    time.Duration // how long a breaker stays open before probing
	replayPoll time.Duration // how often a replayer looks for due messages
	replayCap  time.Duration // the longest wait between replays of a message
	drainMax   time.Duration // how long the end waits for the queue to drain
}

func scaledTimes(d time.Duration) demoTimes {
	scale := func(div int64, lo, hi time.Duration) time.Duration {
		return min(max(d/time.Duration(div), lo), hi).Round(10 * time.Millisecond)
	}
	return demoTimes{
		window:     scale(12, time.Second, 10*time.Second),
		openFor:    scale(30, 300*time.Millisecond, 5*time.Second),
		replayPoll: scale(60, 100*time.Millisecond, time.Second),
		replayCap:  scale(20, 250*time.Millisecond, 5*time.Second),
		drainMax:   scale(5, 3*time.Second, 15*time.Second),
	}
}

// demoConfig is the demo's configuration: examples/sluice.yaml's network
// policy and its agents and api routes, with times fit for a run of
// minutes, the proxy and admin API on free loopback ports, and the store
// under dataDir. The log shows errors only, unless verbose.
func demoConfig(upstream, dataDir string, verbose bool, t demoTimes) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // a YAML double-quoted scalar
	level := "error"
	if verbose {
		level = "info"
	}
	return fmt.Appendf(nil, `# The configuration sluice demo runs: examples/sluice.yaml's network policy
# and routes, with times scaled to the run, on free loopback ports.
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
storage: {dlq: %s}
log: {level: %s, format: text}
shutdown_grace: 2s

policies:
  network:
    retry: {max_attempts: 3, backoff: exponential, base_delay: 25ms, max_delay: 250ms, jitter: full, budget: {ratio: 0.1}}
    circuit_breaker: {failure_rate: 0.5, window: %v, minimum_calls: 10, open_for: %v, half_open_calls: 2}
    bulkhead: {max_concurrent: 50, max_queue: 50, max_wait: 500ms}
    timeout: %v

routes:
  - name: agents                 # commands: POST with an Idempotency-Key
    match: {path_prefix: /agents/}
    upstreams: [%s]
    policy: network
    on_exhausted: queue          # store in the DLQ, answer 202 with the message id
  - name: api                    # status reads
    match: {path_prefix: /api/, methods: [GET, HEAD]}
    upstreams: [%s]
    policy: network
    on_exhausted: fail
`, q("bolt://"+filepath.ToSlash(filepath.Join(dataDir, "dlq.db"))), level,
		t.window, t.openFor, demoTryTimeout, q(upstream), q(upstream))
}

// demoRun is one run of the demo: what it started and what it watches.
type demoRun struct {
	opts        demoOptions
	times       demoTimes
	schedule    []demoPhase
	upstream    *flakyUpstream
	srv         *proxy.Server
	load        *loadGen
	proxyURL    string
	adminURL    string
	upstreamURL string
	dataDir     string
}

func (o *demoOptions) run(ctx context.Context, out, errOut io.Writer) (err error) {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	d := &demoRun{opts: *o, times: scaledTimes(o.duration), schedule: demoSchedule(o.duration)}
	d.dataDir = o.dataDir
	if d.dataDir == "" {
		dir, err := os.MkdirTemp("", "sluice-demo-")
		if err != nil {
			return err
		}
		d.dataDir = dir
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	} else if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
		return err
	}

	// The upstream, on a free loopback port. Nothing calls it before the
	// load starts, which is when its schedule's clock starts. It stops
	// after the proxy (deferred first).
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.upstreamURL = "http://" + upLn.Addr().String()
	d.upstream = &flakyUpstream{schedule: d.schedule}
	d.upstream.begin(time.Now())
	upSrv := &http.Server{Handler: d.upstream, ReadHeaderTimeout: 5 * time.Second}
	upDone := make(chan error, 1)
	go func() { upDone <- upSrv.Serve(upLn) }()
	defer func() {
		_ = upSrv.Close()
		<-upDone
	}()

	// `sluice serve` in process, with the demo's configuration written to
	// the data folder. It gets a signal channel of its own that nothing
	// writes to: the demo handles SIGINT itself, and the proxy must keep
	// running until the summary is taken.
	path := filepath.Join(d.dataDir, "sluice.yaml")
	if err := os.WriteFile(path, demoConfig(d.upstreamURL, d.dataDir, o.verbose, d.times), 0o600); err != nil {
		return err
	}
	ready := make(chan struct{})
	so := &serveOptions{
		configPath: path,
		signals:    make(chan os.Signal),
		proxyOptions: proxy.Options{
			ReplayPollInterval: d.times.replayPoll,
			ReplayBackoff: func(n int) time.Duration {
				return min(100*time.Millisecond<<min(n-1, 16), d.times.replayCap)
			},
		},
		ready: func(srv *proxy.Server, proxyAddr, adminAddr net.Addr) {
			d.srv = srv
			d.proxyURL, d.adminURL = "http://"+proxyAddr.String(), "http://"+adminAddr.String()
			close(ready)
		},
	}
	sctx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	srvDone := make(chan error, 1)
	go func() { srvDone <- so.run(sctx, errOut) }()
	select {
	case <-ready:
	case err := <-srvDone:
		return fmt.Errorf("demo: sluice serve: %w", err)
	}
	defer func() {
		stopServer()
		if serr := <-srvDone; serr != nil {
			err = errors.Join(err, fmt.Errorf("demo: sluice serve: %w", serr))
		}
	}()

	d.load = newLoadGen(d.proxyURL, o.rate)
	v := newDemoView(out, d)
	v.header()
	d.upstream.begin(time.Now())
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		d.load.run(loadCtx)
	}()
	v.watch(ctx, loadDone)
	interrupted := ctx.Err() != nil
	if !interrupted {
		v.drain(ctx)
	}
	v.summary(d.snapshot(), interrupted)
	if interrupted {
		return &exitError{code: 130} // the shell's status for a run ended by SIGINT
	}
	return nil
}
