package bulkhead

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice"
)

// BenchmarkBulkheadAcquire is the permit API, uncontended for permits: every
// goroutine takes a permit and returns it.
func BenchmarkBulkheadAcquire(b *testing.B) {
	bh := MustNew(Config{MaxConcurrent: 1000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !bh.TryAcquire() {
				b.Error("rejected")
				return
			}
			bh.Release()
		}
	})
}

// BenchmarkBulkheadExecute is a call through a pipeline holding only the
// bulkhead.
func BenchmarkBulkheadExecute(b *testing.B) {
	p := sluice.NewPipeline(MustNew(Config{MaxConcurrent: 1000}))
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, fn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBulkheadReject is a call turned away by a full bulkhead with no
// queue.
func BenchmarkBulkheadReject(b *testing.B) {
	bh := MustNew(Config{MaxConcurrent: 1})
	if !bh.TryAcquire() {
		b.Fatal("no permit")
	}
	defer bh.Release()
	p := sluice.NewPipeline(bh)
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, fn); err == nil {
				b.Error("admitted")
				return
			}
		}
	})
}
