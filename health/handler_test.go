package health_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestHandlers(t *testing.T) {
	reg, _ := newRegistry(t)
	br, _ := reg.Breaker("b", breaker.Config{})
	m := newMonitor(t, health.Config{Registry: reg})
	h := m.Handler()

	resp := get(t, h, http.MethodGet, "/health")
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		resp.Header.Get("Cache-Control") != "no-store" || doc["status"] != "healthy" || doc["score"] != 1.0 {
		t.Fatalf("healthy: %d %v %v", resp.StatusCode, resp.Header, doc)
	}

	br.ForceOpen() // the only breaker open: score 0, critical
	resp = get(t, h, http.MethodGet, "/health")
	doc = nil
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	if resp.StatusCode != http.StatusServiceUnavailable || doc["status"] != "critical" {
		t.Fatalf("critical: %d %v", resp.StatusCode, doc)
	}

	resp = get(t, h, http.MethodGet, "/health/report")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(body), "Overall Health Score: 0.00% (CRITICAL)") {
		t.Fatalf("report: %d %s", resp.StatusCode, body)
	}

	if resp := get(t, h, http.MethodPost, "/health"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /health: %d", resp.StatusCode)
	}
	if resp := get(t, h, http.MethodHead, "/health"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HEAD /health: %d", resp.StatusCode)
	}
}

// fullReport returns a report in which every part of the document is
// present.
func fullReport(t *testing.T) health.Report {
	reg, clock := newRegistry(t)
	br, _ := reg.Breaker("payments", breaker.Config{})
	br.ForceOpen()
	bh, _ := reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 2})
	bh.TryAcquire()
	t.Cleanup(bh.Release)
	rt, _ := reg.Retry("agents", retry.Config{MaxAttempts: 1, Budget: retry.NoBudget{}})
	calls(t, 12, errBoom, rt)
	lim, _ := reg.Limiter("api", ratelimit.Config{Rate: 5, Per: time.Second, Burst: 5})
	lim.Allow()
	up := newUpstream(t)
	up.code.Store(503)
	src := fakeDLQ{qs: []dlq.QueueStats{{Queue: "agents", Ready: 2000, OldestReady: t0.Add(-2 * time.Hour)}}}
	m := newMonitor(t, health.Config{Registry: reg, DLQ: []health.DLQSource{src, fakeDLQ{err: errBoom}},
		Probes: []health.ProbeConfig{{Name: "up", URL: up.URL, FailureThreshold: 1}}})
	clock.Advance(10 * time.Minute)
	m.Probe(context.Background())
	return m.Evaluate(context.Background())
}

// jsonKeys collects every object key in v, nested ones included.
func jsonKeys(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			into[k] = true
			jsonKeys(e, into)
		}
	case []any:
		for _, e := range x {
			jsonKeys(e, into)
		}
	}
}

// TestJSONDocumented checks that every key of the JSON document is
// described in docs/health.md, and the report's top-level shape.
func TestJSONDocumented(t *testing.T) {
	r := fullReport(t)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	top := slices.Sorted(func(yield func(string) bool) {
		for k := range doc {
			if !yield(k) {
				return
			}
		}
	})
	want := []string{"alerts", "breakers", "bulkheads", "components", "dlq", "dlq_errors", "generated_at",
		"limiters", "probes", "retries", "score", "status", "status_since", "window_seconds"}
	if !slices.Equal(top, want) {
		t.Fatalf("top-level keys %v, want %v", top, want)
	}
	keys := map[string]bool{}
	jsonKeys(doc, keys)
	md, err := os.ReadFile("../docs/health.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if !strings.Contains(string(md), "`"+k+"`") {
			t.Errorf("docs/health.md does not describe %q", k)
		}
	}
	for _, typ := range []string{health.AlertHealthCritical, health.AlertBreakerOpen, health.AlertHighFailureRate,
		health.AlertRetryFailureRate, health.AlertRejectionRate, health.AlertDLQAge, health.AlertDLQDepth,
		health.AlertDLQParked, health.AlertDLQUnavailable, health.AlertProbeUnhealthy} {
		if !strings.Contains(string(md), "`"+typ+"`") {
			t.Errorf("docs/health.md does not describe alert type %q", typ)
		}
	}
	// The round trip keeps every fact.
	var back health.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the document:\n%s\n%s", b, b2)
	}
}

// TestOutageReport runs calls through a retry and a breaker to a real
// server that fails for a while, with a probe watching it, and checks the
// report during and after the outage.
func TestOutageReport(t *testing.T) {
	up := newUpstream(t)
	reg, clock := newRegistry(t)
	br, _ := reg.Breaker("upstream", breaker.Config{OpenFor: 10 * time.Minute, SuccessThreshold: 1})
	rt, _ := reg.Retry("fetch", retry.Config{MaxAttempts: 1, Budget: retry.NoBudget{}})
	bh, _ := reg.Bulkhead("upstream", bulkhead.Config{MaxConcurrent: 4})
	m := newMonitor(t, health.Config{Registry: reg,
		Probes: []health.ProbeConfig{{Name: "upstream", URL: up.URL + "/healthz"}}})
	p := sluice.NewPipeline(rt, br, bh)
	call := func() error {
		return p.Do(context.Background(), func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.URL+"/work", nil)
			resp, err := http.DefaultClient.Do(req)
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
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	for range 10 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	m.Probe(context.Background())

	up.code.Store(http.StatusServiceUnavailable) // the outage
	for range 3 {
		clock.Advance(10 * time.Second)
		m.Probe(context.Background())
		for range 4 {
			_ = call()
		}
	}
	clock.Advance(5 * time.Minute)
	r := m.Evaluate(context.Background())
	text := r.String()
	t.Logf("during the outage:\n%s", text)
	for _, want := range []string{
		"Overall Health Score: 48.48% (CRITICAL)",
		"Open: 1",
		"Circuit breaker 'upstream' has been open for 310.0 seconds",
		"upstream: 0.0% utilization, 0.00% rejection rate (0/4 active, 0 queued)",
		"fetch: 45.45% success of 22 calls",
		"UNHEALTHY, 3 consecutive failures, last error: status 503 Service Unavailable",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	up.code.Store(http.StatusOK) // recovery
	for range 2 {
		clock.Advance(10 * time.Second)
		m.Probe(context.Background())
	}
	clock.Advance(5 * time.Minute) // the breaker's open period ends
	if err := call(); err != nil { // its probe call closes it
		t.Fatal(err)
	}
	calls := 0
	for range 10 {
		if call() == nil {
			calls++
		}
	}
	r = m.Evaluate(context.Background())
	t.Logf("after recovery:\n%s", r)
	if r.Status != health.StatusHealthy || len(r.Alerts) != 0 || calls != 10 || !r.Probes[0].Healthy {
		t.Fatalf("after recovery: %s %v, %d calls ok", r.Status, alertTypes(r), calls)
	}
}
