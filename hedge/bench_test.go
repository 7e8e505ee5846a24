package hedge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
)

// BenchmarkHedgeFast measures a call whose first attempt answers at once,
// long before the delay: the path nearly every call takes. The floor is
// context.WithCancelCause, which the first attempt's context costs.
func BenchmarkHedgeFast(b *testing.B) {
	work := func(ctx context.Context) error { return nil }
	run := func(b *testing.B, p *sluice.Pipeline, ctx context.Context) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Do(ctx, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	bg := context.Background()
	b.Run("fixed", func(b *testing.B) {
		run(b, sluice.NewPipeline(hedge.MustNew(hedge.Config{Delay: time.Second})), bg)
	})
	b.Run("percentile", func(b *testing.B) {
		run(b, sluice.NewPipeline(hedge.MustNew(hedge.Config{Delay: time.Second, Percentile: 0.95})), bg)
	})
	b.Run("not-idempotent", func(b *testing.B) {
		run(b, sluice.NewPipeline(hedge.MustNew(hedge.Config{Delay: time.Second})), sluice.WithIdempotent(bg, false))
	})
	b.Run("floor-context.WithCancelCause", func(b *testing.B) {
		b.ReportAllocs()
		cause := errors.New("done")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithCancelCause(bg)
				err := work(ctx)
				cancel(cause)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkHedgeSlow measures a hedged call: a first attempt that waits for
// its cancellation, a hedge started at once (1 ns delay) that answers.
func BenchmarkHedgeSlow(b *testing.B) {
	p := sluice.NewPipeline(hedge.MustNew(hedge.Config{Delay: 1}))
	work := func(ctx context.Context) error {
		if hedge.Attempt(ctx) == 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(context.Background(), work); err != nil {
				b.Fatal(err)
			}
		}
	})
}
