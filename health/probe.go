package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sluice-go/sluice"
)

// Probe defaults applied to zero ProbeConfig fields.
const (
	DefaultProbeInterval         = 10 * time.Second
	DefaultProbeTimeout          = 2 * time.Second
	DefaultProbeFailureThreshold = 3
	DefaultProbeSuccessThreshold = 2
)

// maxProbeBody is how much of a probe response's body is read (and thrown
// away) so that the connection can be reused.
const maxProbeBody = 64 << 10

// ProbeConfig is one upstream to check actively: GET URL every Interval.
// Only URL is required.
type ProbeConfig struct {
	// Name identifies the target in the report, alerts and ProbeGate. If
	// empty, the URL.
	Name string

	// URL is fetched with GET. It must be an absolute http or https URL.
	URL string

	// Interval is the time from the start of one check to the start of the
	// next. If zero, 10 s.
	Interval time.Duration

	// Timeout bounds each check, body included. If zero, 2 s, or Interval
	// if that is shorter.
	Timeout time.Duration

	// FailureThreshold is the number of consecutive failed checks (an
	// error, a timeout, or a status outside 200–399) that mark a healthy
	// target unhealthy. If zero, 3.
	FailureThreshold int

	// SuccessThreshold is the number of consecutive successful checks that
	// mark an unhealthy target healthy again. If zero, 2.
	SuccessThreshold int
}

func (c ProbeConfig) validate(i int) error {
	f := func(field string) string { return fmt.Sprintf("health: Config.Probes[%d].%s", i, field) }
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%s must be an absolute http or https URL, got %q", f("URL"), c.URL)
	case c.Interval < 0:
		return fmt.Errorf("%s must be >= 0, got %v", f("Interval"), c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("%s must be >= 0, got %v", f("Timeout"), c.Timeout)
	case c.FailureThreshold < 0:
		return fmt.Errorf("%s must be >= 0, got %d", f("FailureThreshold"), c.FailureThreshold)
	case c.SuccessThreshold < 0:
		return fmt.Errorf("%s must be >= 0, got %d", f("SuccessThreshold"), c.SuccessThreshold)
	}
	return nil
}

func (c ProbeConfig) withDefaults() ProbeConfig {
	if c.Name == "" {
		c.Name = c.URL
	}
	if c.Interval == 0 {
		c.Interval = DefaultProbeInterval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultProbeTimeout, c.Interval)
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultProbeFailureThreshold
	}
	if c.SuccessThreshold == 0 {
		c.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	return c
}

// ProbeReport is one probe target's state.
type ProbeReport struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Healthy starts true and flips after FailureThreshold consecutive
	// failures, and back after SuccessThreshold consecutive successes.
	Healthy bool `json:"healthy"`
	// Since is when Healthy last changed; zero if it never did.
	Since time.Time `json:"since,omitzero"`
	// Checks and Failures count the checks made and those that failed.
	Checks               int64 `json:"checks"`
	Failures             int64 `json:"failures"`
	ConsecutiveFailures  int   `json:"consecutive_failures"`
	ConsecutiveSuccesses int   `json:"consecutive_successes"`
	FailureThreshold     int   `json:"failure_threshold"`
	SuccessThreshold     int   `json:"success_threshold"`
	// LastCheck is when the last check finished; zero before the first.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastStatus is the last response's status code (0 if there was none),
	// LastError why the last check failed ("" if it succeeded).
	LastStatus         int     `json:"last_status"`
	LastError          string  `json:"last_error,omitempty"`
	LastLatencySeconds float64 `json:"last_latency_seconds"`
}

type probe struct {
	cfg ProbeConfig
	mu  sync.Mutex
	st  ProbeReport
}

func newProbe(cfg ProbeConfig) *probe {
	return &probe{cfg: cfg, st: ProbeReport{
		Name: cfg.Name, URL: cfg.URL, Healthy: true,
		FailureThreshold: cfg.FailureThreshold, SuccessThreshold: cfg.SuccessThreshold,
	}}
}

func (p *probe) report() ProbeReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// record applies one check's outcome and reports whether the target's
// health changed.
func (p *probe) record(now time.Time, latency time.Duration, status int, err error) (changed bool, st ProbeReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.st
	s.Checks++
	s.LastCheck = now
	s.LastStatus = status
	s.LastLatencySeconds = latency.Seconds()
	if err != nil {
		s.Failures++
		s.ConsecutiveFailures++
		s.ConsecutiveSuccesses = 0
		s.LastError = err.Error()
		if s.Healthy && s.ConsecutiveFailures >= p.cfg.FailureThreshold {
			s.Healthy, s.Since, changed = false, now, true
		}
	} else {
		s.ConsecutiveSuccesses++
		s.ConsecutiveFailures = 0
		s.LastError = ""
		if !s.Healthy && s.ConsecutiveSuccesses >= p.cfg.SuccessThreshold {
			s.Healthy, s.Since, changed = true, now, true
		}
	}
	return changed, *s
}

// errProbeTimeout is the cause of a check's context when its Timeout ends.
var errProbeTimeout = errors.New("health: probe timed out")

// probeOnce checks one target and records the outcome, unless ctx ended
// first (a stopping Run is not the target's fault).
func (m *Monitor) probeOnce(ctx context.Context, p *probe) {
	start := m.clock.Now()
	status, err := m.fetch(ctx, p.cfg)
	if ctx.Err() != nil {
		return
	}
	end := m.clock.Now()
	changed, st := p.record(end, end.Sub(start), status, err)
	if !changed {
		return
	}
	if st.Healthy {
		m.log.LogAttrs(ctx, slog.LevelInfo, "health probe target healthy",
			slog.String("probe", st.Name), slog.String("url", st.URL),
			slog.Int("consecutive_successes", st.ConsecutiveSuccesses))
	} else {
		m.log.LogAttrs(ctx, slog.LevelWarn, "health probe target unhealthy",
			slog.String("probe", st.Name), slog.String("url", st.URL),
			slog.Int("consecutive_failures", st.ConsecutiveFailures), slog.String("error", st.LastError))
	}
}

// fetch GETs the target under its Timeout, measured on the Monitor's clock,
// and drains the body so that the connection can be reused.
func (m *Monitor) fetch(ctx context.Context, cfg ProbeConfig) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := m.clock.NewTimer(cfg.Timeout)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-timer.C():
			cancel(errProbeTimeout)
		case <-done:
			timer.Stop()
		}
	}()
	defer func() { close(done); <-stopped }()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "sluice-health-probe")
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, m.timeoutOr(ctx, cfg, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody)); err != nil {
		return resp.StatusCode, m.timeoutOr(ctx, cfg, fmt.Errorf("reading body: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return resp.StatusCode, fmt.Errorf("status %s", resp.Status)
	}
	return resp.StatusCode, nil
}

func (m *Monitor) timeoutOr(ctx context.Context, cfg ProbeConfig, err error) error {
	if errors.Is(context.Cause(ctx), errProbeTimeout) {
		return fmt.Errorf("no answer within %v", cfg.Timeout)
	}
	return err
}

// Probe checks every probe target once, concurrently, and returns when all
// checks are done. Run calls it on its own schedule; call it directly for
// a check on demand or from a test.
func (m *Monitor) Probe(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range m.probes {
		wg.Go(func() { m.probeOnce(ctx, p) })
	}
	wg.Wait()
}

// ProbeGate returns a function reporting whether the named probe target is
// healthy, for a dlq.ReplayerConfig.Gate: replay once the target is back.
func (m *Monitor) ProbeGate(name string) (func() bool, error) {
	for _, p := range m.probes {
		if p.cfg.Name == name {
			return func() bool { return p.report().Healthy }, nil
		}
	}
	return nil, fmt.Errorf("health: no probe named %q", name)
}

// Run checks each probe target every Interval and evaluates the health
// every EvaluateEvery, until ctx is done; then it waits for its goroutines,
// releases the probe client's idle connections and returns nil. It returns
// ErrRunning at once if the Monitor is already running.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)
	defer m.Close()
	var wg sync.WaitGroup
	for _, p := range m.probes {
		wg.Go(func() { m.probeLoop(ctx, p) })
	}
	wg.Go(func() {
		for sluice.Sleep(ctx, m.clock, m.evalEvery) == nil {
			m.Evaluate(ctx)
		}
	})
	wg.Wait()
	return nil
}

func (m *Monitor) probeLoop(ctx context.Context, p *probe) {
	next := m.clock.Now()
	for {
		m.probeOnce(ctx, p)
		now := m.clock.Now()
		next = next.Add(p.cfg.Interval)
		for next.Before(now) { // the check overran: skip the missed starts
			next = next.Add(p.cfg.Interval)
		}
		if sluice.Sleep(ctx, m.clock, next.Sub(now)) != nil {
			return
		}
	}
}
