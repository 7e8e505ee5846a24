package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
)

// BenchmarkLimiterAllow measures Allow on the system clock with a rate high
// enough that no call is ever refused: the admitted hot path, one clock
// read and one compare-and-swap.
func BenchmarkLimiterAllow(b *testing.B) {
	l := ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Per: time.Second, Burst: 1e9})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !l.Allow() {
				b.Error("refused")
				return
			}
		}
	})
}

// BenchmarkLimiterAllowAt is Allow without the clock read: the cost of the
// algorithm itself, each goroutine passing its own advancing time.
func BenchmarkLimiterAllowAt(b *testing.B) {
	start := time.Now()
	l := ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Per: time.Second, Burst: 1e9})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := start
		for pb.Next() {
			now = now.Add(50)
			if !l.AllowAt(now, 1) {
				b.Error("refused")
				return
			}
		}
	})
}

// BenchmarkLimiterReject measures a refused Allow: the bucket is empty and
// stays so, and a refusal only reads the shared word.
func BenchmarkLimiterReject(b *testing.B) {
	l := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
	l.Allow()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.Allow() {
				b.Error("admitted")
				return
			}
		}
	})
}

// BenchmarkLimiterExecute measures the limiter as a pipeline policy: admitted
// (ok) and refused with ErrLimited (reject), both without allocating.
func BenchmarkLimiterExecute(b *testing.B) {
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.Run("ok", func(b *testing.B) {
		p := sluice.NewPipeline(ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9}))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Do(ctx, fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("reject", func(b *testing.B) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
		l.Allow()
		p := sluice.NewPipeline(l)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Do(ctx, fn); err == nil {
					b.Error("admitted")
					return
				}
			}
		})
	})
}
