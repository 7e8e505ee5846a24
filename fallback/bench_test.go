package fallback_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/fallback"
)

// BenchmarkFallback measures the primary's happy path through a pipeline
// holding only a Fallback.
func BenchmarkFallback(b *testing.B) {
	alts := []fallback.Alternative[int]{{Name: "replica", Fn: ok(2)}}
	b.Run("Do", func(b *testing.B) {
		p := sluice.NewPipeline(mustNew(b, fallback.Config[int]{Alternatives: alts}))
		do := func(context.Context) error { return nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := p.Do(ctx, do); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("Get", func(b *testing.B) {
		p := sluice.NewPipeline(mustNew(b, fallback.Config[int]{Alternatives: alts}))
		fn := ok(1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := sluice.Get(ctx, p, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("Get-lastgood-one-key", func(b *testing.B) {
		p := sluice.NewPipeline(mustNew(b, fallback.Config[int]{Alternatives: alts, LastGoodTTL: time.Minute}))
		fn := ok(1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := sluice.Get(ctx, p, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("Get-lastgood-per-key", func(b *testing.B) {
		f := mustNew(b, fallback.Config[int]{Alternatives: alts, LastGoodTTL: time.Minute,
			Key: func(ctx context.Context) string { s, _ := ctx.Value(agentKey{}).(string); return s }})
		p := sluice.NewPipeline(f)
		fn := ok(1)
		b.ReportAllocs()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine is one agent, as in a per-agent status call.
			ctx := context.WithValue(context.Background(), agentKey{}, "agent-"+strconv.FormatInt(n.Add(1), 10))
			for pb.Next() {
				if _, err := sluice.Get(ctx, p, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
