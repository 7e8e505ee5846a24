//go:build !race

package hedge_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
)

// A call answered before the delay allocates only the first attempt's
// cancellable context (two objects, context.WithCancelCause's); a call that
// may not be hedged allocates nothing. (Not under the race detector, whose
// sync.Pool drops objects at random.)
func TestFastPathAllocs(t *testing.T) {
	work := func(context.Context) error { return nil }
	bg := context.Background()
	cases := []struct {
		name string
		cfg  hedge.Config
		ctx  context.Context
		want float64
	}{
		{"fixed", hedge.Config{Delay: time.Second}, bg, 2},
		{"percentile", hedge.Config{Delay: time.Second, Percentile: 0.95}, bg, 2},
		{"not idempotent", hedge.Config{Delay: time.Second}, sluice.WithIdempotent(bg, false), 0},
	}
	for _, tc := range cases {
		p := sluice.NewPipeline(hedge.MustNew(tc.cfg))
		if got := testing.AllocsPerRun(1000, func() { _ = p.Do(tc.ctx, work) }); got != tc.want {
			t.Errorf("%s: %v allocations per call, want %v", tc.name, got, tc.want)
		}
	}
}
