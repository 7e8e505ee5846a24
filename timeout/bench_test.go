package timeout_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/timeout"
)

// BenchmarkTimeout measures a successful call through a pipeline holding
// only a Timeout, against context.WithTimeoutCause alone (the floor).
func BenchmarkTimeout(b *testing.B) {
	work := func(ctx context.Context) error { return ctx.Err() }
	b.Run("derived", func(b *testing.B) {
		p := sluice.NewPipeline(timeout.After(5 * time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := p.Do(ctx, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("caller-deadline-earlier", func(b *testing.B) {
		p := sluice.NewPipeline(timeout.After(2 * time.Hour))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			for pb.Next() {
				if err := p.Do(ctx, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("floor-context.WithTimeoutCause", func(b *testing.B) {
		cause := &timeout.Error{Limit: 5 * time.Second}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				c, cancel := context.WithTimeoutCause(ctx, 5*time.Second, cause)
				err := work(c)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
