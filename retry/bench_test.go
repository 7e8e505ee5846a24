package retry

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice"
)

// BenchmarkRetryHappy measures a successful first attempt through a pipeline
// holding only a default Retry: the cost every call pays.
func BenchmarkRetryHappy(b *testing.B) {
	r, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	p := sluice.NewPipeline(r)
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Do(ctx, fn); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkRetryHappyShared is the happy path with one RatioBudget shared by
// four policies, as for four operations on one dependency.
func BenchmarkRetryHappyShared(b *testing.B) {
	budget, err := NewBudget(BudgetConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var ps []*sluice.Pipeline
	for range 4 {
		r, err := New(Config{Budget: budget})
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, sluice.NewPipeline(r))
	}
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_ = ps[i&3].Do(ctx, fn)
		}
	})
}

// BenchmarkRetryOnce measures a call whose first attempt fails and whose
// immediate retry succeeds: the failure path, budget decision included.
func BenchmarkRetryOnce(b *testing.B) {
	r, err := New(Config{Backoff: Constant(0), Budget: NoBudget{}})
	if err != nil {
		b.Fatal(err)
	}
	p := sluice.NewPipeline(r)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			failed := false
			_ = p.Do(ctx, func(context.Context) error {
				if !failed {
					failed = true
					return errFlaky
				}
				return nil
			})
		}
	})
}
