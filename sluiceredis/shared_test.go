package sluiceredis_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/sluiceredis"
)

// Every component of this package with shared state reports its mode the
// same way.
var (
	_ sluice.SharedComponent = (*sluiceredis.Limiter)(nil)
	_ sluice.SharedComponent = (*sluiceredis.BreakerSync)(nil)
	_ sluice.SharedComponent = (*dlq.Failover)(nil)
)

// The limiter and the failover store are sluice.SharedComponents: with
// Redis killed, the health report raises shared_degraded for each and the
// metrics say sluice_shared_degraded 1; once Redis is back and each has
// noticed, both clear.
func TestSharedComponentsReportDegraded(t *testing.T) {
	srv := redistest.Start(t)
	lim := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 100, Burst: 10, Timeout: 50 * time.Millisecond, RetryInterval: 20 * time.Millisecond})
	fo := newFailover(t, srv, "", 200*time.Millisecond, nil)
	shared := map[string]sluice.SharedComponent{"limiter:route": lim, "dlq": fo.f}
	mon, err := health.New(health.Config{Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	col, err := metrics.New(metrics.Config{Shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	degradedSeries := func() string { return scrapeCollector(t, col) }
	take(t, lim, 1)
	waitShared(t, fo.f)
	if r := mon.Evaluate(bg); len(r.Alerts) != 0 {
		t.Fatalf("with Redis up: alerts %+v", r.Alerts)
	}

	srv.Kill()
	if _, err := lim.Take(bg, 1); err == nil {
		t.Fatal("Take with Redis killed succeeded")
	}
	if _, err := fo.f.Put(bg, dlq.Message{Queue: "q"}); err != nil {
		t.Fatal(err)
	}
	r := mon.Evaluate(bg)
	if len(r.Alerts) != 2 || r.Alerts[0].Subject != "dlq" || r.Alerts[1].Subject != "limiter:route" || r.Alerts[0].Type != health.AlertSharedDegraded {
		t.Fatalf("with Redis killed: alerts %+v", r.Alerts)
	}
	if got := degradedSeries(); !strings.Contains(got, `sluice_shared_degraded{component="dlq"} 1`) || !strings.Contains(got, `sluice_shared_degraded{component="limiter:route"} 1`) {
		t.Fatalf("with Redis killed the metrics say:\n%s", got)
	}

	srv.Restart()
	waitShared(t, fo.f)
	for deadline := time.Now().Add(5 * time.Second); lim.Degraded(); {
		if time.Now().After(deadline) {
			t.Fatal("the limiter is still degraded 5s after Redis came back")
		}
		_, _ = lim.Take(bg, 1)           // after RetryInterval, a call tries Redis again
		time.Sleep(5 * time.Millisecond) // bounded polling for RetryInterval to pass
	}
	if r := mon.Evaluate(bg); len(r.Alerts) != 0 {
		t.Fatalf("after the restart: alerts %+v", r.Alerts)
	}
	if got := degradedSeries(); !strings.Contains(got, `sluice_shared_degraded{component="dlq"} 0`) {
		t.Fatalf("after the restart the metrics say:\n%s", got)
	}
}

// scrapeCollector returns the collector's sluice_shared_degraded series
// in the exposition format.
func scrapeCollector(t *testing.T, c *metrics.Collector) string {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var out []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "sluice_shared_degraded{") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
