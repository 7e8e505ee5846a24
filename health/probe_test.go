package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/sluicetest"
)

// upstream is an httptest server answering /healthz with a status the test
// sets.
type upstream struct {
	*httptest.Server
	code atomic.Int64
	hits atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.code.Store(http.StatusOK)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		w.WriteHeader(int(u.code.Load()))
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(u.Close)
	return u
}

func probeReport(t *testing.T, m *health.Monitor) health.ProbeReport {
	t.Helper()
	r := m.Evaluate(context.Background())
	if len(r.Probes) != 1 {
		t.Fatalf("probes %+v", r.Probes)
	}
	return r.Probes[0]
}

// TestProbeThresholds walks a target through an outage: 3 failures to mark
// it unhealthy, 2 successes to mark it healthy again.
func TestProbeThresholds(t *testing.T) {
	up := newUpstream(t)
	clock := sluicetest.NewFakeClock(t0)
	var logs logRecords
	m := newMonitor(t, health.Config{Clock: clock, Logger: newLogger(&logs),
		Probes: []health.ProbeConfig{{Name: "up", URL: up.URL + "/healthz"}}})
	ctx := context.Background()

	steps := []struct {
		code        int
		healthy     bool
		consecFail  int
		consecOK    int
		alert       bool
		logged      string
		wantLastErr string
	}{
		{200, true, 0, 1, false, "", ""},
		{503, true, 1, 0, false, "", "status 503 Service Unavailable"},
		{500, true, 2, 0, false, "", "status 500 Internal Server Error"},
		{404, false, 3, 0, true, "health probe target unhealthy", "status 404 Not Found"},
		{503, false, 4, 0, true, "", "status 503 Service Unavailable"},
		{204, false, 0, 1, true, "", ""},
		{301, true, 0, 2, false, "health probe target healthy", ""},
	}
	for i, s := range steps {
		up.code.Store(int64(s.code))
		clock.Advance(10 * time.Second)
		m.Probe(ctx)
		r := m.Evaluate(ctx)
		p := r.Probes[0]
		if p.Healthy != s.healthy || p.ConsecutiveFailures != s.consecFail || p.ConsecutiveSuccesses != s.consecOK ||
			p.LastStatus != s.code || p.LastError != s.wantLastErr || p.Checks != int64(i+1) || !p.LastCheck.Equal(clock.Now()) {
			t.Fatalf("step %d: probe %+v", i, p)
		}
		if got := contains(alertTypes(r), "probe_unhealthy:up"); got != s.alert {
			t.Fatalf("step %d: alert %v, want %v (%v)", i, got, s.alert, alertTypes(r))
		}
		var msgs []string
		for _, rec := range logs.records(t) {
			if strings.HasPrefix(rec["msg"].(string), "health probe") {
				msgs = append(msgs, rec["msg"].(string))
			}
		}
		if s.logged == "" && len(msgs) != 0 || s.logged != "" && (len(msgs) != 1 || msgs[0] != s.logged) {
			t.Fatalf("step %d: probe logs %v, want %q", i, msgs, s.logged)
		}
	}
	if p := probeReport(t, m); p.Failures != 4 || !p.Since.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("final %+v", p)
	}
	if up.hits.Load() != 7 {
		t.Fatalf("server saw %d requests, want 7", up.hits.Load())
	}
}

// TestProbeTimeout checks that a check is cut off after Timeout on the
// Monitor's clock.
func TestProbeTimeout(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done() // hang until the client gives up
	}))
	t.Cleanup(srv.Close)
	clock := sluicetest.NewFakeClock(t0)
	m := newMonitor(t, health.Config{Clock: clock,
		Probes: []health.ProbeConfig{{Name: "slow", URL: srv.URL, Timeout: 3 * time.Second, FailureThreshold: 1}}})

	done := make(chan struct{})
	go func() { m.Probe(context.Background()); close(done) }()
	<-entered
	clock.Advance(3*time.Second - time.Nanosecond)
	select {
	case <-done:
		t.Fatal("probe gave up before its timeout")
	default:
	}
	clock.Advance(time.Nanosecond)
	<-done
	p := probeReport(t, m)
	if p.Healthy || p.LastError != "no answer within 3s" || p.LastStatus != 0 || p.LastLatencySeconds != 3 {
		t.Fatalf("probe %+v", p)
	}
}

func TestProbeRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	m := newMonitor(t, health.Config{Clock: sluicetest.NewFakeClock(t0),
		Probes: []health.ProbeConfig{{URL: url, FailureThreshold: 1}}})
	m.Probe(context.Background())
	p := probeReport(t, m)
	if p.Healthy || p.Name != url || !strings.Contains(p.LastError, "connection refused") {
		t.Fatalf("probe %+v", p)
	}
}

// TestProbeCanceled checks that a check cut short by the caller is not
// held against the target.
func TestProbeCanceled(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	m := newMonitor(t, health.Config{Clock: sluicetest.NewFakeClock(t0),
		Probes: []health.ProbeConfig{{URL: srv.URL, FailureThreshold: 1}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Probe(ctx); close(done) }()
	<-entered
	cancel()
	<-done
	if p := probeReport(t, m); p.Checks != 0 || !p.Healthy {
		t.Fatalf("canceled check was recorded: %+v", p)
	}
}

func TestProbeGate(t *testing.T) {
	up := newUpstream(t)
	m := newMonitor(t, health.Config{Clock: sluicetest.NewFakeClock(t0),
		Probes: []health.ProbeConfig{{Name: "up", URL: up.URL, FailureThreshold: 1, SuccessThreshold: 1}}})
	gate, err := m.ProbeGate("up")
	if err != nil || !gate() {
		t.Fatalf("gate: %v", err)
	}
	up.code.Store(502)
	m.Probe(context.Background())
	if gate() {
		t.Fatal("gate open while the target is down")
	}
	up.code.Store(200)
	m.Probe(context.Background())
	if !gate() {
		t.Fatal("gate closed after the target came back")
	}
	if _, err := m.ProbeGate("nope"); err == nil || err.Error() != `health: no probe named "nope"` {
		t.Fatalf("unknown probe: %v", err)
	}
}

// TestRun drives Run in a synctest bubble against a real server outside
// it: checks every Interval, evaluations every EvaluateEvery, a second Run
// refused, and every goroutine gone when ctx ends.
func TestRun(t *testing.T) {
	up := newUpstream(t)
	synctest.Test(t, func(t *testing.T) {
		// No keep-alive: an idle connection's reader would stay blocked on
		// the network, which the bubble cannot wait out.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		var logs logRecords
		m, err := health.New(health.Config{
			Client: client, Logger: newLogger(&logs), EvaluateEvery: 15 * time.Second,
			Probes: []health.ProbeConfig{{Name: "up", URL: up.URL, Interval: 10 * time.Second, FailureThreshold: 2, SuccessThreshold: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()

		time.Sleep(time.Millisecond) // the first check, at once
		if n := up.hits.Load(); n != 1 {
			t.Fatalf("checks after start: %d, want 1", n)
		}
		if err := m.Run(ctx); !errors.Is(err, health.ErrRunning) {
			t.Fatalf("second Run: %v", err)
		}
		up.code.Store(503)
		time.Sleep(20 * time.Second) // checks at 10 s and 20 s fail: unhealthy
		if n := up.hits.Load(); n != 3 {
			t.Fatalf("checks after 20 s: %d, want 3", n)
		}
		if p := probeReport(t, m); p.Healthy || p.ConsecutiveFailures != 2 {
			t.Fatalf("after two failures: %+v", p)
		}
		// The evaluation at 30 s (Run's second) logs the probe's alert.
		time.Sleep(10 * time.Second)
		var raised bool
		for _, rec := range logs.records(t) {
			raised = raised || rec["msg"] == "health alert raised" && rec["type"] == "probe_unhealthy"
		}
		if !raised {
			t.Fatal("Run's evaluation did not raise the probe alert")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := up.hits.Load(); n != 4 {
			t.Fatalf("checks after 30 s: %d, want 4", n)
		}
		// Stopped: it may be run again.
		ctx2, cancel2 := context.WithCancel(t.Context())
		cancel2()
		if err := m.Run(ctx2); err != nil {
			t.Fatalf("Run after stop: %v", err)
		}
	})
}

// TestProbesConcurrent probes several targets at once while handlers read
// the report, for the race detector.
func TestProbesConcurrent(t *testing.T) {
	up := newUpstream(t)
	var probes []health.ProbeConfig
	for _, n := range []string{"a", "b", "c"} {
		probes = append(probes, health.ProbeConfig{Name: n, URL: up.URL + "/" + n})
	}
	m := newMonitor(t, health.Config{Clock: sluicetest.NewFakeClock(t0), Probes: probes})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range 10 {
				m.Probe(context.Background())
				m.Evaluate(context.Background())
			}
		})
	}
	wg.Wait()
	for _, p := range m.Evaluate(context.Background()).Probes {
		if p.Checks != 30 || !p.Healthy {
			t.Fatalf("probe %+v", p)
		}
	}
}
