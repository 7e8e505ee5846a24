package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

// TestOutage scripts an outage of a real upstream (503s, then refused
// connections) behind a retry, a breaker and a bulkhead, with a probe
// watching it, and reads /metrics and /health/report from an admin server
// over HTTP during the outage and after recovery.
func TestOutage(t *testing.T) {
	var code atomic.Int64
	code.Store(200)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	defer up.Close()

	clock := sluicetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	reg := registry.New(registry.Config{Clock: clock})
	defer reg.Close()
	rt, _ := reg.Retry("agents.send", retry.Config{MaxAttempts: 3, Backoff: retry.Constant(0), Budget: retry.NoBudget{}})
	br, _ := reg.Breaker("agents", breaker.Config{FailureRateThreshold: 0.5, MinimumCalls: 10, OpenFor: 10 * time.Minute, SuccessThreshold: 1})
	bh, _ := reg.Bulkhead("agents", bulkhead.Config{MaxConcurrent: 8})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	mon, err := health.New(health.Config{Registry: reg, Clock: clock,
		Probes: []health.ProbeConfig{{Name: "agents", URL: up.URL + "/healthz"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	col, _ := metrics.New(metrics.Config{Registry: reg, Health: mon})
	admin := http.NewServeMux()
	admin.Handle("/metrics", col.Handler())
	admin.Handle("/health/", mon.Handler())
	admin.Handle("/health", mon.Handler())
	adm := httptest.NewServer(admin)
	defer adm.Close()

	p := sluice.NewPipeline(rt, br, bh)
	call := func() error {
		return p.Do(context.Background(), func(ctx context.Context) error {
			clock.Advance(50 * time.Millisecond) // each attempt takes 50 ms
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, up.URL+"/command", nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode >= 500 {
				return &sluice.StatusError{Code: resp.StatusCode}
			}
			return nil
		})
	}
	fetch := func(path string) (int, string) {
		resp, err := client.Get(adm.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for range 20 { // normal traffic
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	mon.Probe(context.Background())

	code.Store(http.StatusServiceUnavailable) // the outage
	for range 3 {
		clock.Advance(10 * time.Second)
		mon.Probe(context.Background())
		for range 5 {
			_ = call()
		}
	}
	clock.Advance(6 * time.Minute)

	status, js := fetch("/health")
	if status != http.StatusServiceUnavailable || !strings.Contains(js, `"status": "critical"`) {
		t.Fatalf("/health during the outage: %d\n%s", status, js)
	}
	_, report := fetch("/health/report")
	t.Logf("GET /health/report during the outage:\n%s", report)
	_, scrapeText := fetch("/metrics")
	t.Logf("GET /metrics during the outage (sluice_ lines):\n%s", sluiceLines(scrapeText))
	for _, want := range []string{
		`sluice_circuit_breaker_state{name="agents",state="open"} 1`,
		// 20 failed attempts against 20 successes trip the 50 % rule; the
		// 7th failing call's third attempt and the 8 calls after it are
		// rejected, and a rejection is not retried.
		`sluice_circuit_breaker_failures_total{name="agents"} 20`,
		`sluice_circuit_breaker_rejected_total{name="agents"} 9`,
		`sluice_retry_attempts_total{attempt="1",operation="agents.send"} 35`,
		`sluice_retry_attempts_total{attempt="3",operation="agents.send"} 7`,
		`sluice_retry_success_total{operation="agents.send"} 20`,
		`sluice_probe_up{probe="agents"} 0`,
		`sluice_health_status{status="critical"} 1`,
		`sluice_health_alerts{severity="warning",type="circuit_breaker_open"} 1`,
	} {
		if !strings.Contains(scrapeText, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, want := range []string{
		"Overall Health Score: 52.38% (CRITICAL)",
		"Circuit breaker 'agents' has been open for 370.0 seconds",
		"agents (" + up.URL + "/healthz): UNHEALTHY, 3 consecutive failures",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	code.Store(http.StatusOK) // recovery
	for range 2 {
		clock.Advance(10 * time.Second)
		mon.Probe(context.Background())
	}
	clock.Advance(5 * time.Minute) // the open period ends; the next call is the probe
	for range 10 {
		if err := call(); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	}
	status, _ = fetch("/health")
	_, report = fetch("/health/report")
	t.Logf("GET /health/report after recovery:\n%s", report)
	if status != 200 || !strings.Contains(report, "(HEALTHY)") {
		t.Fatalf("after recovery: %d\n%s", status, report)
	}
}

func sluiceLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "sluice_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
