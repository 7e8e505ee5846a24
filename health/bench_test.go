package health_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
)

// BenchmarkEvaluate measures one evaluation of a registry of 100 instances
// of each kind: the cost of a /health request or of a Run tick.
func BenchmarkEvaluate(b *testing.B) {
	reg := registry.New(registry.Config{})
	defer reg.Close()
	for i := range 100 {
		name := fmt.Sprintf("dep-%03d", i)
		_, _ = reg.Breaker(name, breaker.Config{})
		_, _ = reg.Bulkhead(name, bulkhead.Config{})
		_, _ = reg.Retry(name, retry.Config{})
		_, _ = reg.Limiter(name, ratelimit.Config{Rate: 100})
	}
	m, _ := health.New(health.Config{Registry: reg})
	defer m.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.Evaluate(ctx)
	}
}
