package demo

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

	"github.com/sluice-go/sluice/proxy"
)

// Options are the inputs of a run.
type Options struct {
	// Duration is how long the load runs; the upstream's schedule is
	// scaled to it. At least MinDuration.
	Duration time.Duration
	// DataDir keeps the demo's data (the dead-letter queue and the
	// configuration). If empty, a temporary folder removed at the end.
	DataDir string
	// Rate is the requests per second offered to the proxy, above 0 and
	// at most MaxRate.
	Rate float64
	// Verbose logs what the proxy does to the error output.
	Verbose bool
	// Serve runs `sluice serve` in process on the configuration file at
	// path; Run needs it. It calls ready once both listeners are up, and
	// returns when ctx is done and the server has stopped.
	Serve ServeFunc
}

// ServeFunc runs the sidecar as `sluice serve` does, with opts given to
// proxy.New and the log written to errOut, and calls ready with the
// running server and its addresses. The command passes its own serve, so
// the demo runs exactly what a user runs.
type ServeFunc func(ctx context.Context, path string, opts proxy.Options, errOut io.Writer,
	ready func(srv *proxy.Server, proxyAddr, adminAddr net.Addr)) error

// The limits of Options.
const (
	MinDuration = 3 * time.Second
	MaxRate     = 1000
)

// ErrInterrupted is Run's error when ctx was cancelled (or SIGINT or
// SIGTERM came) before the load ended; the summary is printed all the same.
var ErrInterrupted = errors.New("demo: interrupted")

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

// session is one run of the demo: what it started and what it watches.
type session struct {
	opts        Options
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

// Run runs the demo: a flaky upstream, the sidecar in front of it (through
// o.Serve) and load, on loopback ports of their own, with live progress and
// a summary written to out. It returns ErrInterrupted if ctx ends first.
func Run(ctx context.Context, o Options, out, errOut io.Writer) (err error) {
	switch {
	case o.Serve == nil:
		return errors.New("demo: Options.Serve is nil")
	case o.Duration < MinDuration:
		return fmt.Errorf("demo: Duration must be at least %v, got %v", MinDuration, o.Duration)
	case !(o.Rate > 0 && o.Rate <= MaxRate):
		return fmt.Errorf("demo: Rate must be above 0 and at most %d, got %v", MaxRate, o.Rate)
	}
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	d := &session{opts: o, times: scaledTimes(o.Duration), schedule: demoSchedule(o.Duration)}
	d.dataDir = o.DataDir
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
	// the data folder. The demo handles SIGINT itself, and the proxy must
	// keep running until the summary is taken, so Serve's context outlives
	// a signal.
	path := filepath.Join(d.dataDir, "sluice.yaml")
	if err := os.WriteFile(path, demoConfig(d.upstreamURL, d.dataDir, o.Verbose, d.times), 0o600); err != nil {
		return err
	}
	ready := make(chan struct{})
	popts := proxy.Options{
		ReplayPollInterval: d.times.replayPoll,
		ReplayBackoff: func(n int) time.Duration {
			return min(100*time.Millisecond<<min(n-1, 16), d.times.replayCap)
		},
	}
	onReady := func(srv *proxy.Server, proxyAddr, adminAddr net.Addr) {
		d.srv = srv
		d.proxyURL, d.adminURL = "http://"+proxyAddr.String(), "http://"+adminAddr.String()
		close(ready)
	}
	sctx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	srvDone := make(chan error, 1)
	go func() { srvDone <- o.Serve(sctx, path, popts, errOut, onReady) }()
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

	d.load = newLoadGen(d.proxyURL, o.Rate)
	v := newDemoView(out, d)
	v.header()
	d.upstream.begin(time.Now())
	loadCtx, stopLoad := context.WithTimeout(ctx, o.Duration)
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
		return ErrInterrupted
	}
	return nil
}
