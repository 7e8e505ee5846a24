package demo

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

// serve runs the configuration at path as the command's serve does, on
// the loopback ports it names (port 0: free ones).
func serve(ctx context.Context, path string, opts proxy.Options, _ io.Writer,
	ready func(*proxy.Server, net.Addr, net.Addr)) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	opts.ConfigPath = path
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return errors.Join(err, srv.Close())
	}
	al, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return errors.Join(err, pl.Close(), srv.Close())
	}
	ready(srv, pl.Addr(), al.Addr())
	return srv.Serve(ctx, pl, al)
}

func TestRunChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Duration: time.Minute, Rate: 1}, "Options.Serve is nil"},
		{Options{Duration: time.Second, Rate: 1, Serve: serve}, "Duration must be at least 3s, got 1s"},
		{Options{Duration: time.Minute, Rate: 0, Serve: serve}, "Rate must be above 0 and at most 1000, got 0"},
		{Options{Duration: time.Minute, Rate: 1001, Serve: serve}, "Rate must be above 0 and at most 1000, got 1001"},
	} {
		if err := Run(context.Background(), tc.o, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}

// A run whose context ends early stops the load, still prints the summary,
// removes its temporary data and says it was interrupted.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dataDir string
	o := Options{Duration: time.Hour, Rate: 10, Serve: func(sctx context.Context, path string, opts proxy.Options, errOut io.Writer,
		ready func(*proxy.Server, net.Addr, net.Addr)) error {
		return serve(sctx, path, opts, errOut, func(srv *proxy.Server, p, a net.Addr) {
			dataDir = filepath.Dir(path)
			ready(srv, p, a)
			cancel() // the operator's ^C, once everything runs
		})
	}}
	var out strings.Builder
	if err := Run(ctx, o, &out, io.Discard); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "sluice demo: 1h0m0s of load") || !strings.Contains(out.String(), "summary after ") {
		t.Errorf("the output lacks the header or the summary:\n%s", out.String())
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary data folder %q is left: %v", dataDir, err)
	}
}

func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 500 * time.Microsecond: "<1ms", 1234567 * time.Microsecond: "1.2s",
		12345 * time.Microsecond: "12ms", 90*time.Second + 400*time.Millisecond: "1m30s",
	} {
		if got := roundDuration(d); got != want {
			t.Errorf("roundDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
