package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

// A report of a registry whose payments breaker has been open for six
// minutes, run on a fake clock so that the times are reproducible.
func Example() {
	ctx := context.Background()
	clock := sluicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := registry.New(registry.Config{Clock: clock})
	defer reg.Close()

	payments, _ := reg.Breaker("payments", breaker.Config{OpenFor: 10 * time.Minute})
	_, _ = reg.Breaker("search", breaker.Config{})
	db, _ := reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 4})
	agents, _ := reg.Retry("agents", retry.Config{MaxAttempts: 1, Budget: retry.NoBudget{}})

	mon, _ := health.New(health.Config{Registry: reg})
	defer mon.Close()

	fail := func(context.Context) error { return errors.New("connection reset") }
	ok := func(context.Context) error { return nil }
	for range 5 { // five consecutive failures open the breaker
		_ = sluice.NewPipeline(payments).Do(ctx, fail)
	}
	for range 3 {
		_ = sluice.NewPipeline(agents).Do(ctx, ok)
	}
	_ = sluice.NewPipeline(agents).Do(ctx, fail)
	db.TryAcquire() // one call in progress
	defer db.Release()

	clock.Advance(6 * time.Minute)
	fmt.Print(mon.Evaluate(ctx))
	// Output:
	// === Sluice Resilience Health Report ===
	// Generated at: 2026-01-01 00:06:00 UTC
	//
	// Overall Health Score: 75.00% (DEGRADED)
	//   Components: breakers 50.00%, bulkheads 100.00%, retries 75.00%
	//
	// Circuit Breakers:
	//   Total: 2
	//   Open: 1
	//   Half-Open: 0
	//   Alerts:
	//     - Circuit breaker 'payments' has been open for 360.0 seconds
	//   payments: open for 6m0s (next probe in 4m0s), failure rate 100.00% of 5 calls, 0 rejected
	//     tripped at 00:00:00 UTC by 5 consecutive failures; cause: connection reset
	//   search: closed for 6m0s, failure rate 0.00% of 0 calls, 0 rejected
	//
	// Resource Bulkheads:
	//   db: 25.0% utilization, 0.00% rejection rate (1/4 active, 0 queued)
	//
	// Retries (last 5m0s):
	//   agents: 75.00% success of 4 calls; since start 4 calls, 0 retries, 1 exhausted, 0 refused by budget
	//
	// Rate Limiters (last 5m0s):
	//   (none)
	//
	// Dead-Letter Queues:
	//   (none)
	//
	// Probes:
	//   (none)
}

// The /health endpoint answers 503 once the status is critical, so that a
// load balancer can take the instance out.
func ExampleMonitor_Handler() {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	defer reg.Close()
	br, _ := reg.Breaker("upstream", breaker.Config{})
	mon, _ := health.New(health.Config{Registry: reg})
	defer mon.Close()

	show := func() {
		rec := httptest.NewRecorder()
		mon.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
		var doc struct {
			Score  float64 `json:"score"`
			Status string  `json:"status"`
			Alerts []struct {
				Type, Subject string
			} `json:"alerts"`
		}
		_ = json.NewDecoder(rec.Body).Decode(&doc)
		fmt.Println(rec.Code, doc.Status, doc.Score, doc.Alerts)
	}
	show()
	br.ForceOpen()
	show()
	// Output:
	// 200 healthy 1 []
	// 503 critical 0 [{health_critical overall}]
}
