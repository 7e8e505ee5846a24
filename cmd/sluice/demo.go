package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-go/sluice/cmd/sluice/internal/demo"
	"github.com/sluice-go/sluice/proxy"
)

// demoOptions are the inputs of `sluice demo`; the demo itself is package
// internal/demo.
type demoOptions = demo.Options

// newDemoCommand is `sluice demo`: flags, their checks, and `sluice serve`
// handed to the demo to run in process.
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
			case o.Duration < demo.MinDuration:
				return usageError{fmt.Errorf("--duration must be at least %v, got %v", demo.MinDuration, o.Duration)}
			case !(o.Rate > 0 && o.Rate <= demo.MaxRate):
				return usageError{fmt.Errorf("--rate must be above 0 and at most %d, got %v", demo.MaxRate, o.Rate)}
			}
			o.Serve = serveInProcess
			err := demo.Run(cmd.Context(), *o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if errors.Is(err, demo.ErrInterrupted) {
				return &exitError{code: 130} // the shell's status for a run ended by SIGINT
			}
			return err
		},
	}
	cmd.Flags().DurationVarP(&o.Duration, "duration", "d", time.Minute, "how long the load runs; the upstream's schedule is scaled to it")
	cmd.Flags().StringVar(&o.DataDir, "data", "", "keep the demo's data in `DIR` (default: a temporary folder, removed at the end)")
	cmd.Flags().Float64Var(&o.Rate, "rate", 40, "requests per second offered to the proxy")
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "log what the proxy does (queued and replayed requests, reloads) to stderr")
	_ = cmd.MarkFlagDirname("data")
	return cmd
}

// serveInProcess is `sluice serve` for the demo. It gets a signal channel
// of its own that nothing writes to: the demo handles SIGINT itself, and
// the proxy must keep running until the summary is taken.
func serveInProcess(ctx context.Context, path string, opts proxy.Options, errOut io.Writer,
	ready func(srv *proxy.Server, proxyAddr, adminAddr net.Addr)) error {
	so := &serveOptions{configPath: path, signals: make(chan os.Signal), proxyOptions: opts, ready: ready}
	return so.run(ctx, errOut)
}
