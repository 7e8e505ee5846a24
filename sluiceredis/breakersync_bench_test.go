package sluiceredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// benchClosed is breaker.BenchmarkBreakerClosed's loop: a successful call
// through a closed breaker in a pipeline.
func benchClosed(b *testing.B, br *breaker.Breaker) {
	p := sluice.NewPipeline(br)
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBreakerClosedLocal is the closed path without a sync, for
// comparison on the same machine.
func BenchmarkBreakerClosedLocal(b *testing.B) {
	benchClosed(b, breaker.MustNew(breaker.Config{Name: "bench", FailureRateThreshold: 0.5, MinimumCalls: 10}))
}

// BenchmarkBreakerClosedShared is the closed path of a breaker shared
// through a BreakerSync on a real Redis: no round trip per call, so it
// should cost what the local one does.
func BenchmarkBreakerClosedShared(b *testing.B) {
	srv := redistest.Start(b)
	s, err := sluiceredis.NewBreakerSync(sluiceredis.SyncConfig{Client: srv.Client(), Key: sluiceredis.BreakerKey("bench"), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	br := breaker.MustNew(breaker.Config{Name: "bench", FailureRateThreshold: 0.5, MinimumCalls: 10, Shared: s})
	defer br.Close()
	benchClosed(b, br)
}
