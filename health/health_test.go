package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var errBoom = errors.New("boom")

func newRegistry(t *testing.T) (*registry.Registry, *sluicetest.FakeClock) {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	reg := registry.New(registry.Config{Clock: clock})
	t.Cleanup(func() { reg.Close() })
	return reg, clock
}

func newMonitor(t *testing.T, cfg health.Config) *health.Monitor {
	t.Helper()
	m, err := health.New(cfg)
	if err != nil {
		t.Fatalf("health.New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// calls runs n calls through policies, each returning err.
func calls(t *testing.T, n int, err error, policies ...sluice.Policy) {
	t.Helper()
	p := sluice.NewPipeline(policies...)
	for range n {
		_ = p.Do(context.Background(), func(context.Context) error { return err })
	}
}

// oneShot is a retry policy that makes one attempt, so that its calls never
// wait on the fake clock.
func oneShot(t *testing.T, reg *registry.Registry, name string) *retry.Retry {
	t.Helper()
	r, err := reg.Retry(name, retry.Config{MaxAttempts: 1, Budget: retry.NoBudget{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func component(r health.Report, name string) (float64, bool) {
	for _, c := range r.Components {
		if c.Name == name {
			return c.Score, true
		}
	}
	return 0, false
}

func alertTypes(r health.Report) []string {
	var out []string
	for _, a := range r.Alerts {
		out = append(out, a.Type+":"+a.Subject)
	}
	return out
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		cfg  health.Config
		want string
	}{
		{"window", health.Config{Window: -time.Second}, "health: Config.Window must be >= 0, got -1s"},
		{"evaluate", health.Config{EvaluateEvery: -1}, "health: Config.EvaluateEvery must be >= 0"},
		{"failure rate", health.Config{Thresholds: health.Thresholds{FailureRate: 1.5}}, "Config.Thresholds.FailureRate must be <= 1, got 1.5"},
		{"rejection rate", health.Config{Thresholds: health.Thresholds{RejectionRate: 2}}, "Config.Thresholds.RejectionRate must be <= 1"},
		{"min calls", health.Config{Thresholds: health.Thresholds{MinCalls: -1}}, "Config.Thresholds.MinCalls must be >= 0"},
		{"nil dlq", health.Config{DLQ: []health.DLQSource{nil}}, "health: Config.DLQ[0] must not be nil"},
		{"url", health.Config{Probes: []health.ProbeConfig{{URL: "/healthz"}}}, `health: Config.Probes[0].URL must be an absolute http or https URL, got "/healthz"`},
		{"scheme", health.Config{Probes: []health.ProbeConfig{{URL: "ftp://x/"}}}, "Probes[0].URL must be an absolute http or https URL"},
		{"interval", health.Config{Probes: []health.ProbeConfig{{URL: "http://x/", Interval: -1}}}, "Config.Probes[0].Interval must be >= 0"},
		{"timeout", health.Config{Probes: []health.ProbeConfig{{URL: "http://x/", Timeout: -1}}}, "Config.Probes[0].Timeout must be >= 0"},
		{"failures", health.Config{Probes: []health.ProbeConfig{{URL: "http://x/", FailureThreshold: -2}}}, "Config.Probes[0].FailureThreshold must be >= 0, got -2"},
		{"successes", health.Config{Probes: []health.ProbeConfig{{URL: "http://x/", SuccessThreshold: -2}}}, "Config.Probes[0].SuccessThreshold must be >= 0, got -2"},
		{"duplicate", health.Config{Probes: []health.ProbeConfig{{URL: "http://x/"}, {Name: "http://x/", URL: "http://y/"}}},
			`health: Config.Probes[1].Name "http://x/" is already used by Probes[0]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := health.New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	m, err := health.New(health.Config{})
	if err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	r := m.Evaluate(context.Background())
	if r.Score != 1 || r.Status != health.StatusHealthy || len(r.Components) != 0 || len(r.Alerts) != 0 {
		t.Fatalf("zero Config report: %+v", r)
	}
}

func TestStatusFor(t *testing.T) {
	cases := []struct {
		score float64
		want  health.Status
		code  int
	}{
		{1, health.StatusHealthy, 200},
		{0.81, health.StatusHealthy, 200},
		{0.8, health.StatusDegraded, 200},
		{0.61, health.StatusDegraded, 200},
		{0.6, health.StatusCritical, 503},
		{0, health.StatusCritical, 503},
	}
	for _, c := range cases {
		got := health.StatusFor(c.score)
		if got != c.want || got.HTTPStatus() != c.code {
			t.Errorf("StatusFor(%v) = %v (%d), want %v (%d)", c.score, got, got.HTTPStatus(), c.want, c.code)
		}
	}
}

// TestScore checks the components and their mean as instances are added and
// break, step by step.
func TestScore(t *testing.T) {
	reg, _ := newRegistry(t)
	m := newMonitor(t, health.Config{Registry: reg})
	ctx := context.Background()

	type want struct {
		breakers, bulkheads, retries float64 // -1: component absent
		score                        float64
		status                       health.Status
	}
	check := func(step int, w want) health.Report {
		t.Helper()
		r := m.Evaluate(ctx)
		for name, v := range map[string]float64{"breakers": w.breakers, "bulkheads": w.bulkheads, "retries": w.retries} {
			got, ok := component(r, name)
			if v < 0 && ok || v >= 0 && (!ok || !near(got, v)) {
				t.Fatalf("step %d: component %s = %v (present %v), want %v", step, name, got, ok, v)
			}
		}
		if !near(r.Score, w.score) || r.Status != w.status {
			t.Fatalf("step %d: score %v %s, want %v %s", step, r.Score, r.Status, w.score, w.status)
		}
		return r
	}

	check(0, want{-1, -1, -1, 1, health.StatusHealthy})

	var brs []*breaker.Breaker
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		b, _ := reg.Breaker(n, breaker.Config{})
		brs = append(brs, b)
	}
	check(1, want{1, -1, -1, 1, health.StatusHealthy})

	brs[0].ForceOpen() // 4/5 closed: exactly 0.8 is degraded, not healthy
	r := check(2, want{0.8, -1, -1, 0.8, health.StatusDegraded})
	if r.Breakers.Total != 5 || r.Breakers.Open != 1 || r.Breakers.Closed != 4 {
		t.Fatalf("step 2: breaker summary %+v", r.Breakers)
	}

	bh, _ := reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 1})
	if !bh.TryAcquire() {
		t.Fatal("first permit refused")
	}
	for range 3 {
		if bh.TryAcquire() {
			t.Fatal("second permit granted")
		}
	}
	// 3 of 4 calls rejected: bulkheads 0.25; (0.8+0.25)/2.
	check(3, want{0.8, 0.25, -1, 0.525, health.StatusCritical})
	bh.Release()

	rt := oneShot(t, reg, "op")
	calls(t, 3, nil, rt)
	calls(t, 1, errBoom, rt)
	// (0.8+0.25+0.75)/3 is exactly 0.6: critical.
	check(4, want{0.8, 0.25, 0.75, 0.6, health.StatusCritical})
	calls(t, 1, nil, rt)
	check(5, want{0.8, 0.25, 0.8, (0.8 + 0.25 + 0.8) / 3, health.StatusDegraded})

	brs[0].Reset()
	check(6, want{1, 0.25, 0.8, (1 + 0.25 + 0.8) / 3, health.StatusDegraded})
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestRetryWindowRecovers checks that the retry component forgets an outage
// once it is older than the window.
func TestRetryWindowRecovers(t *testing.T) {
	reg, clock := newRegistry(t)
	rt := oneShot(t, reg, "op")
	lim, _ := reg.Limiter("api", ratelimit.Config{Rate: 1, Per: time.Second, Burst: 2})
	m := newMonitor(t, health.Config{Registry: reg, Window: 5 * time.Minute})
	ctx := context.Background()

	calls(t, 20, errBoom, rt) // the outage
	for range 4 {
		lim.Allow()
	}
	r := m.Evaluate(ctx)
	if got, _ := component(r, "retries"); got != 0 {
		t.Fatalf("during the outage: retries %v, want 0", got)
	}
	if l := r.Limiters[0]; l.WindowCalls != 4 || l.WindowRejected != 2 || l.RejectionRate != 0.5 {
		t.Fatalf("limiter window: %+v", l)
	}
	if got := alertTypes(r); !contains(got, "retry_failure_rate:op") {
		t.Fatalf("alerts %v, want retry_failure_rate:op", got)
	}

	clock.Advance(time.Minute)
	m.Evaluate(ctx) // a sample at +1m
	clock.Advance(5 * time.Minute)
	calls(t, 10, nil, rt)
	r = m.Evaluate(ctx)
	// Base is the +1m sample (20 failures already in it): 10 of 10 succeeded.
	if got, _ := component(r, "retries"); got != 1 {
		t.Fatalf("after the window: retries %v, want 1", got)
	}
	x := r.Retries[0]
	if x.WindowCalls != 10 || x.WindowFailures != 0 || x.Calls != 30 {
		t.Fatalf("retry report %+v", x)
	}
	if l := r.Limiters[0]; l.WindowCalls != 0 || l.Allowed != 2 || l.Rejected != 2 {
		t.Fatalf("limiter after the window: %+v", l)
	}
	if got := alertTypes(r); contains(got, "retry_failure_rate:op") {
		t.Fatalf("alert still raised after recovery: %v", got)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// logRecords captures what a Monitor logs.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecords) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	l.buf.Reset()
	return out
}

func newLogger(l *logRecords) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func TestBreakerAlertsAndLogs(t *testing.T) {
	reg, clock := newRegistry(t)
	// Trips only on 10 consecutive failures; rates never trip it.
	br, _ := reg.Breaker("payments", breaker.Config{FailureThreshold: 10, OpenFor: time.Hour})
	var logs logRecords
	m := newMonitor(t, health.Config{Registry: reg, Logger: newLogger(&logs)})
	ctx := context.Background()

	calls(t, 6, nil, br)
	calls(t, 4, errBoom, br) // 40 % of 10 calls: above 30 %
	r := m.Evaluate(ctx)
	if got := alertTypes(r); len(got) != 1 || got[0] != "high_failure_rate:payments" {
		t.Fatalf("alerts %v, want [high_failure_rate:payments]", got)
	}
	a := r.Alerts[0]
	if a.Severity != health.SeverityWarning || a.Value != 0.4 || a.Threshold != 0.3 || !a.Since.Equal(t0) ||
		a.Message != "High failure rate for circuit breaker 'payments': 40.00% of the last 10 calls" {
		t.Fatalf("alert %+v", a)
	}
	recs := logs.records(t)
	if len(recs) != 1 || recs[0]["msg"] != "health alert raised" || recs[0]["level"] != "WARN" ||
		recs[0]["type"] != "high_failure_rate" || recs[0]["subject"] != "payments" || recs[0]["value"] != 0.4 {
		t.Fatalf("logs %v", recs)
	}

	calls(t, 6, errBoom, br) // 10 consecutive: open
	clock.Advance(300 * time.Second)
	r = m.Evaluate(ctx)
	if got := alertTypes(r); contains(got, "circuit_breaker_open:payments") {
		t.Fatalf("open for exactly 300 s must not alert yet: %v", got)
	}
	// The breaker's failure-rate alert stays raised, with its first time;
	// the open breaker makes the score 0.
	want := []string{"health_critical:overall", "high_failure_rate:payments"}
	if got := alertTypes(r); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("alerts %v, want %v", got, want)
	}
	if a := r.Alerts[1]; !a.Since.Equal(t0) || a.Value != 0.625 {
		t.Fatalf("failure-rate alert after 300 s: %+v", a)
	}
	clock.Advance(20 * time.Second)
	r = m.Evaluate(ctx)
	var open health.Alert
	for _, a := range r.Alerts {
		if a.Type == health.AlertBreakerOpen {
			open = a
		}
	}
	if open.Value != 320 || open.Threshold != 300 || open.Subject != "payments" ||
		open.Message != "Circuit breaker 'payments' has been open for 320.0 seconds" {
		t.Fatalf("open alert %+v (all %v)", open, alertTypes(r))
	}
	if r.Breakers.Open != 1 || r.Breakers.Items[0].State != "open" || r.Breakers.Items[0].NextProbeSeconds != 3280 {
		t.Fatalf("breakers %+v", r.Breakers)
	}
	logs.records(t)

	br.Reset()
	m.Evaluate(ctx)
	recs = logs.records(t)
	cleared := map[string]bool{}
	for _, rec := range recs {
		if rec["msg"] == "health alert cleared" && rec["level"] == "INFO" {
			cleared[rec["type"].(string)] = true
		}
	}
	if !cleared["circuit_breaker_open"] || !cleared["high_failure_rate"] {
		t.Fatalf("cleared logs %v", recs)
	}
	// Nothing changed: nothing more is logged.
	m.Evaluate(ctx)
	if recs := logs.records(t); len(recs) != 0 {
		t.Fatalf("quiet evaluation logged %v", recs)
	}
}

// troubled returns a registry with a breaker forced open 301 s ago and a
// bulkhead that rejected one call of two.
func troubled(t *testing.T) *registry.Registry {
	reg, clock := newRegistry(t)
	br, _ := reg.Breaker("x", breaker.Config{})
	br.ForceOpen()
	clock.Advance(301 * time.Second)
	bh, _ := reg.Bulkhead("y", bulkhead.Config{MaxConcurrent: 1})
	bh.TryAcquire()
	bh.TryAcquire()
	t.Cleanup(bh.Release)
	return reg
}

func TestThresholdsOff(t *testing.T) {
	m := newMonitor(t, health.Config{Registry: troubled(t), Thresholds: health.Thresholds{
		BreakerOpenFor: -1, FailureRate: -1, RejectionRate: -1,
	}})
	r := m.Evaluate(context.Background())
	// Only the overall status remains: (0 + 0.5)/2 is critical.
	if got := alertTypes(r); len(got) != 1 || got[0] != "health_critical:overall" {
		t.Fatalf("alerts %v", got)
	}
	if a := r.Alerts[0]; a.Severity != health.SeverityCritical || a.Value != 0.25 || a.Threshold != 0.6 {
		t.Fatalf("critical alert %+v", a)
	}

	m2 := newMonitor(t, health.Config{Registry: troubled(t)})
	got := alertTypes(m2.Evaluate(context.Background()))
	want := []string{"health_critical:overall", "circuit_breaker_open:x", "high_rejection_rate:y"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("default thresholds: alerts %v, want %v", got, want)
	}
}

// fakeDLQ is a DLQSource with canned answers.
type fakeDLQ struct {
	qs  []dlq.QueueStats
	err error
}

func (f fakeDLQ) Stats(context.Context) ([]dlq.QueueStats, error) { return f.qs, f.err }

func TestDLQ(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	src := fakeDLQ{qs: []dlq.QueueStats{
		{Queue: "agents", Ready: 1500, Parked: 3, Bytes: 4096, OldestReady: t0.Add(-2 * time.Hour), OldestParked: t0.Add(-time.Hour)},
		{Queue: "mail", Ready: 2, OldestReady: t0.Add(-time.Minute)},
	}}
	m := newMonitor(t, health.Config{Clock: clock, DLQ: []health.DLQSource{src, fakeDLQ{err: errBoom}}})
	r := m.Evaluate(context.Background())
	if len(r.DLQ) != 2 {
		t.Fatalf("queues %+v", r.DLQ)
	}
	if q := r.DLQ[0]; q.Depth != 1503 || q.Parked != 3 || q.OldestAgeSeconds != 7200 || q.Bytes != 4096 {
		t.Fatalf("agents %+v", q)
	}
	want := []string{"dlq_age:agents", "dlq_depth:agents", "dlq_unavailable:DLQ[1]"}
	if got := alertTypes(r); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("alerts %v, want %v", got, want)
	}
	if a := r.Alerts[0]; a.Value != 7200 || a.Threshold != 3600 {
		t.Fatalf("age alert %+v", a)
	}
	if len(r.DLQErrors) != 1 || r.DLQErrors[0] != "DLQ[1]: boom" {
		t.Fatalf("errors %v", r.DLQErrors)
	}

	// Explicit limits replace the defaults; parked is checked when asked.
	m = newMonitor(t, health.Config{Clock: clock, DLQ: []health.DLQSource{src},
		Thresholds: health.Thresholds{DLQ: health.DLQThresholds{MaxParked: 2}}})
	if got := alertTypes(m.Evaluate(context.Background())); strings.Join(got, " ") != "dlq_parked:agents" {
		t.Fatalf("alerts %v", got)
	}
}

// TestConcurrentEvaluate runs evaluations against traffic for the race
// detector, and checks the last one sees every call.
func TestConcurrentEvaluate(t *testing.T) {
	reg, _ := newRegistry(t)
	rt := oneShot(t, reg, "op")
	br, _ := reg.Breaker("b", breaker.Config{})
	m := newMonitor(t, health.Config{Registry: reg})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				calls(t, 1, nil, rt, br)
				m.Evaluate(context.Background())
			}
		})
	}
	wg.Wait()
	r := m.Evaluate(context.Background())
	if r.Retries[0].WindowCalls != 200 || r.Breakers.Items[0].Calls != 200 {
		t.Fatalf("after 200 calls: %+v %+v", r.Retries[0], r.Breakers.Items[0])
	}
}

// An open breaker's report explains it with the figures that tripped it,
// after its window has emptied: in the JSON (failure_rate, window_calls and
// trip) and in the text; half-open, it reports the probes.
func TestOpenBreakerReportExplainsTheTrip(t *testing.T) {
	reg, clock := newRegistry(t)
	br, _ := reg.Breaker("payments", breaker.Config{
		FailureRateThreshold: 0.5, MinimumCalls: 10, WindowType: breaker.TimeWindow, WindowDuration: 10 * time.Second,
		OpenFor: 30 * time.Second, HalfOpenCalls: 2, SuccessThreshold: 3,
	})
	m := newMonitor(t, health.Config{Registry: reg})
	ctx := context.Background()
	calls(t, 4, nil, br)
	calls(t, 6, errBoom, br) // 60 % of 10 calls: open at t0
	clock.Advance(20 * time.Second)

	r := m.Evaluate(ctx)
	x := r.Breakers.Items[0]
	if x.State != "open" || x.FailureRate != 0.6 || x.WindowCalls != 10 {
		t.Errorf("open breaker reported %s, failure rate %v of %d calls; want open, 0.6 of 10", x.State, x.FailureRate, x.WindowCalls)
	}
	want := health.TripReport{At: t0, Reason: "failure-rate", Calls: 10, Failures: 6, FailureRate: 0.6, ConsecutiveFailures: 6, Cause: "boom"}
	if x.Trip == nil || *x.Trip != want {
		t.Errorf("Trip = %+v, want %+v", x.Trip, want)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(js); !strings.Contains(s, `"trip":{"at":"2026-03-01T12:00:00Z","reason":"failure-rate","calls":10,"failures":6,"failure_rate":0.6,"slow_call_rate":0,"consecutive_failures":6,"cause":"boom"}`) {
		t.Errorf("JSON lacks the trip: %s", s)
	}
	text := r.String()
	for _, w := range []string{
		"payments: open for 20s (next probe in 10s), failure rate 60.00% of 10 calls, 0 rejected",
		"tripped at 12:00:00 UTC by the failure rate: 60.00% of 10 calls failed; cause: boom",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("text report lacks %q:\n%s", w, text)
		}
	}

	clock.Advance(10 * time.Second) // half-open
	calls(t, 1, nil, br)
	r = m.Evaluate(ctx)
	x = r.Breakers.Items[0]
	if x.State != "half-open" || x.WindowCalls != 1 || x.FailureRate != 0 || x.ProbeSuccesses != 1 {
		t.Errorf("half-open breaker reported %s, %v of %d calls, %d probe successes; want the one probe", x.State, x.FailureRate, x.WindowCalls, x.ProbeSuccesses)
	}
	if text := r.String(); !strings.Contains(text, "payments: half-open for 0s, 1 probe succeeded, 0 in flight, 0 rejected") {
		t.Errorf("text report lacks the probes:\n%s", text)
	}
}
