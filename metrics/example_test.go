package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/sluicetest"
)

// printSeries prints the series of the exposition whose names start with
// one of the prefixes.
func printSeries(h http.Handler, prefixes ...string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				fmt.Println(line)
			}
		}
	}
}

// Serve a registry's metrics: a breaker opened by five failures and a
// bulkhead with one of its two permits taken.
func Example() {
	clock := sluicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := registry.New(registry.Config{Clock: clock})
	defer reg.Close()
	br, _ := reg.Breaker("payments", breaker.Config{})
	db, _ := reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 2})

	p := sluice.NewPipeline(br)
	for range 5 {
		_ = p.Do(context.Background(), func(context.Context) error { return errors.New("refused") })
	}
	db.TryAcquire()
	defer db.Release()
	clock.Advance(42 * time.Second)

	printSeries(metrics.Handler(reg), "sluice_circuit_breaker_state", "sluice_circuit_breaker_failures", "sluice_bulkhead_active", "sluice_bulkhead_util")
	// Output:
	// sluice_bulkhead_active_calls{resource="db"} 1
	// sluice_bulkhead_utilization_ratio{resource="db"} 0.5
	// sluice_circuit_breaker_failures_total{name="payments"} 5
	// sluice_circuit_breaker_state{name="payments",state="closed"} 0
	// sluice_circuit_breaker_state{name="payments",state="disabled"} 0
	// sluice_circuit_breaker_state{name="payments",state="forced-open"} 0
	// sluice_circuit_breaker_state{name="payments",state="half-open"} 0
	// sluice_circuit_breaker_state{name="payments",state="metrics-only"} 0
	// sluice_circuit_breaker_state{name="payments",state="open"} 1
	// sluice_circuit_breaker_state_seconds{name="payments"} 42
}

// A Collector with a health monitor exports the score next to the
// policies' metrics.
func ExampleCollector_Handler() {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	defer reg.Close()
	a, _ := reg.Breaker("a", breaker.Config{})
	_, _ = reg.Breaker("b", breaker.Config{})
	a.ForceOpen()

	mon, _ := health.New(health.Config{Registry: reg})
	defer mon.Close()
	c, _ := metrics.New(metrics.Config{Registry: reg, Health: mon})
	printSeries(c.Handler(), "sluice_health_")
	// Output:
	// sluice_health_alerts{severity="critical",type="health_critical"} 1
	// sluice_health_component_score{component="breakers"} 0.5
	// sluice_health_score 0.5
	// sluice_health_status{status="critical"} 1
	// sluice_health_status{status="degraded"} 0
	// sluice_health_status{status="healthy"} 0
}
