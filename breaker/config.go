package breaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sluice-go/sluice"
)

// Defaults applied by New and Update to zero Config fields.
const (
	DefaultFailureThreshold = 5
	DefaultWindowSize       = 100
	DefaultWindowDuration   = 60 * time.Second
	DefaultWindowBuckets    = 10
	DefaultMinimumCalls     = 10
	DefaultOpenFor          = 60 * time.Second
	DefaultHalfOpenCalls    = 1
	DefaultSuccessThreshold = 3
	DefaultHalfOpenMaxWait  = 60 * time.Second
)

// Upper bounds that catch a misplaced unit before it allocates gigabytes.
const (
	maxWindowSize    = 1 << 20
	maxWindowBuckets = 1 << 14
)

// WindowType selects how the sliding window behind the rate thresholds is
// measured.
type WindowType uint8

const (
	// CountWindow holds the outcomes of the last WindowSize calls.
	CountWindow WindowType = iota
	// TimeWindow holds the outcomes of the last WindowDuration, kept in
	// WindowBuckets buckets so that old outcomes leave one bucket at a time.
	TimeWindow
)

// String returns "count" or "time".
func (t WindowType) String() string {
	switch t {
	case CountWindow:
		return "count"
	case TimeWindow:
		return "time"
	}
	return fmt.Sprintf("WindowType(%d)", uint8(t))
}

// Config configures a Breaker. The zero Config is valid: it trips after 5
// consecutive failures, stays open for 60 s, then admits one probe at a time
// and closes after 3 probe successes. Every field documents what its zero
// value means.
type Config struct {
	// Name identifies the breaker in errors, listeners, statistics and the
	// registry. If empty, the breaker is anonymous. Update cannot change it.
	Name string

	// FailureThreshold trips the breaker after that many consecutive
	// failures. If zero and both FailureRateThreshold and
	// SlowCallRateThreshold are zero, 5; if zero and a rate threshold is
	// set, consecutive failures alone never trip.
	FailureThreshold int

	// FailureRateThreshold trips the breaker when the share of failures in
	// the window reaches it (0 < x <= 1), once the window holds MinimumCalls
	// calls. If zero, the failure rate never trips.
	FailureRateThreshold float64

	// SlowCallDuration marks calls that take longer as slow. Slow calls are
	// counted in Stats; with SlowCallRateThreshold they can trip the breaker,
	// and a slow half-open probe then counts as a failed probe. Measuring it
	// costs two clock reads per call. If zero, no call is slow.
	SlowCallDuration time.Duration

	// SlowCallRateThreshold trips the breaker when the share of slow calls in
	// the window reaches it (0 < x <= 1), once the window holds MinimumCalls
	// calls. It needs SlowCallDuration. If zero, the slow rate never trips.
	SlowCallRateThreshold float64

	// WindowType selects a count-based (the zero value) or time-based window.
	WindowType WindowType

	// WindowSize is the number of calls a CountWindow holds. If zero, 100.
	WindowSize int

	// WindowDuration is the span a TimeWindow covers. If zero, 60 s.
	WindowDuration time.Duration

	// WindowBuckets is the number of buckets a TimeWindow is kept in. If
	// zero, 10.
	WindowBuckets int

	// MinimumCalls is the number of calls the window must hold before the
	// rate thresholds apply, so that one failure out of one call does not
	// trip a 50 % threshold. If zero, 10 (or WindowSize, if smaller).
	MinimumCalls int

	// OpenFor is how long the breaker stays open before it admits probes.
	// If zero, 60 s. OpenBackoff can make later openings longer.
	OpenFor time.Duration

	// OpenBackoff lengthens the open period each time the breaker opens
	// again without having closed successfully in between. If zero, every
	// open period lasts OpenFor.
	OpenBackoff Backoff

	// HalfOpenCalls is the number of probe calls a half-open breaker admits
	// at once; every other caller is rejected with ErrOpen until a probe
	// finishes. If zero, 1.
	HalfOpenCalls int

	// SuccessThreshold is the number of probe successes that close a
	// half-open breaker. One failed probe opens it again. If zero, 3.
	SuccessThreshold int

	// HalfOpenMaxWait bounds how long a half-open breaker waits for its
	// probes: when probes are out and none has finished for this long (a
	// hung call), the breaker opens again and later admits fresh probes;
	// the hung probes' outcomes then no longer count. The wait starts when
	// the breaker turns half-open, when a probe goes out while none is out,
	// and again whenever a probe finishes. A half-open breaker with no probe
	// out waits for the next call however long that takes. If zero, 60 s.
	HalfOpenMaxWait time.Duration

	// IsFailure reports whether an error returned by a call counts against
	// the dependency; if it returns false the call counts as a success. It
	// is not called for nil errors, nor for the caller's own cancellation
	// (ctx done and err a context error), which counts as neither success
	// nor failure. It must be safe for concurrent use. If nil,
	// sluice.Classify(ctx, err).IsFailure().
	IsFailure func(ctx context.Context, err error) bool

	// Clock is the source of time for the methods that read it (Execute,
	// Allow, Permit.Done, State, Stats), for changes made by the manual
	// methods, and for RetryAfter. If nil, the system clock.
	Clock sluice.Clock

	// OnStateChange, if set, is called after every change of state, never
	// under the breaker's lock, one call at a time and in the order the
	// changes happened. It may call the breaker's methods.
	OnStateChange func(StateChange)

	// Shared, if set, links the breaker to the breakers of the same name
	// in other instances (sluiceredis.NewBreakerSync), so that the fleet
	// opens, probes and closes as one; see Shared. New attaches it, Close
	// closes it, and Update cannot change it. If nil, the breaker is the
	// instance's own.
	Shared Shared
}

// Backoff makes each consecutive open period longer: the n-th opening since
// the last successful close (n = 0, 1, ...) lasts OpenFor × Multiplierⁿ,
// spread by ±Jitter and capped at Max. The zero Backoff keeps OpenFor fixed.
type Backoff struct {
	// Multiplier is the growth factor per re-opening; it must be 0 or at
	// least 1. If zero, 1 (no growth).
	Multiplier float64

	// Max caps every open period. If zero, 10 × OpenFor.
	Max time.Duration

	// Jitter spreads each open period uniformly by ± that fraction of it
	// (0 <= x < 1), so that many instances do not probe in step. If zero,
	// no jitter.
	Jitter float64

	// Rand is the source of the jitter, for simulations that must repeat.
	// The breaker uses it under its lock; give each breaker its own. If
	// nil, math/rand/v2's global source.
	Rand *rand.Rand
}

// settings is a validated Config with its defaults applied. It is immutable
// once built and read through an atomic pointer, so that Update never races
// with the hot path.
type settings struct {
	cfg   Config // as given, for Config()
	clock sluice.Clock
	// sysClock is set when time comes from package time, so that timed
	// transitions can be driven by a runtime timer.
	sysClock bool

	failureThreshold int
	failureRate      float64
	slowDur          time.Duration
	slowRate         float64

	windowType     WindowType
	windowSize     int
	windowDuration time.Duration
	windowBuckets  int
	minCalls       int64

	openFor    time.Duration
	multiplier float64
	maxOpen    time.Duration
	jitter     float64
	rand       func() float64

	halfOpenCalls    int
	successThreshold int
	halfOpenMaxWait  time.Duration

	isFailure func(context.Context, error) bool
	onChange  func(StateChange)
}

func fieldErr(field, rule string, got any) error {
	return fmt.Errorf("breaker: Config.%s must %s, got %v", field, rule, got)
}

func isRate(x float64) bool { return x >= 0 && x <= 1 } // false for NaN

// Validate reports whether cfg is a valid Config: nil, or an error naming
// each invalid field and the rule it breaks. New and Update return the same
// error, so a configuration can be checked without building a breaker.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) { errs = append(errs, fieldErr(field, rule, got)) }

	if cfg.FailureThreshold < 0 {
		bad("FailureThreshold", "be >= 0", cfg.FailureThreshold)
	}
	if !isRate(cfg.FailureRateThreshold) {
		bad("FailureRateThreshold", "be between 0 and 1", cfg.FailureRateThreshold)
	}
	if cfg.SlowCallDuration < 0 {
		bad("SlowCallDuration", "be >= 0", cfg.SlowCallDuration)
	}
	if !isRate(cfg.SlowCallRateThreshold) {
		bad("SlowCallRateThreshold", "be between 0 and 1", cfg.SlowCallRateThreshold)
	} else if cfg.SlowCallRateThreshold > 0 && cfg.SlowCallDuration <= 0 {
		bad("SlowCallDuration", "be > 0 when SlowCallRateThreshold is set", cfg.SlowCallDuration)
	}

	switch cfg.WindowType {
	case CountWindow:
		if cfg.WindowSize < 0 || cfg.WindowSize > maxWindowSize {
			bad("WindowSize", fmt.Sprintf("be between 0 and %d", maxWindowSize), cfg.WindowSize)
		}
		if cfg.WindowDuration != 0 {
			bad("WindowDuration", "be zero for a CountWindow", cfg.WindowDuration)
		}
		if cfg.WindowBuckets != 0 {
			bad("WindowBuckets", "be zero for a CountWindow", cfg.WindowBuckets)
		}
	case TimeWindow:
		if cfg.WindowSize != 0 {
			bad("WindowSize", "be zero for a TimeWindow", cfg.WindowSize)
		}
		if cfg.WindowDuration < 0 {
			bad("WindowDuration", "be >= 0", cfg.WindowDuration)
		}
		if cfg.WindowBuckets < 0 || cfg.WindowBuckets > maxWindowBuckets {
			bad("WindowBuckets", fmt.Sprintf("be between 0 and %d", maxWindowBuckets), cfg.WindowBuckets)
		}
	default:
		bad("WindowType", "be CountWindow or TimeWindow", cfg.WindowType)
	}
	if cfg.MinimumCalls < 0 {
		bad("MinimumCalls", "be >= 0", cfg.MinimumCalls)
	}
	if cfg.OpenFor < 0 {
		bad("OpenFor", "be >= 0", cfg.OpenFor)
	}
	bo := cfg.OpenBackoff
	if !(bo.Multiplier == 0 || bo.Multiplier >= 1) || math.IsInf(bo.Multiplier, 0) {
		bad("OpenBackoff.Multiplier", "be 0 or a finite number >= 1", bo.Multiplier)
	}
	if bo.Max < 0 {
		bad("OpenBackoff.Max", "be >= 0", bo.Max)
	}
	if !(bo.Jitter >= 0 && bo.Jitter < 1) {
		bad("OpenBackoff.Jitter", "be >= 0 and < 1", bo.Jitter)
	}
	if cfg.HalfOpenCalls < 0 {
		bad("HalfOpenCalls", "be >= 0", cfg.HalfOpenCalls)
	}
	if cfg.SuccessThreshold < 0 {
		bad("SuccessThreshold", "be >= 0", cfg.SuccessThreshold)
	}
	if cfg.HalfOpenMaxWait < 0 {
		bad("HalfOpenMaxWait", "be >= 0", cfg.HalfOpenMaxWait)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Rules between fields, checked on the values the defaults give them.
	if cfg.WindowType == CountWindow {
		if size := cmp.Or(cfg.WindowSize, DefaultWindowSize); cfg.MinimumCalls > size {
			return fmt.Errorf("breaker: Config.MinimumCalls must be <= WindowSize (%d), got %d", size, cfg.MinimumCalls)
		}
	}
	openFor := cmp.Or(cfg.OpenFor, DefaultOpenFor)
	if maxOpen := cmp.Or(bo.Max, 10*openFor); maxOpen < openFor {
		return fmt.Errorf("breaker: Config.OpenBackoff.Max must be >= OpenFor (%v), got %v", openFor, maxOpen)
	}
	return nil
}

// newSettings validates cfg and applies its defaults.
func newSettings(cfg Config) (*settings, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &settings{cfg: cfg}
	s.clock = sluice.ClockOr(cfg.Clock)
	s.sysClock = s.clock == sluice.SystemClock()
	s.failureRate = cfg.FailureRateThreshold
	s.slowDur = cfg.SlowCallDuration
	s.slowRate = cfg.SlowCallRateThreshold
	s.failureThreshold = cfg.FailureThreshold
	if s.failureThreshold == 0 && s.failureRate == 0 && s.slowRate == 0 {
		s.failureThreshold = DefaultFailureThreshold
	}

	s.windowType = cfg.WindowType
	if s.windowType == CountWindow {
		s.windowSize = cmp.Or(cfg.WindowSize, DefaultWindowSize)
		s.minCalls = int64(cmp.Or(cfg.MinimumCalls, min(DefaultMinimumCalls, s.windowSize)))
	} else {
		s.windowDuration = cmp.Or(cfg.WindowDuration, DefaultWindowDuration)
		s.windowBuckets = cmp.Or(cfg.WindowBuckets, DefaultWindowBuckets)
		s.minCalls = int64(cmp.Or(cfg.MinimumCalls, DefaultMinimumCalls))
	}

	bo := cfg.OpenBackoff
	s.openFor = cmp.Or(cfg.OpenFor, DefaultOpenFor)
	s.multiplier = cmp.Or(bo.Multiplier, 1)
	s.maxOpen = cmp.Or(bo.Max, 10*s.openFor)
	s.jitter = bo.Jitter
	s.rand = rand.Float64
	if bo.Rand != nil {
		s.rand = bo.Rand.Float64
	}

	s.halfOpenCalls = cmp.Or(cfg.HalfOpenCalls, DefaultHalfOpenCalls)
	s.successThreshold = cmp.Or(cfg.SuccessThreshold, DefaultSuccessThreshold)
	s.halfOpenMaxWait = cmp.Or(cfg.HalfOpenMaxWait, DefaultHalfOpenMaxWait)
	s.isFailure = cfg.IsFailure
	s.onChange = cfg.OnStateChange
	return s, nil
}

// sameWindow reports whether two settings describe the same window, so that
// Update keeps the recorded outcomes.
func sameWindow(a, b *settings) bool {
	return a.windowType == b.windowType && a.windowSize == b.windowSize &&
		a.windowDuration == b.windowDuration && a.windowBuckets == b.windowBuckets
}

// openDuration returns the length of the n-th consecutive open period.
func (s *settings) openDuration(n int) time.Duration {
	d := float64(s.openFor)
	if s.multiplier > 1 && n > 0 {
		d *= math.Pow(s.multiplier, float64(n))
	}
	if d > float64(s.maxOpen) {
		d = float64(s.maxOpen)
	}
	if s.jitter > 0 {
		d *= 1 + s.jitter*(2*s.rand()-1)
		d = min(d, float64(s.maxOpen))
	}
	return max(time.Duration(d), time.Nanosecond)
}
