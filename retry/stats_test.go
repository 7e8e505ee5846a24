package retry

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
)

func TestStatsExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{Name: "db", MaxAttempts: 3, Backoff: Constant(time.Second), Jitter: NoJitter, SampleEvery: 1, Budget: NoBudget{}})
		p := sluice.NewPipeline(r)
		ctx := context.Background()
		work := func(d time.Duration, failures int) {
			fn, _ := flaky(failures, errFlaky)
			_ = p.Do(ctx, func(ctx context.Context) error { time.Sleep(d); return fn(ctx) })
		}
		work(0, 0)                   // 1 attempt, 0 s
		work(20*time.Millisecond, 0) // 1 attempt, 20 ms
		work(0, 1)                   // 2 attempts, 1 s
		work(0, 2)                   // 3 attempts, 2 s
		work(0, 5)                   // 3 attempts, exhausted, 2 s
		work(time.Second, 5)         // 3 attempts, exhausted, 3 s + 2 s waits = 5 s

		st := r.Stats()
		want := Stats{
			Name: "db", Calls: 6, Successes: 4, Failures: 2, Attempts: 13, Retries: 7, Exhausted: 2,
			SuccessRate: 4.0 / 6, AttemptsByNumber: []int64{6, 4, 3},
		}
		got := st
		got.Duration = Histogram{}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("stats\n got %+v\nwant %+v", got, want)
		}
		h := st.Duration
		if h.Count != 6 || h.Sum != 10.02 {
			t.Errorf("histogram count %d sum %v, want 6 and 10.02", h.Count, h.Sum)
		}
		// Bounds: 5ms 10ms 25ms 50ms 100ms 250ms 500ms 1s 2.5s 5s 10s ...
		wantCum := map[float64]uint64{0.005: 1, 0.025: 2, 0.5: 2, 1: 3, 2.5: 5, 5: 6, 300: 6}
		for i, b := range h.Bounds {
			if w, ok := wantCum[b]; ok && h.Counts[i] != w {
				t.Errorf("bucket <= %vs holds %d, want %d", b, h.Counts[i], w)
			}
			if i > 0 && h.Counts[i] < h.Counts[i-1] {
				t.Errorf("bucket counts not cumulative: %v", h.Counts)
			}
		}
	})
}

func TestStatsSampledHistogramIsUnbiased(t *testing.T) {
	r := mustNew(t, Config{SampleEvery: 4})
	p := sluice.NewPipeline(r)
	for range 4000 {
		_ = p.Do(context.Background(), func(context.Context) error { return nil })
	}
	st := r.Stats()
	if st.Calls != 4000 || st.AttemptsByNumber[0] != 4000 {
		t.Errorf("calls %d, want exactly 4000", st.Calls)
	}
	// Each sampled call weighs 4: 1000 expected samples, sd about 27.
	if c := st.Duration.Count; c%4 != 0 || c < 3400 || c > 4600 {
		t.Errorf("histogram count %d, want a multiple of 4 near 4000", c)
	}
}

func TestStatsEmpty(t *testing.T) {
	st := mustNew(t, Config{MaxAttempts: 4}).Stats()
	if st.Calls != 0 || st.SuccessRate != 0 || len(st.AttemptsByNumber) != 4 || st.Duration.Count != 0 {
		t.Errorf("empty stats %+v", st)
	}
	if len(st.Duration.Bounds) != len(st.Duration.Counts) || len(st.Duration.Bounds) != len(durationBoundsSeconds()) {
		t.Errorf("histogram shape: %d bounds, %d counts", len(st.Duration.Bounds), len(st.Duration.Counts))
	}
}

func TestStatsAttemptSlotsCapped(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 100, Backoff: Constant(0), Budget: NoBudget{}})
	fn, _ := flaky(99, errFlaky)
	if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if len(st.AttemptsByNumber) != maxAttemptSlots || st.AttemptsByNumber[maxAttemptSlots-1] != 100-maxAttemptSlots+1 {
		t.Errorf("%d slots, last %d; want %d slots, the last counting attempts %d..100",
			len(st.AttemptsByNumber), st.AttemptsByNumber[len(st.AttemptsByNumber)-1], maxAttemptSlots, maxAttemptSlots)
	}
	if st.Attempts != 100 {
		t.Errorf("%d attempts, want 100", st.Attempts)
	}
}
