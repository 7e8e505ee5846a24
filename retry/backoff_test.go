package retry

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestBackoffDelayTable(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration // for n = 1, 2, ...
	}{
		{"default", Backoff{}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second}},
		{"exponential", Exponential(time.Second, 2, 30*time.Second), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}},
		{"exponential x1.5", Exponential(2*time.Second, 1.5, 60*time.Second), []time.Duration{2 * time.Second, 3 * time.Second, 4500 * time.Millisecond, 6750 * time.Millisecond}},
		{"exponential x1", Exponential(time.Second, 1, time.Minute), []time.Duration{time.Second, time.Second, time.Second}},
		{"linear", Linear(time.Second, 500*time.Millisecond, 2*time.Second), []time.Duration{time.Second, 1500 * time.Millisecond, 2 * time.Second, 2 * time.Second}},
		{"linear no step", Linear(time.Second, 0, 2*time.Second), []time.Duration{time.Second, time.Second}},
		{"constant", Constant(3 * time.Second), []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"zero constant", Constant(0), []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.b.Delay(i+1, 0, nil); got != want {
					t.Errorf("step %d: Delay(%d) = %v, want %v", i, i+1, got, want)
				}
			}
		})
	}
}

func TestBackoffDelayHugeAttempt(t *testing.T) {
	for _, b := range []Backoff{Exponential(time.Second, 10, time.Hour), Linear(time.Second, time.Hour, 2*time.Hour)} {
		for _, n := range []int{1000, math.MaxInt32, math.MaxInt} {
			if got := b.Delay(n, 0, nil); got != b.Cap() {
				t.Errorf("%v.Delay(%d) = %v, want the cap %v", b, n, got, b.Cap())
			}
		}
	}
}

func TestDecorrelatedStaysInRange(t *testing.T) {
	b := Decorrelated(100*time.Millisecond, 5*time.Second)
	rnd := rand.New(rand.NewPCG(1, 2))
	prev := time.Duration(0)
	nearCap := false
	for n := 1; n <= 200; n++ {
		d := b.Delay(n, prev, rnd)
		hi := min(3*max(prev, b.Base()), b.Cap())
		if d < b.Base() || d > hi {
			t.Fatalf("step %d: delay %v outside [%v, %v]", n, d, b.Base(), hi)
		}
		nearCap = nearCap || d >= b.Cap()*9/10
		prev = d
	}
	if !nearCap {
		t.Error("200 decorrelated draws never came within 10 % of the cap")
	}
}

func TestJitterApplyTable(t *testing.T) {
	d := 10 * time.Second
	tests := []struct {
		j      Jitter
		lo, hi time.Duration
	}{
		{NoJitter, d, d},
		{FullJitter, 0, d},
		{Jitter{}, 0, d},
		{EqualJitter, d / 2, d},
		{Proportional(0.1), 9 * time.Second, 11 * time.Second},
		{Proportional(0), d, d},
		{Proportional(1), 0, 2 * d},
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, tt := range tests {
		var minSeen, maxSeen time.Duration = math.MaxInt64, 0
		for range 2000 {
			got := tt.j.apply(d, rnd)
			minSeen, maxSeen = min(minSeen, got), max(maxSeen, got)
		}
		if minSeen < tt.lo || maxSeen > tt.hi {
			t.Errorf("%v: draws within [%v, %v], want within [%v, %v]", tt.j, minSeen, maxSeen, tt.lo, tt.hi)
		}
		// The draws must also spread over the range, not sit at one end.
		if span := tt.hi - tt.lo; span > 0 && maxSeen-minSeen < span*9/10 {
			t.Errorf("%v: draws span only [%v, %v] of [%v, %v]", tt.j, minSeen, maxSeen, tt.lo, tt.hi)
		}
	}
}

func TestJitterString(t *testing.T) {
	for j, want := range map[Jitter]string{NoJitter: "none", FullJitter: "full", {}: "full", EqualJitter: "equal", Proportional(0.1): "±10%"} {
		if got := j.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestAdaptiveFactor(t *testing.T) {
	tests := []struct{ rate, want float64 }{
		{1, 0.7}, {0.91, 0.7}, {0.9, 1}, {0.71, 1}, {0.7, 1.5}, {0.51, 1.5}, {0.5, 2}, {0, 2},
	}
	for _, tt := range tests {
		if got := adaptiveFactor(tt.rate); got != tt.want {
			t.Errorf("AdaptiveFactor(%v) = %v, want %v", tt.rate, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The HTTP-date forms parse as net/http parses them, without the policy
// importing it.
func TestParseRetryAfterDatesAsNetHTTP(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := now.Add(90 * time.Second)
	for _, in := range []string{
		at.Format(http.TimeFormat), at.Format(time.RFC850), at.Format(time.ANSIC),
		"Thu, 01 Jan 2026 12:01:30 GMT", "Thursday, 01-Jan-26 12:01:30 GMT", "Thu Jan  1 12:01:30 2026",
		"Thu, 01 Jan 2026 12:01:30 UTC", "Thu, 1 Jan 2026 12:01:30 GMT", "2026-01-01T12:01:30Z",
	} {
		want, err := http.ParseTime(in)
		got, ok := ParseRetryAfter(in, now)
		if ok != (err == nil) || (ok && got != max(want.Sub(now), 0)) {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; net/http parses %v, %v", in, got, ok, want, err)
		}
	}
}

func TestRetryAfterWait(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		if d := retryAfterWait(5*time.Second, time.Minute, rnd); d < 5*time.Second || d > 5500*time.Millisecond {
			t.Fatalf("Retry-After 5s within cap: waited %v, want within [5s, 5.5s]", d)
		}
		if d := retryAfterWait(time.Hour, 30*time.Second, rnd); d < 30*time.Second || d > 33*time.Second {
			t.Fatalf("Retry-After 1h over a 30s cap: waited %v, want within [30s, 33s]", d)
		}
	}
}

// genBackoff draws any valid backoff.
func genBackoff(t *rapid.T) Backoff {
	base := time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "base"))
	capd := base + time.Duration(rapid.Int64Range(0, int64(24*time.Hour)).Draw(t, "extra"))
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return Exponential(base, rapid.Float64Range(1, 100).Draw(t, "mult"), capd)
	case 1:
		return Linear(base, time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "step")), capd)
	case 2:
		return Constant(base)
	case 3:
		return Decorrelated(max(base, 1), max(capd, 1))
	}
	return Backoff{}
}

func genJitter(t *rapid.T) Jitter {
	switch rapid.IntRange(0, 4).Draw(t, "jitter") {
	case 0:
		return NoJitter
	case 1:
		return FullJitter
	case 2:
		return EqualJitter
	case 3:
		return Proportional(rapid.Float64Range(0, 1).Draw(t, "ratio"))
	}
	return Jitter{}
}

// Every wait of every valid configuration is within [0, cap], whatever the
// retry number, previous delay and adaptive factor.
func TestPropertyDelayWithinCap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{Backoff: genBackoff(t), Jitter: genJitter(t)}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("generated an invalid config: %v", err)
		}
		rnd := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		factor := rapid.SampledFrom([]float64{1, 0.7, 1.5, 2, 0}).Draw(t, "factor")
		prev := time.Duration(0)
		for n := 1; n <= rapid.IntRange(1, 80).Draw(t, "retries"); n++ {
			wait, raw := cfg.delay(n, prev, factor, rnd)
			if wait < 0 || wait > cfg.Backoff.Cap() {
				t.Fatalf("retry %d: wait %v outside [0, %v] (%v, %v)", n, wait, cfg.Backoff.Cap(), cfg.Backoff, cfg.Jitter)
			}
			if raw < 0 || raw > cfg.Backoff.Cap() {
				t.Fatalf("retry %d: raw delay %v outside [0, %v]", n, raw, cfg.Backoff.Cap())
			}
			prev = raw
		}
	})
}

// Each jitter keeps a delay within its range.
func TestPropertyJitterRange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		j := genJitter(t)
		d := time.Duration(rapid.Int64Range(0, int64(1000*time.Hour)).Draw(t, "d"))
		rnd := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
		got := j.apply(d, rnd)
		lo, hi := time.Duration(0), d
		switch j.kind {
		case jitterNone:
			lo = d
		case jitterEqual:
			lo = d / 2
		case jitterProportional:
			r := j.Ratio()
			lo = time.Duration(math.Floor(float64(d) * (1 - r)))
			hi = time.Duration(math.Ceil(float64(d) * (1 + r)))
		}
		if got < lo || got > hi {
			t.Fatalf("%v.apply(%v) = %v, want within [%v, %v]", j, d, got, lo, hi)
		}
	})
}

// With exponential backoff, the wait never shrinks from one retry to the next
// for the same random draw, whatever the jitter; so the mean wait, over any
// sample of draws, is monotone non-decreasing in the retry number.
func TestPropertyExponentialMeansMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := time.Duration(rapid.Int64Range(0, int64(10*time.Second)).Draw(t, "base"))
		capd := base + time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "extra"))
		cfg := Config{
			Backoff: Exponential(base, rapid.Float64Range(1, 10).Draw(t, "mult"), capd),
			Jitter:  genJitter(t),
		}
		factor := rapid.SampledFrom([]float64{1, 0.7, 1.5, 2}).Draw(t, "factor")
		seed := rapid.Uint64().Draw(t, "seed")
		const draws = 50
		prevMean := -1.0
		for n := 1; n <= 12; n++ {
			// The same seeds for every n: common random numbers.
			rnd := rand.New(rand.NewPCG(seed, 3))
			sum := 0.0
			for range draws {
				w, _ := cfg.delay(n, 0, factor, rnd)
				sum += float64(w)
			}
			mean := sum / draws
			if mean < prevMean {
				t.Fatalf("%v %v: mean wait before retry %d is %v, below retry %d's %v",
					cfg.Backoff, cfg.Jitter, n, time.Duration(mean), n-1, time.Duration(prevMean))
			}
			prevMean = mean
		}
	})
}

func TestBackoffString(t *testing.T) {
	for b, want := range map[Backoff]string{
		Exponential(time.Second, 2, 30*time.Second):   "exponential(1s ×2 cap 30s)",
		Linear(time.Second, time.Second, time.Minute): "linear(1s +1s cap 1m0s)",
		Constant(time.Second):                         "constant(1s)",
		Decorrelated(time.Millisecond, time.Second):   "decorrelated(1ms cap 1s)",
		{}: "exponential(1s ×2 cap 1m0s)",
	} {
		if got := b.String(); !strings.EqualFold(got, want) {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// modeShare returns the largest fraction of waits that share one value.
func modeShare(waits []time.Duration) float64 {
	counts := make(map[time.Duration]int, len(waits))
	most := 0
	for _, w := range waits {
		counts[w]++
		most = max(most, counts[w])
	}
	return float64(most) / float64(len(waits))
}

// Jitter keeps spreading waits that reached the cap: whatever the schedule
// (a Constant backoff, whose every wait is its cap, or any other one after
// enough retries) and whatever jitter other than none, no single value holds
// more than 2 % of the waits, so callers that failed together do not all
// retry at the same instant.
func TestPropertyJitterSpreadsAtTheCap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := time.Duration(rapid.Int64Range(int64(time.Millisecond), int64(time.Minute)).Draw(t, "base"))
		capd := base * time.Duration(rapid.Int64Range(2, 100).Draw(t, "capOverBase"))
		var b Backoff
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			b = Constant(base)
		case 1:
			b = Exponential(base, rapid.Float64Range(1.1, 4).Draw(t, "mult"), capd)
		case 2:
			b = Linear(base, base, capd)
		case 3:
			b = Decorrelated(base, capd)
		}
		var j Jitter
		switch rapid.IntRange(0, 2).Draw(t, "jitter") {
		case 0:
			j = Proportional(rapid.Float64Range(0.05, 1).Draw(t, "ratio"))
		case 1:
			j = FullJitter
		case 2:
			j = EqualJitter
		}
		cfg := Config{Backoff: b, Jitter: j}
		factor := rapid.SampledFrom([]float64{1, 0.7, 1.5, 2}).Draw(t, "factor")
		rnd := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 7))
		waits := make([]time.Duration, 1000)
		for i := range waits {
			// Retry 200 is at the cap of every schedule drawn here; for
			// Decorrelated the previous raw delay is the cap too.
			waits[i], _ = cfg.delay(200, b.Cap(), factor, rnd)
		}
		if share := modeShare(waits); share > 0.02 {
			t.Fatalf("%v %v factor %v: one value holds %.1f%% of the waits at the cap", b, j, factor, 100*share)
		}
	})
}

// A proportional jitter whose range would reach past the cap is scaled to
// end at the cap: a wait at the cap with ±10 % is drawn from
// [cap×0.9/1.1, cap], spread over the whole of it.
func TestProportionalJitterScaledUnderCap(t *testing.T) {
	cfg := Config{Backoff: Constant(time.Second), Jitter: Proportional(0.1)}
	lo := time.Second * 9 / 11
	rnd := rand.New(rand.NewPCG(8, 9))
	var minSeen, maxSeen time.Duration = math.MaxInt64, 0
	for range 5000 {
		w, _ := cfg.Delay(1, 0, rnd)
		if w < lo-1 || w > time.Second {
			t.Fatalf("wait %v outside [%v, 1s]", w, lo)
		}
		minSeen, maxSeen = min(minSeen, w), max(maxSeen, w)
	}
	if minSeen > lo+5*time.Millisecond || maxSeen < time.Second-5*time.Millisecond {
		t.Errorf("waits span only [%v, %v], want about [%v, 1s]", minSeen, maxSeen, lo)
	}
}

// Config.Adaptive's factor scales the executor's waits before the cap: a
// healthy operation's (0.95 → 0.7×) exponential waits shrink and reach the
// 30 s cap one retry later. (This was ExampleConfig_Delay's output when the
// factor was an argument of Config.Delay.)
func TestDelayScaledByAdaptiveFactor(t *testing.T) {
	cfg := Config{Backoff: Exponential(time.Second, 2, 30*time.Second), Jitter: NoJitter}
	want := []time.Duration{700 * time.Millisecond, 1400 * time.Millisecond, 2800 * time.Millisecond,
		5600 * time.Millisecond, 11200 * time.Millisecond, 21 * time.Second}
	var prev time.Duration
	for n := 1; n <= len(want); n++ {
		var wait time.Duration
		wait, prev = cfg.delay(n, prev, adaptiveFactor(0.95), nil)
		if wait != want[n-1] {
			t.Errorf("retry %d: wait %v, want %v", n, wait, want[n-1])
		}
	}
}
