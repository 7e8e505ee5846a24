package breaker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
)

func okCall(context.Context) error { return nil }

// BenchmarkBreakerClosed is a successful call through a closed breaker with
// a count window, through a pipeline as users make it.
func BenchmarkBreakerClosed(b *testing.B) {
	br := MustNew(Config{Name: "bench", FailureRateThreshold: 0.5, MinimumCalls: 10})
	p := sluice.NewPipeline(br)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, okCall); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBreakerOpen is a call rejected by an open breaker.
func BenchmarkBreakerOpen(b *testing.B) {
	br := MustNew(Config{Name: "bench", FailureThreshold: 1, OpenFor: time.Hour})
	defer br.Close()
	p := sluice.NewPipeline(br)
	ctx := context.Background()
	_ = p.Do(ctx, func(context.Context) error { return errors.New("down") })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, okCall); err == nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBreakerAllow is the explicit-time API on a closed breaker.
func BenchmarkBreakerAllow(b *testing.B) {
	br := MustNew(Config{})
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.AllowAt(now)
			if err != nil {
				b.Fatal(err)
			}
			p.DoneAt(now, Success, 0)
		}
	})
}

// BenchmarkBreakerAllowDone is the two-step API with the breaker's clock on
// a closed breaker, as gobreaker's two-step users call it.
func BenchmarkBreakerAllowDone(b *testing.B) {
	br := MustNew(Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := br.Allow()
			if err != nil {
				b.Fatal(err)
			}
			p.Done(Success, 0)
		}
	})
}

// BenchmarkReferenceMutexClock is not sluice: it is the shape of
// sony/gobreaker's closed path (a mutex every caller takes and two clock
// reads), to calibrate the figures above on a noisy machine. The real
// comparison with gobreaker lives in the bench module.
func BenchmarkReferenceMutexClock(b *testing.B) {
	var ref struct {
		mu    sync.Mutex
		count int
		last  time.Time
	}
	step := func(context.Context) error {
		ref.mu.Lock()
		now := time.Now()
		ref.count++
		ref.mu.Unlock()
		err := okCall(context.Background())
		ref.mu.Lock()
		ref.last = time.Now()
		_ = now
		ref.mu.Unlock()
		return err
	}
	p := sluice.NewPipeline(sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error { return step(ctx) }))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = p.Do(ctx, okCall)
		}
	})
}
