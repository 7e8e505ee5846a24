package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
	"github.com/sluice-go/sluice/timeout"
)

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	errBoom = errors.New("boom")
	ctx     = context.Background()
)

type fakeDLQ struct {
	qs  []dlq.QueueStats
	err error
}

func (f fakeDLQ) Stats(context.Context) ([]dlq.QueueStats, error) { return f.qs, f.err }

// scrape fetches h over real HTTP and parses the exposition.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	http.DefaultClient.CloseIdleConnections()
	return fams, string(body)
}

// value returns the value of the series of family name with exactly the
// given labels (name=value pairs), failing the test if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// traffic builds a registry on a fake clock and runs known traffic through
// every kind of policy.
func traffic(t *testing.T) (*registry.Registry, *sluicetest.FakeClock) {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	reg := registry.New(registry.Config{Clock: clock})
	t.Cleanup(func() { reg.Close() })

	// A retry: 3 failures then a success, each attempt taking 100 ms.
	rt, err := reg.Retry("fetch", retry.Config{MaxAttempts: 5, Backoff: retry.Constant(0), Jitter: retry.NoJitter,
		Budget: retry.NoBudget{}, SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = sluice.NewPipeline(rt).Do(ctx, func(context.Context) error {
		clock.Advance(100 * time.Millisecond)
		if n++; n <= 3 {
			return errBoom
		}
		return nil
	})
	if err != nil {
		t.Fatalf("retried call: %v", err)
	}

	// A breaker forced open by 5 failures, then rejecting 2 calls.
	br, _ := reg.Breaker("payments", breaker.Config{})
	p := sluice.NewPipeline(br)
	for range 7 {
		_ = p.Do(ctx, func(context.Context) error { return errBoom })
	}
	clock.Advance(20 * time.Second)

	// A full bulkhead: 2 permits taken, a third caller turned away.
	bh, _ := reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 2})
	bh.TryAcquire()
	bh.TryAcquire()
	bh.TryAcquire()
	t.Cleanup(func() { bh.Release(); bh.Release() })

	// A limiter of burst 2: 2 allowed, 1 rejected.
	lim, _ := reg.Limiter("api", ratelimit.Config{Rate: 1, Per: time.Minute, Burst: 2})
	for range 3 {
		lim.Allow()
	}

	// A timeout that passes once.
	to, _ := reg.Timeout("slow", timeout.Config{Timeout: time.Millisecond})
	_ = sluice.NewPipeline(to).Do(ctx, func(context.Context) error { return nil })
	_ = sluice.NewPipeline(to).Do(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })

	// A fallback answered once by the primary, once by an alternative.
	fb, _ := fallback.New(fallback.Config[string]{Name: "profile", Alternatives: []fallback.Alternative[string]{
		{Name: "replica", Fn: func(context.Context) (string, error) { return "replica", nil }},
	}})
	if err := reg.AddFallback(fb); err != nil {
		t.Fatal(err)
	}
	fp := sluice.NewPipeline(fb)
	_, _ = sluice.Get(ctx, fp, func(context.Context) (string, error) { return "ok", nil })
	_, _ = sluice.Get(ctx, fp, func(context.Context) (string, error) { return "", errBoom })

	// A cache: one miss, one hit.
	c, _ := cache.New[string](cache.Config{Name: "users", Clock: clock})
	if err := reg.AddCache(c); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, _, _ = c.Get(ctx, "u1", func(context.Context) (string, error) { return "ann", nil })
	}
	return reg, clock
}

func TestScrape(t *testing.T) {
	reg, _ := traffic(t)
	src := fakeDLQ{qs: []dlq.QueueStats{{Queue: "agents", Ready: 3, Parked: 1, Bytes: 512, OldestReady: t0}}}
	mon, _ := health.New(health.Config{Registry: reg})
	t.Cleanup(func() { mon.Close() })
	replays := func() []metrics.ReplayStats {
		return []metrics.ReplayStats{{Queue: "agents", Stats: dlq.ReplayerStats{Replayed: 4}}}
	}
	c, err := metrics.New(metrics.Config{Registry: reg, Health: mon, DLQ: []health.DLQSource{src, fakeDLQ{err: errBoom}}, Replays: replays})
	if err != nil {
		t.Fatal(err)
	}
	fams, body := scrape(t, c.Handler())
	t.Logf("scrape:\n%s", body)

	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_retry_attempts_total", []string{"operation", "fetch", "attempt", "1"}, 1},
		{"sluice_retry_attempts_total", []string{"operation", "fetch", "attempt", "2"}, 1},
		{"sluice_retry_attempts_total", []string{"operation", "fetch", "attempt", "3"}, 1},
		{"sluice_retry_attempts_total", []string{"operation", "fetch", "attempt", "4"}, 1},
		{"sluice_retry_attempts_total", []string{"operation", "fetch", "attempt", "5"}, 0},
		{"sluice_retry_success_total", []string{"operation", "fetch"}, 1},
		{"sluice_retry_calls_total", []string{"operation", "fetch"}, 1},
		{"sluice_retry_failures_total", []string{"operation", "fetch"}, 0},
		{"sluice_retry_duration_seconds", []string{"operation", "fetch"}, 1}, // sample count

		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "open"}, 1},
		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "closed"}, 0},
		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "half-open"}, 0},
		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "forced-open"}, 0},
		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "disabled"}, 0},
		{"sluice_circuit_breaker_state", []string{"name", "payments", "state", "metrics-only"}, 0},
		{"sluice_circuit_breaker_state_seconds", []string{"name", "payments"}, 20},
		{"sluice_circuit_breaker_failures_total", []string{"name", "payments"}, 5},
		{"sluice_circuit_breaker_calls_total", []string{"name", "payments"}, 5},
		{"sluice_circuit_breaker_rejected_total", []string{"name", "payments"}, 2},
		{"sluice_circuit_breaker_successes_total", []string{"name", "payments"}, 0},

		{"sluice_bulkhead_active_calls", []string{"resource", "db"}, 2},
		{"sluice_bulkhead_limit_calls", []string{"resource", "db"}, 2},
		{"sluice_bulkhead_admitted_calls_total", []string{"resource", "db"}, 2},
		{"sluice_bulkhead_rejected_calls_total", []string{"resource", "db"}, 1},
		{"sluice_bulkhead_utilization_ratio", []string{"resource", "db"}, 1},

		{"sluice_rate_limiter_allowed_total", []string{"name", "api"}, 2},
		{"sluice_rate_limiter_rejected_total", []string{"name", "api"}, 1},
		{"sluice_rate_limiter_tokens", []string{"name", "api"}, 0},

		{"sluice_timeout_calls_total", []string{"name", "slow"}, 2},
		{"sluice_timeout_exceeded_total", []string{"name", "slow"}, 1},

		{"sluice_fallback_total", []string{"name", "profile", "branch", "primary"}, 1},
		{"sluice_fallback_total", []string{"name", "profile", "branch", "alternative"}, 1},
		{"sluice_fallback_total", []string{"name", "profile", "branch", "default"}, 0},
		{"sluice_fallback_alternative_total", []string{"name", "profile", "alternative", "replica", "outcome", "answered"}, 1},

		{"sluice_cache_hits_total", []string{"name", "users"}, 1},
		{"sluice_cache_misses_total", []string{"name", "users"}, 1},
		{"sluice_cache_entries", []string{"name", "users"}, 1},

		{"sluice_dlq_depth", []string{"queue", "agents", "state", "ready"}, 3},
		{"sluice_dlq_depth", []string{"queue", "agents", "state", "parked"}, 1},
		{"sluice_dlq_oldest_age_seconds", []string{"queue", "agents"}, 20.4},
		{"sluice_dlq_bytes", []string{"queue", "agents"}, 512},
		{"sluice_dlq_stats_errors_total", nil, 1},
		{"sluice_dlq_replayed_total", []string{"queue", "agents"}, 4},

		// One breaker open (0), bulkhead rejecting 1 of 3 (2/3), retries
		// all successful (1): (0 + 2/3 + 1)/3.
		{"sluice_health_score", nil, 5.0 / 9},
		{"sluice_health_status", []string{"status", "critical"}, 1},
		{"sluice_health_status", []string{"status", "healthy"}, 0},
		{"sluice_health_component_score", []string{"component", "breakers"}, 0},
		{"sluice_health_alerts", []string{"type", "health_critical", "severity", "critical"}, 1},
		{"sluice_health_alerts", []string{"type", "high_rejection_rate", "severity", "warning"}, 1},
	}
	for _, c := range cases {
		if got := value(t, fams, c.name, c.labels...); !near(got, c.want) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The retry histogram: one call of 400 ms, in the 0.5 s bucket.
	var h *dto.Histogram
	for _, m := range fams["sluice_retry_duration_seconds"].GetMetric() {
		h = m.GetHistogram()
	}
	if h.GetSampleSum() != 0.4 || len(h.GetBucket()) != len(retry.MustNew(retry.Config{}).Stats().Duration.Bounds)+1 { // +Inf too
		t.Fatalf("histogram sum %v, %d buckets", h.GetSampleSum(), len(h.GetBucket()))
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		if b.GetUpperBound() >= 0.4 {
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}

	// Every family the collector describes was exported by this scrape,
	// except the probe families (no probe configured) and
	// sluice_shared_degraded (no shared component; TestSharedDegraded).
	for _, f := range metrics.Metrics() {
		if _, ok := fams[f.Name]; !ok && !strings.HasPrefix(f.Name, "sluice_probe_") && f.Name != "sluice_shared_degraded" {
			t.Errorf("family %s not exported", f.Name)
		}
		if got := fams[f.Name]; got != nil && strings.ToLower(got.GetType().String()) != f.Type {
			t.Errorf("family %s has type %v, want %s", f.Name, got.GetType(), f.Type)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestHealthFromMonitorOnly(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer up.Close()
	clock := sluicetest.NewFakeClock(t0)
	mon, _ := health.New(health.Config{Clock: clock,
		DLQ:    []health.DLQSource{fakeDLQ{qs: []dlq.QueueStats{{Queue: "q", Ready: 7, OldestReady: t0.Add(-time.Minute)}}}},
		Probes: []health.ProbeConfig{{Name: "up", URL: up.URL, FailureThreshold: 2}}})
	defer mon.Close()
	for range 2 {
		mon.Probe(ctx)
	}
	c, _ := metrics.New(metrics.Config{Health: mon})
	fams, _ := scrape(t, c.Handler())
	for _, x := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_probe_up", []string{"probe", "up"}, 0},
		{"sluice_probe_checks_total", []string{"probe", "up"}, 2},
		{"sluice_probe_failures_total", []string{"probe", "up"}, 2},
		{"sluice_dlq_depth", []string{"queue", "q", "state", "ready"}, 7}, // from the monitor's report
		{"sluice_dlq_oldest_age_seconds", []string{"queue", "q"}, 60},
		{"sluice_health_score", nil, 1},
		{"sluice_health_alerts", []string{"type", "probe_unhealthy", "severity", "critical"}, 1},
	} {
		if got := value(t, fams, x.name, x.labels...); got != x.want {
			t.Errorf("%s%v = %v, want %v", x.name, x.labels, got, x.want)
		}
	}
	if _, ok := fams["sluice_breaker_state"]; ok {
		t.Error("breaker metrics without a registry")
	}
}

func TestLint(t *testing.T) {
	reg, _ := traffic(t)
	mon, _ := health.New(health.Config{Registry: reg})
	defer mon.Close()
	c, _ := metrics.New(metrics.Config{Registry: reg, Health: mon,
		DLQ: []health.DLQSource{fakeDLQ{qs: []dlq.QueueStats{{Queue: "q", Ready: 1}}}}})
	// A pedantic registry checks every metric against its description.
	mfs := gather(t, c)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := count(mfs, "sluice_circuit_breaker_state"); n != 6 {
		t.Fatalf("breaker state series: %d, want 6 (every state listed)", n)
	}
}

func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range metrics.Metrics() {
		if !strings.HasPrefix(f.Name, "sluice_") || seen[f.Name] {
			t.Errorf("bad or duplicate name %q", f.Name)
		}
		seen[f.Name] = true
		if (f.Type == "counter") != strings.HasSuffix(f.Name, "_total") {
			t.Errorf("%s: a counter's name ends in _total and only a counter's", f.Name)
		}
	}
	// The SysManage resilience document's names and labels.
	for name, labels := range map[string][]string{
		"sluice_circuit_breaker_state":          {"name", "state"},
		"sluice_circuit_breaker_failures_total": {"name"},
		"sluice_retry_attempts_total":           {"operation", "attempt"},
		"sluice_retry_success_total":            {"operation"},
		"sluice_retry_duration_seconds":         {"operation"},
		"sluice_bulkhead_active_calls":          {"resource"},
		"sluice_bulkhead_rejected_calls_total":  {"resource"},
		"sluice_bulkhead_utilization_ratio":     {"resource"},
	} {
		i := slices.IndexFunc(metrics.Metrics(), func(f metrics.Family) bool { return f.Name == name })
		if i < 0 || !slices.Equal(metrics.Metrics()[i].Labels, labels) {
			t.Errorf("%s: missing or labels differ from %v", name, labels)
		}
	}
	// Metrics returns a copy.
	m := metrics.Metrics()
	m[0].Labels[0] = "changed"
	if metrics.Metrics()[0].Labels[0] == "changed" {
		t.Error("Metrics shares its label slices")
	}
}

// TestBadNameSkipped checks that a name that is not valid UTF-8 loses its
// series without failing the scrape.
func TestBadNameSkipped(t *testing.T) {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(t0)})
	defer reg.Close()
	if _, err := reg.Breaker("bad\xff", breaker.Config{}); err != nil {
		t.Skipf("breaker refuses the name: %v", err)
	}
	_, _ = reg.Breaker("good", breaker.Config{})
	fams, _ := scrape(t, metrics.Handler(reg))
	if got := len(fams["sluice_circuit_breaker_calls_total"].GetMetric()); got != 1 {
		t.Fatalf("series: %d, want only the good breaker's", got)
	}
}

func TestNotGlobal(t *testing.T) {
	reg, _ := traffic(t)
	_, _ = scrape(t, metrics.Handler(reg))
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "sluice_") {
			t.Fatalf("%s registered in the default registry", f.GetName())
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := metrics.New(metrics.Config{ScrapeTimeout: -1}); err == nil ||
		err.Error() != "metrics: Config.ScrapeTimeout must be >= 0, got -1ns" {
		t.Fatalf("negative timeout: %v", err)
	}
	if _, err := metrics.New(metrics.Config{DLQ: []health.DLQSource{nil}}); err == nil ||
		err.Error() != "metrics: Config.DLQ[0] must not be nil" {
		t.Fatalf("nil DLQ: %v", err)
	}
	c, err := metrics.New(metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(gather(t, c), ""); n != 1 {
		t.Fatalf("zero Config exports %d series, want 1 (dlq_stats_errors_total)", n)
	}
}

// gather collects c through a pedantic registry, which checks every metric
// against its description.
func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	preg := prometheus.NewPedanticRegistry()
	preg.MustRegister(c)
	mfs, err := preg.Gather()
	if err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	return mfs
}

// count returns the number of series of the named family, or of all
// families when name is empty.
func count(mfs []*dto.MetricFamily, name string) int {
	n := 0
	for _, f := range mfs {
		if name == "" || f.GetName() == name {
			n += len(f.GetMetric())
		}
	}
	return n
}
