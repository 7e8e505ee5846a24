package bulkhead

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func mustEstimator(t *testing.T, cfg AdaptiveConfig) Estimator {
	t.Helper()
	e, err := NewEstimator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAIMDSteps(t *testing.T) {
	e := mustEstimator(t, AdaptiveConfig{Algorithm: AIMD, InitialLimit: 10, MinLimit: 2, MaxLimit: 12, Backoff: 0.5, LatencyThreshold: 100 * time.Millisecond})
	ms := time.Millisecond
	for i, s := range []struct {
		what     string
		now      time.Duration
		rtt      time.Duration
		inflight int
		dropped  bool
		want     int
	}{
		{"slow start: +1 per sample", 1 * time.Second, 10 * ms, 10, false, 11},
		{"slow start", 2 * time.Second, 10 * ms, 11, false, 12},
		{"capped at MaxLimit", 3 * time.Second, 10 * ms, 12, false, 12},
		{"slower than the threshold: cut", 4 * time.Second, 200 * ms, 12, false, 6},
		{"started before the cut: ignored", 4100 * ms, 200 * ms, 6, false, 6},
		{"dropped, started after the cut: cut", 4100 * ms, 10 * ms, 6, true, 3},
		{"app-limited: no growth", 5 * time.Second, 10 * ms, 1, false, 3},
		{"after a cut: +1/limit (3.33)", 5 * time.Second, 10 * ms, 3, false, 3},
		{"3.63", 5 * time.Second, 10 * ms, 3, false, 3},
		{"3.91", 5 * time.Second, 10 * ms, 3, false, 3},
		{"4.16", 5 * time.Second, 10 * ms, 3, false, 4},
		{"slow: 2.08", 6 * time.Second, 200 * ms, 4, false, 2},
		{"dropped: floored at MinLimit", 7 * time.Second, 10 * ms, 2, true, 2},
	} {
		if got := e.SampleAt(at(s.now), s.rtt, s.inflight, s.dropped); got != s.want || e.Limit() != s.want {
			t.Fatalf("step %d (%s): limit %d, want %d", i, s.what, got, s.want)
		}
	}
}

// gradientWindow feeds two samples a second apart, which with
// WindowSamples 2 and Window 1s close one window at the second, and
// returns the limit.
func gradientWindow(e Estimator, now *time.Duration, rtt time.Duration, inflight int, dropped bool) int {
	*now += time.Second
	e.SampleAt(at(*now), rtt, inflight, dropped)
	*now += time.Second
	return e.SampleAt(at(*now), rtt, inflight, dropped)
}

func TestGradientSteps(t *testing.T) {
	e := mustEstimator(t, AdaptiveConfig{InitialLimit: 10, MaxLimit: 100, Tolerance: 2, Smoothing: 1, WindowSamples: 2, Window: time.Second, LongWindow: 9, ProbeInterval: -1})
	g := e.(*gradient)
	ms := time.Millisecond
	var now time.Duration
	if got := e.SampleAt(at(time.Second), 10*ms, 10, false); got != 10 {
		t.Fatalf("one sample changed the limit to %d", got)
	}
	now = time.Second
	e.SampleAt(at(2*time.Second), 10*ms, 10, false) // closes the first window
	now = 2 * time.Second
	if e.Limit() != 14 {
		t.Fatalf("after the first window: %d, want 14", e.Limit())
	}
	for i, s := range []struct {
		what     string
		rtt      time.Duration
		inflight int
		dropped  bool
		want     int
		long     float64 // ms, the long-term RTT after the window
	}{
		{"no queueing: + QueueSize", 10 * ms, 10, false, 18, 10},
		{"no queueing", 10 * ms, 10, false, 22, 10},
		{"app-limited: 10 < 22/2", 10 * ms, 10, false, 22, 10},
		{"slower: gradient 2×14/30", 30 * ms, 22, false, 20, 14},
		{"within tolerance: + QueueSize", 30 * ms, 22, false, 24, 100.0 / 6},
		{"dropped: gradient 0.5", 10 * ms, 24, true, 12, 110.0 / 7},
		{"app-limited", 10 * ms, 1, false, 12, 15},
		{"no queueing", 10 * ms, 12, false, 16, 130.0 / 9},
		{"no queueing, warm-up over", 10 * ms, 16, false, 20, 14},
		{"EMA, then faster recovery: (14 + 0.2×(5-14)) × 0.95", 5 * ms, 20, false, 24, 12.2 * 0.95},
	} {
		if got := gradientWindow(e, &now, s.rtt, s.inflight, s.dropped); got != s.want {
			t.Fatalf("step %d (%s): limit %d, want %d", i, s.what, got, s.want)
		}
		if long := g.long / 1e6; math.Abs(long-s.long) > 1e-9 {
			t.Fatalf("step %d (%s): long RTT %vms, want %vms", i, s.what, long, s.long)
		}
	}
}

func TestGradientProbe(t *testing.T) {
	e := mustEstimator(t, AdaptiveConfig{InitialLimit: 40, MaxLimit: 100, Tolerance: 2, Smoothing: 1, WindowSamples: 2, Window: time.Second, ProbeInterval: 10 * time.Second})
	ms := time.Millisecond
	var now time.Duration
	// Warm up at 30ms, app-limited so the limit stays put. The tenth window
	// closes at 20s and schedules the first probe for 30s.
	for range 10 {
		gradientWindow(e, &now, 30*ms, 1, false)
	}
	for now < 28*time.Second {
		if got := gradientWindow(e, &now, 30*ms, 1, false); got != 40 {
			t.Fatalf("at %v: limit %d before the probe", now, got)
		}
	}
	if got := gradientWindow(e, &now, 30*ms, 1, false); got != 10 {
		t.Fatalf("at %v: limit %d, want the probe's 40/4", now, got)
	}
	// A call admitted before the probe began measures the loaded RTT.
	if got := e.SampleAt(at(now+500*ms), time.Second, 10, false); got != 10 {
		t.Fatalf("pre-probe sample ended the probe: %d", got)
	}
	e.SampleAt(at(now+time.Second), 10*ms, 10, false)
	if got := e.SampleAt(at(now+1500*ms), 10*ms, 10, false); got != 40 {
		t.Fatalf("after the probe: %d, want the saved 40", got)
	}
	now += 1500 * ms
	if long := e.(*gradient).long / 1e6; long != 10 {
		t.Fatalf("long RTT after the probe %vms, want the probe's 10ms", long)
	}
	// Against the fresh baseline, 30ms is queueing: 40 × 2×10.07/30.
	if got := gradientWindow(e, &now, 30*ms, 40, false); got != 26 {
		t.Fatalf("after the probe: %d, want 26", got)
	}
}

// TestEstimatorLimitsHold feeds both algorithms random samples, time steps
// and drops: the limit never leaves [MinLimit, MaxLimit].
func TestEstimatorLimitsHold(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		minLimit := rapid.IntRange(1, 20).Draw(rt, "min")
		cfg := AdaptiveConfig{
			Algorithm:        rapid.SampledFrom([]Algorithm{Gradient, AIMD}).Draw(rt, "algorithm"),
			MinLimit:         minLimit,
			MaxLimit:         minLimit + rapid.IntRange(0, 30).Draw(rt, "span"),
			Window:           time.Duration(rapid.IntRange(1, 100).Draw(rt, "window ms")) * time.Millisecond,
			WindowSamples:    rapid.IntRange(1, 5).Draw(rt, "window samples"),
			ProbeInterval:    time.Duration(rapid.IntRange(-1, 500).Draw(rt, "probe ms")) * time.Millisecond,
			LatencyThreshold: time.Duration(rapid.IntRange(0, 50).Draw(rt, "threshold ms")) * time.Millisecond,
		}
		e := mustEstimator(t, cfg)
		now := t0
		for range rapid.IntRange(1, 300).Draw(rt, "samples") {
			now = now.Add(time.Duration(rapid.IntRange(0, 50).Draw(rt, "step ms")) * time.Millisecond)
			rtt := time.Duration(rapid.IntRange(0, 100).Draw(rt, "rtt ms")) * time.Millisecond
			l := e.SampleAt(now, rtt, rapid.IntRange(0, 60).Draw(rt, "inflight"), rapid.Bool().Draw(rt, "dropped"))
			if l < cfg.MinLimit || l > cfg.MaxLimit || l != e.Limit() {
				rt.Fatalf("limit %d (Limit() %d) outside [%d, %d]", l, e.Limit(), cfg.MinLimit, cfg.MaxLimit)
			}
		}
	})
	if _, err := NewEstimator(AdaptiveConfig{Backoff: -1}); err == nil {
		t.Fatal("NewEstimator accepted an invalid config")
	}
}

// TestEstimatorsConverge runs each algorithm against the simulated server
// (10ms up to 20 concurrent calls, slower as the square of the excess) with
// 100 callers, from a limit far below and far above, for 200k calls (about
// 80 seconds of virtual time, so Gradient warms up and probes once). Over the second half the limit must sit
// near 20: Gradient settles where the latency is Tolerance (1.5) times the
// unloaded one, about 25, and AIMD just under its 15ms latency threshold.
func TestEstimatorsConverge(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AdaptiveConfig
	}{
		{"gradient/from-5", AdaptiveConfig{Algorithm: Gradient, InitialLimit: 5, MaxLimit: 200}},
		{"gradient/from-150", AdaptiveConfig{Algorithm: Gradient, InitialLimit: 150, MaxLimit: 200}},
		{"aimd/from-5", AdaptiveConfig{Algorithm: AIMD, InitialLimit: 5, MaxLimit: 200, LatencyThreshold: 15 * time.Millisecond}},
		{"aimd/from-150", AdaptiveConfig{Algorithm: AIMD, InitialLimit: 150, MaxLimit: 200, LatencyThreshold: 15 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trace := simulate(mustEstimator(t, tc.cfg), 100, 200_000, 1)
			mean, within := traceStats(trace[len(trace)/2:], 18, 30)
			t.Logf("second half: mean %.1f, %.1f%% within [18, 30]", mean, 100*within)
			if mean < 20 || mean > 28 || within < 0.95 {
				t.Fatalf("did not settle near %d: mean %.1f, %.1f%% within [18, 30]", simCapacity, mean, 100*within)
			}
		})
	}
}

// TestGradientWithoutProbeDrifts shows why the probe exists: with it
// disabled the long-term RTT follows the loaded RTT up and the limit creeps
// past the server's capacity, as Gradient2's users reported. Short windows
// make the long-term average, and so the drift, ten times faster.
func TestGradientWithoutProbeDrifts(t *testing.T) {
	trace := simulate(mustEstimator(t, AdaptiveConfig{InitialLimit: 5, MaxLimit: 200, Window: 100 * time.Millisecond, ProbeInterval: -1}), 100, 200_000, 1)
	t.Logf("limit at the end: %d", trace[len(trace)-1])
	if last := trace[len(trace)-1]; last < 40 {
		t.Fatalf("limit %d at the end: no drift without the probe; is the probe still needed?", last)
	}
}

func traceStats(trace []int, lo, hi int) (mean, within float64) {
	sum, in := 0, 0
	for _, v := range trace {
		sum += v
		if v >= lo && v <= hi {
			in++
		}
	}
	return float64(sum) / float64(len(trace)), float64(in) / float64(len(trace))
}

func TestAdaptiveReleaseSample(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Isolation: Adaptive, MaxQueue: 1, Adaptive: AdaptiveConfig{Algorithm: AIMD, InitialLimit: 2, MaxLimit: 10}})
		mustAcquire(t, b)
		mustAcquire(t, b)
		w := acquireAsync(context.Background(), b)
		pending(w)
		// A good sample at full use raises the limit to 3 before the
		// release, which then admits the waiter.
		b.ReleaseSampleAt(time.Now(), 10*time.Millisecond, false)
		synctest.Wait()
		if err := <-w; err != nil {
			t.Fatal(err)
		}
		if st := b.Stats(); st.Limit != 3 || st.Active != 2 || st.MaxConcurrent != 10 {
			t.Fatalf("stats = %+v", st)
		}
		b.ReleaseSampleAt(time.Now(), 10*time.Millisecond, true) // 3 × 0.9
		if st := b.Stats(); st.Limit != 2 || st.Active != 1 {
			t.Fatalf("stats = %+v", st)
		}
		b.Release()
		// Update with a lower ceiling carries the estimate over, clamped.
		cfg := b.Config()
		cfg.Adaptive.MaxLimit = 1
		cfg.Adaptive.InitialLimit = 1
		cfg.MaxConcurrent = 0
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
		if st := b.Stats(); st.Limit != 1 || st.MaxConcurrent != 1 {
			t.Fatalf("after Update: %+v", st)
		}
	})
	// Under other isolations ReleaseSampleAt is Release.
	b := mustNew(t, Config{MaxConcurrent: 1})
	mustAcquire(t, b)
	b.ReleaseSampleAt(t0, time.Hour, true)
	if st := b.Stats(); st.Active != 0 || st.Limit != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestAdaptiveExecuteSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Algorithm: AIMD, InitialLimit: 4, MaxLimit: 10, Backoff: 0.5, LatencyThreshold: 50 * time.Millisecond}})
		p := sluice.NewPipeline(b)
		ctx := context.Background()
		for i, s := range []struct {
			what string
			ctx  func() (context.Context, context.CancelFunc)
			fn   func(context.Context) error
			want int
		}{
			{"503 is a drop", nil, func(context.Context) error { return &sluice.StatusError{Code: 503} }, 2},
			{"slower than the threshold", nil, func(context.Context) error { time.Sleep(100 * time.Millisecond); return nil }, 1},
			{"404 is not overload: +1/limit", nil, func(context.Context) error { return &sluice.StatusError{Code: 404} }, 2},
			{"the caller's cancellation gives no sample", func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) },
				func(ctx context.Context) error { return context.Canceled }, 2},
			{"a timeout is a drop", nil, func(context.Context) error { time.Sleep(time.Millisecond); return context.DeadlineExceeded }, 1},
		} {
			c := ctx
			if s.ctx != nil {
				var cancel context.CancelFunc
				c, cancel = s.ctx()
				cancel()
			}
			err := p.Do(c, s.fn)
			if errors.Is(err, ErrFull) {
				t.Fatalf("step %d: %v", i, err)
			}
			if st := b.Stats(); st.Limit != s.want || st.Active != 0 {
				t.Fatalf("step %d (%s): limit %d, want %d (%+v)", i, s.what, st.Limit, s.want, st)
			}
		}
	})
}
