package hedge_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
)

// maxTracked is the longest latency the estimator tells apart, 2³⁶-1 ns.
const maxTracked = 1<<36 - 1

// within reports whether got is within hedge.RelativeError of want.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)*hedge.RelativeError
}

// nearestRank is the reference percentile: the smallest sample with at
// least p of the samples at or below it.
func nearestRank(samples []time.Duration, p float64) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	k := int(math.Ceil(p * float64(len(s))))
	return s[min(max(k, 1), len(s))-1]
}

// The estimator against the obvious model: every latency observed, with
// the time slice it was observed in, filtered by the window and sorted when
// asked.
func TestPropertyDelayMatchesSortedReference(t *testing.T) {
	type sample struct {
		epoch int64
		d     time.Duration
	}
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.Float64Range(0.01, 0.99).Draw(t, "p")
		window := time.Duration(rapid.Int64Range(5, 10_000).Draw(t, "windowMs")) * ms
		minSamples := rapid.IntRange(1, 8).Draw(t, "minSamples")
		const fallback = 777 * ms
		h := hedge.MustNew(hedge.Config{Delay: fallback, Percentile: p, Window: window, MinSamples: minSamples})
		width := int64(window) / 5
		now := time.Unix(1_700_000_000, 0)
		var model []sample
		latency := rapid.OneOf(
			rapid.Int64Range(0, 40),                    // exact buckets
			rapid.Int64Range(1_000, 50_000_000),        // µs to tens of ms
			rapid.Int64Range(1_000_000, 5_000_000_000), // ms to seconds
			rapid.Int64Range(maxTracked-1000, 1<<40),   // at and beyond the tracked range
		)
		t.Repeat(map[string]func(*rapid.T){
			"observe": func(t *rapid.T) {
				d := time.Duration(latency.Draw(t, "latency"))
				h.ObserveAt(now, d)
				model = append(model, sample{now.UnixNano() / width, min(d, maxTracked)})
			},
			"advance": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.Int64Range(0, int64(window)/2).Draw(t, "advance")))
			},
			"": func(t *rapid.T) {
				e := now.UnixNano() / width
				var in []time.Duration
				for _, s := range model {
					if e-s.epoch < 5 {
						in = append(in, s.d)
					}
				}
				got := h.DelayAt(now)
				if len(in) < minSamples {
					if got != fallback {
						t.Fatalf("%d samples in the window (< %d): delay %v, want the fallback %v", len(in), minSamples, got, fallback)
					}
					return
				}
				want := nearestRank(in, p)
				if !within(got, want) {
					t.Fatalf("p%.3f of %d samples: delay %v, reference %v, off by %.2f%% (> %.3f%%)",
						p, len(in), got, want, 100*math.Abs(float64(got-want))/float64(want), 100*hedge.RelativeError)
				}
			},
		})
	})
}

func TestDelayBounds(t *testing.T) {
	h := hedge.MustNew(hedge.Config{Delay: time.Second, Percentile: 0.5, MinSamples: 10, MinDelay: 5 * ms, MaxDelay: 2 * time.Second})
	now := time.Unix(1_700_000_000, 0)
	for range 9 {
		h.ObserveAt(now, ms)
	}
	if got := h.DelayAt(now); got != time.Second {
		t.Errorf("9 samples of MinSamples 10: delay %v, want the fallback 1s", got)
	}
	h.ObserveAt(now, ms)
	if got := h.DelayAt(now); got != 5*ms {
		t.Errorf("median 1ms under MinDelay 5ms: delay %v, want 5ms", got)
	}
	for range 20 {
		h.ObserveAt(now, 10*time.Second)
	}
	if got := h.DelayAt(now); got != 2*time.Second {
		t.Errorf("median 10s over MaxDelay 2s: delay %v, want 2s", got)
	}
	// The window forgets: five fifths later the samples have left it.
	if got := h.DelayAt(now.Add(10 * time.Second)); got != time.Second {
		t.Errorf("a window later: delay %v, want the fallback again", got)
	}
	if got := hedge.MustNew(hedge.Config{Delay: 3 * ms}).DelayAt(now); got != 3*ms {
		t.Errorf("fixed delay: DelayAt = %v, want 3ms", got)
	}
}

// The delay follows the latency of the policy's own first attempts, fed
// through Execute, and Execute hedges at it.
func TestPercentileDelayFollowsLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: time.Second, Percentile: 0.9, MinSamples: 50, Window: 10 * time.Second})
		p := sluice.NewPipeline(h)
		call := func(lat ...time.Duration) {
			t.Helper()
			if err := p.Do(context.Background(), latencies(newLog(), lat, nil)); err != nil {
				t.Fatal(err)
			}
		}
		// 10 ms to 19 ms, ten of each: the 90th percentile is 18 ms. (Once
		// the delay is computed the 19 ms calls are hedged, but the hedges,
		// taking an hour, never answer first.)
		for i := range 100 {
			call(time.Duration(10+i%10)*ms, time.Hour)
			if i == 48 {
				if h.Delay() != time.Second || h.Stats().Hedges != 0 {
					t.Errorf("49 samples: delay %v and %d hedges, want the fallback 1s and none", h.Delay(), h.Stats().Hedges)
				}
			}
		}
		if got := h.Delay(); !within(got, 18*ms) {
			t.Errorf("p90 of 10..19ms: delay %v, want 18ms within %.1f%%", got, 100*hedge.RelativeError)
		}
		if h.Stats().Hedges == 0 {
			t.Error("no call was hedged at the computed delay")
		}

		// A new fifth of the window: Execute recomputes, and hedges at it.
		time.Sleep(2 * time.Second)
		want := h.Delay()
		l := newLog()
		if err := p.Do(context.Background(), latencies(l, []time.Duration{time.Hour, 0}, nil)); err != nil {
			t.Fatal(err)
		}
		if l.starts[1] != want {
			t.Errorf("hedged after %v, want the percentile delay %v", l.starts[1], want)
		}

		// The latency rises to 45 ms; once the window holds only the new
		// calls the delay is 45 ms. (The first attempts are hedged at 18 ms
		// for a while, but answer first.)
		for range 300 {
			call(45*ms, time.Hour)
			time.Sleep(50 * ms)
		}
		if got := h.Delay(); !within(got, 45*ms) {
			t.Errorf("after the rise: delay %v, want 45ms within %.1f%%", got, 100*hedge.RelativeError)
		}
	})
}

// Execute's delay is recomputed once MinSamples latencies arrived since the
// last computation, not on every call: it lags DelayAt until then.
func TestExecuteDelayRecomputedAfterMinSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: time.Second, Percentile: 0.9, MinSamples: 10})
		p := sluice.NewPipeline(h)
		slow := func() time.Duration { // a call hedged at once answered: returns when it hedged
			l := newLog()
			if err := p.Do(context.Background(), latencies(l, []time.Duration{time.Hour, 0}, nil)); err != nil {
				t.Fatal(err)
			}
			return l.starts[1]
		}
		for range 10 {
			h.ObserveAt(time.Now(), 50*ms)
		}
		first := slow() // computes: ten samples of 50 ms; files one more
		if !within(first, 50*ms) {
			t.Fatalf("hedged after %v, want 50ms", first)
		}
		for range 8 {
			h.ObserveAt(time.Now(), 400*ms)
		}
		if !within(h.Delay(), 400*ms) {
			t.Fatalf("DelayAt = %v, want 400ms: 8 of 19 samples are 400ms", h.Delay())
		}
		if got := slow(); got != first {
			t.Errorf("9 samples since the last computation: hedged after %v, want the cached %v", got, first)
		}
		want := h.Delay() // the slow call filed a tenth sample
		if got := slow(); got != want || !within(got, 400*ms) {
			t.Errorf("10 samples since: hedged after %v, want the recomputed %v", got, want)
		}
	})
}
