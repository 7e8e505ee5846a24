package metrics_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
)

// fleet returns a registry of n instances of each policy kind.
func fleet(b *testing.B, n int) *registry.Registry {
	reg := registry.New(registry.Config{})
	b.Cleanup(func() { reg.Close() })
	for i := range n {
		name := fmt.Sprintf("dep-%03d", i)
		_, _ = reg.Breaker(name, breaker.Config{})
		_, _ = reg.Bulkhead(name, bulkhead.Config{})
		_, _ = reg.Retry(name, retry.Config{})
		_, _ = reg.Limiter(name, ratelimit.Config{Rate: 100})
	}
	return reg
}

// BenchmarkGather measures one scrape's collection (without encoding) of
// a registry of 100 instances of each kind.
func BenchmarkGather(b *testing.B) {
	c, _ := metrics.New(metrics.Config{Registry: fleet(b, 100)})
	preg := prometheus.NewRegistry()
	preg.MustRegister(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := preg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallWhileScraping measures calls through a breaker and a
// bulkhead while another goroutine scrapes without pause: the collector
// adds nothing to the calls' path.
func BenchmarkCallWhileScraping(b *testing.B) {
	reg := fleet(b, 1)
	br, _ := reg.LookupBreaker("dep-000")
	bh, _ := reg.LookupBulkhead("dep-000")
	p := sluice.NewPipeline(br, bh)
	c, _ := metrics.New(metrics.Config{Registry: reg})
	preg := prometheus.NewRegistry()
	preg.MustRegister(c)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = preg.Gather()
			}
		}
	})
	fn := func(context.Context) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = p.Do(ctx, fn)
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
}
