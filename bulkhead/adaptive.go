package bulkhead

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Algorithm selects how an adaptive bulkhead finds its limit.
type Algorithm uint8

const (
	// Gradient compares the short-term round-trip time with a long-term one,
	// in the manner of Netflix's concurrency-limits Gradient2: while recent
	// calls are not much slower than usual the limit grows by a small queue
	// allowance; when they are, it shrinks in proportion. See AdaptiveConfig
	// for the knobs and the two changes made to Gradient2.
	Gradient Algorithm = iota
	// AIMD adds to the limit while calls succeed and cuts it by a factor when
	// a call is dropped (an overload error) or slower than LatencyThreshold,
	// like TCP's congestion window.
	AIMD
)

// String returns "gradient" or "aimd".
func (a Algorithm) String() string {
	switch a {
	case Gradient:
		return "gradient"
	case AIMD:
		return "aimd"
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// AdaptiveConfig configures the limit algorithm of an Adaptive bulkhead, or
// an Estimator used on its own. The zero value is valid: Gradient between 1
// and 1000, starting at 20. Fields that belong to the other algorithm are
// ignored.
type AdaptiveConfig struct {
	// Algorithm picks Gradient (the zero value) or AIMD.
	Algorithm Algorithm

	// MinLimit is the floor of the limit. If zero, 1.
	MinLimit int
	// MaxLimit is the ceiling of the limit. If zero, 1000. At most 1,000,000.
	MaxLimit int
	// InitialLimit is where the limit starts. If zero, 20, moved into
	// [MinLimit, MaxLimit].
	InitialLimit int

	// Backoff (AIMD) multiplies the limit when a call is dropped or slow.
	// If zero, 0.9. It must be in (0, 1).
	Backoff float64
	// LatencyThreshold (AIMD) treats a call slower than this as dropped. If
	// zero, only dropped calls cut the limit.
	LatencyThreshold time.Duration

	// Tolerance (Gradient) is how much slower than the long-term round-trip
	// time recent calls may be before the limit shrinks. If zero, 1.5. It
	// must be at least 1.
	Tolerance float64
	// Smoothing (Gradient) is the weight of each new estimate against the
	// current limit. If zero, 0.2. It must be in (0, 1].
	Smoothing float64
	// QueueSize (Gradient) is how much the limit grows per window while
	// calls are within Tolerance. If zero, 4.
	QueueSize int
	// Window (Gradient) is the shortest span of samples averaged into one
	// short-term round-trip time. If zero, 1s.
	Window time.Duration
	// WindowSamples (Gradient) is the fewest samples in one window. If zero,
	// 10.
	WindowSamples int
	// LongWindow (Gradient) is the number of windows the long-term
	// round-trip time averages over (an exponential moving average). If
	// zero, 600.
	LongWindow int
	// ProbeInterval (Gradient) is how often the limit drops to a quarter
	// (never below MinLimit) to measure the round-trip time of an unloaded
	// dependency, which then replaces the long-term average. A probe lasts
	// until the calls admitted before it have finished and WindowSamples
	// calls admitted during it have. If zero, 60s; negative disables
	// probing, leaving plain Gradient2, whose limit creeps up under
	// sustained load.
	ProbeInterval time.Duration
}

const (
	defaultMinLimit     = 1
	defaultMaxLimit     = 1000
	defaultInitialLimit = 20
	// maxPermits bounds every limit and queue length, so that counts fit
	// the fields of Bulkhead.state with room for overflow.
	maxPermits = 1_000_000
)

// withDefaults validates c and fills in its defaults.
func (c AdaptiveConfig) withDefaults() (AdaptiveConfig, error) {
	if c.Algorithm > AIMD {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.Algorithm must be Gradient or AIMD, got %d", c.Algorithm)
	}
	if c.MinLimit < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.MinLimit must not be negative, got %d", c.MinLimit)
	}
	c.MinLimit = cmp.Or(c.MinLimit, defaultMinLimit)
	if c.MaxLimit < 0 || c.MaxLimit > maxPermits {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.MaxLimit must be in [0, %d], got %d", maxPermits, c.MaxLimit)
	}
	c.MaxLimit = cmp.Or(c.MaxLimit, max(defaultMaxLimit, c.MinLimit))
	if c.MinLimit > c.MaxLimit {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.MinLimit must be <= MaxLimit, got %d > %d", c.MinLimit, c.MaxLimit)
	}
	if c.InitialLimit < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.InitialLimit must not be negative, got %d", c.InitialLimit)
	}
	c.InitialLimit = cmp.Or(c.InitialLimit, min(max(defaultInitialLimit, c.MinLimit), c.MaxLimit))
	if c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.InitialLimit must be in [MinLimit, MaxLimit] = [%d, %d], got %d", c.MinLimit, c.MaxLimit, c.InitialLimit)
	}
	c.Backoff = cmp.Or(c.Backoff, 0.9)
	if !(c.Backoff > 0 && c.Backoff < 1) {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.Backoff must be in (0, 1), got %v", c.Backoff)
	}
	if c.LatencyThreshold < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.LatencyThreshold must not be negative, got %v", c.LatencyThreshold)
	}
	c.Tolerance = cmp.Or(c.Tolerance, 1.5)
	if !(c.Tolerance >= 1) || math.IsInf(c.Tolerance, 0) {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.Tolerance must be >= 1, got %v", c.Tolerance)
	}
	c.Smoothing = cmp.Or(c.Smoothing, 0.2)
	if !(c.Smoothing > 0 && c.Smoothing <= 1) {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.Smoothing must be in (0, 1], got %v", c.Smoothing)
	}
	if c.QueueSize < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.QueueSize must not be negative, got %d", c.QueueSize)
	}
	c.QueueSize = cmp.Or(c.QueueSize, 4)
	if c.Window < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.Window must not be negative, got %v", c.Window)
	}
	c.Window = cmp.Or(c.Window, time.Second)
	if c.WindowSamples < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.WindowSamples must not be negative, got %d", c.WindowSamples)
	}
	c.WindowSamples = cmp.Or(c.WindowSamples, 10)
	if c.LongWindow < 0 {
		return c, fmt.Errorf("bulkhead: AdaptiveConfig.LongWindow must not be negative, got %d", c.LongWindow)
	}
	c.LongWindow = cmp.Or(c.LongWindow, 600)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, time.Minute)
	return c, nil
}

// Estimator is an adaptive concurrency limit algorithm: a state machine fed
// one sample per completed call, with the time passed in, so it runs the
// same under a real clock, a fake one, or a simulator's virtual time. An
// Estimator is not safe for concurrent use; an Adaptive bulkhead serialises
// the calls to its own.
type Estimator interface {
	// Limit returns the current limit.
	Limit() int
	// SampleAt records a call that completed at now after rtt, with inflight
	// calls running (itself included), and returns the new limit. dropped
	// says that the call failed in a way that signals overload: a timeout, a
	// 503, a 429.
	SampleAt(now time.Time, rtt time.Duration, inflight int, dropped bool) int
}

// NewEstimator returns the Estimator that cfg.Algorithm selects, or an
// error naming the first invalid field of cfg.
func NewEstimator(cfg AdaptiveConfig) (Estimator, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return newEstimator(c), nil
}

// newEstimator builds from a validated config.
func newEstimator(c AdaptiveConfig) Estimator {
	if c.Algorithm == AIMD {
		return &aimd{cfg: c, limit: float64(c.InitialLimit)}
	}
	return &gradient{cfg: c, limit: float64(c.InitialLimit)}
}

// aimd is additive increase, multiplicative decrease. Two refinements over
// the per-sample rule of Netflix's AIMDLimit, both from TCP: the limit is cut
// at most once per round trip (a call that started before the last cut says
// nothing new, so a burst of slow calls is one signal, not fifty), and after
// the first cut the limit grows by 1/limit per sample, about one per round
// trip, instead of one per sample (slow start, then congestion avoidance).
type aimd struct {
	cfg     AdaptiveConfig
	limit   float64
	cut     bool      // the limit has been cut at least once
	lastCut time.Time // when
}

func (a *aimd) Limit() int { return int(a.limit) }

func (a *aimd) SampleAt(now time.Time, rtt time.Duration, inflight int, dropped bool) int {
	if dropped || (a.cfg.LatencyThreshold > 0 && rtt > a.cfg.LatencyThreshold) {
		if a.cut && now.Add(-rtt).Before(a.lastCut) {
			return a.Limit()
		}
		a.limit = max(float64(a.cfg.MinLimit), a.limit*a.cfg.Backoff)
		a.cut, a.lastCut = true, now
		return a.Limit()
	}
	if 2*float64(inflight) < a.limit {
		return a.Limit() // the caller, not the dependency, limits throughput
	}
	step := 1.0
	if a.cut {
		step = 1 / a.limit
	}
	a.limit = min(float64(a.cfg.MaxLimit), a.limit+step)
	return a.Limit()
}

// gradient is Netflix's Gradient2 over windows of samples, with two changes
// for the drift its users reported (Netflix concurrency-limits #137 and #134):
// under sustained load the long-term RTT follows the loaded RTT up, so the
// ratio stays within tolerance and the queue allowance grows the limit
// without end. Here the allowance is added only when the gradient is 1
// (no queueing seen), and a periodic probe re-measures the unloaded RTT, as
// Envoy's adaptive concurrency filter does, and resets the long-term average
// to it.
type gradient struct {
	cfg   AdaptiveConfig
	limit float64

	long  float64 // long-term RTT in ns: a plain mean over the first windows, then an EMA
	longN int     // windows averaged into long, up to warmupWindows

	// The window being filled, which began when the last one closed.
	wStart time.Time
	wSum   float64 // ns
	wN     int
	wInfl  int
	wDrop  bool

	nextProbe  time.Time
	probing    bool
	probeStart time.Time
	saved      float64 // the limit before the probe
}

const warmupWindows = 10

func (g *gradient) Limit() int {
	if g.probing {
		return g.probeLimit()
	}
	return int(g.limit)
}

func (g *gradient) probeLimit() int { return max(g.cfg.MinLimit, int(g.saved)/4) }

func (g *gradient) SampleAt(now time.Time, rtt time.Duration, inflight int, dropped bool) int {
	if g.probing && now.Add(-rtt).Before(g.probeStart) {
		return g.Limit() // admitted before the probe: it measures the loaded RTT
	}
	if g.wStart.IsZero() {
		g.wStart = now.Add(-rtt)
	}
	g.wSum += float64(max(rtt, 1))
	g.wN++
	g.wInfl = max(g.wInfl, inflight)
	g.wDrop = g.wDrop || dropped
	if g.wN < g.cfg.WindowSamples || (!g.probing && now.Sub(g.wStart) < g.cfg.Window) {
		return g.Limit() // a probe needs only WindowSamples samples, to be short
	}
	short, infl, drop := g.wSum/float64(g.wN), g.wInfl, g.wDrop
	g.wStart, g.wSum, g.wN, g.wInfl, g.wDrop = now, 0, 0, 0, false
	g.window(now, short, infl, drop)
	return g.Limit()
}

// window updates the limit with one window's mean RTT (short, in ns), its
// largest inflight, and whether any call in it was dropped.
func (g *gradient) window(now time.Time, short float64, inflight int, dropped bool) {
	probe := g.cfg.ProbeInterval > 0
	if g.probing {
		g.probing = false
		g.long, g.longN = short, warmupWindows
		g.limit = g.saved
		g.nextProbe = now.Add(g.cfg.ProbeInterval)
		return
	}
	if g.longN < warmupWindows {
		g.longN++
		g.long += (short - g.long) / float64(g.longN)
	} else {
		g.long += (short - g.long) * 2 / float64(g.cfg.LongWindow+1)
	}
	if g.long > 2*short {
		// Latency is back to normal after a long overload: let the
		// long-term RTT come down faster than the average would.
		g.long *= 0.95
	}
	if probe && g.longN >= warmupWindows {
		if g.nextProbe.IsZero() {
			g.nextProbe = now.Add(g.cfg.ProbeInterval)
		} else if !now.Before(g.nextProbe) {
			g.probing, g.probeStart, g.saved = true, now, g.limit
			return
		}
	}
	if !dropped && 2*float64(inflight) < g.limit {
		return // the caller, not the dependency, limits throughput
	}
	grad := max(0.5, min(1, g.cfg.Tolerance*g.long/short))
	if dropped {
		grad = 0.5
	}
	next := g.limit * grad
	if grad == 1 {
		next += float64(g.cfg.QueueSize)
	}
	next = g.limit*(1-g.cfg.Smoothing) + next*g.cfg.Smoothing
	g.limit = max(float64(g.cfg.MinLimit), min(float64(g.cfg.MaxLimit), next))
}
