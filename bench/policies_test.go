package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fsbreaker "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsratelimiter "github.com/failsafe-go/failsafe-go/ratelimiter"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

var errDown = errors.New("down")

func ok(context.Context) error { return nil }

func okGet() (any, error) { return nil, nil }

// parallel runs body under b.RunParallel with allocation reporting.
func parallel(b *testing.B, body func()) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body()
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func sluiceRetry() *retry.Retry {
	return must(retry.New(retry.Config{MaxAttempts: 3, Backoff: retry.Exponential(10*time.Millisecond, 2, time.Second)}))
}

func failsafeRetry() fsretry.RetryPolicy[any] {
	return fsretry.NewBuilder[any]().WithMaxAttempts(3).WithBackoff(10*time.Millisecond, time.Second).Build()
}

func BenchmarkRetryHappy(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		p := sluice.NewPipeline(sluiceRetry())
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](failsafeRetry())
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
	b.Run("cenkalti", func(b *testing.B) {
		op := func() (struct{}, error) { return struct{}{}, nil }
		parallel(b, func() {
			_, _ = backoff.Retry(ctx, op, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxTries(3))
		})
	})
}

func BenchmarkPipelineRetry(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		p := sluice.NewPipeline(sluiceRetry())
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](failsafeRetry())
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
}

func BenchmarkPipelineTimeout(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		p := sluice.NewPipeline(timeout.After(time.Minute))
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](fstimeout.New[any](time.Minute))
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
}

func BenchmarkBreakerClosed(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		br := breaker.MustNew(breaker.Config{Name: "b", FailureRateThreshold: 0.5, WindowSize: 100, MinimumCalls: 10})
		defer br.Close()
		p := sluice.NewPipeline(br)
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "b"})
		parallel(b, func() { _, _ = cb.Execute(okGet) })
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](fsbreaker.NewBuilder[any]().WithFailureRateThreshold(0.5, 10, time.Minute).Build())
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
}

func BenchmarkBreakerOpen(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		br := breaker.MustNew(breaker.Config{Name: "b", OpenFor: time.Hour})
		defer br.Close()
		br.ForceOpen()
		p := sluice.NewPipeline(br)
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Name: "b", Timeout: time.Hour,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 }})
		_, _ = cb.Execute(func() (any, error) { return nil, errDown })
		parallel(b, func() { _, _ = cb.Execute(okGet) })
	})
	b.Run("failsafe", func(b *testing.B) {
		cb := fsbreaker.NewBuilder[any]().WithDelay(time.Hour).Build()
		cb.Open()
		ex := failsafe.With[any](cb)
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	b.Run("sluice", func(b *testing.B) {
		l := ratelimit.MustNew(ratelimit.Config{Name: "l", Rate: 1e9, Burst: 1e9})
		parallel(b, func() { _ = l.Allow() })
	})
	b.Run("xrate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(1e9), 1e9)
		parallel(b, func() { _ = l.Allow() })
	})
	b.Run("failsafe", func(b *testing.B) {
		l := fsratelimiter.NewBursty[any](1e9, time.Second)
		parallel(b, func() { _ = l.TryAcquirePermit() })
	})
}

func BenchmarkBulkheadAcquire(b *testing.B) {
	b.Run("sluice", func(b *testing.B) {
		bh := bulkhead.MustNew(bulkhead.Config{Name: "bh", MaxConcurrent: 1 << 16})
		parallel(b, func() {
			if bh.TryAcquire() {
				bh.Release()
			}
		})
	})
	b.Run("failsafe", func(b *testing.B) {
		bh := fsbulkhead.New[any](1 << 20)
		parallel(b, func() {
			if bh.TryAcquirePermit() {
				bh.ReleasePermit()
			}
		})
	})
}

// BenchmarkPipeline is retry + breaker + bulkhead + limiter on the happy
// path, no timeout: the composition cost of the whole layer.
func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	b.Run("sluice", func(b *testing.B) {
		br := breaker.MustNew(breaker.Config{Name: "b", FailureRateThreshold: 0.5, WindowSize: 100, MinimumCalls: 10})
		defer br.Close()
		p := sluice.NewPipeline(
			sluiceRetry(),
			br,
			bulkhead.MustNew(bulkhead.Config{Name: "bh", MaxConcurrent: 1 << 16}),
			ratelimit.MustNew(ratelimit.Config{Name: "l", Rate: 1e9, Burst: 1e9}),
		)
		parallel(b, func() { _ = p.Do(ctx, ok) })
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](
			failsafeRetry(),
			fsbreaker.NewBuilder[any]().WithFailureRateThreshold(0.5, 10, time.Minute).Build(),
			fsbulkhead.New[any](1<<20),
			fsratelimiter.NewBursty[any](1e9, time.Second),
		)
		parallel(b, func() { _, _ = ex.Get(okGet) })
	})
}
