package retry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// backoffKind names the shape of a Backoff.
type backoffKind uint8

// The backoff shapes. kindDefault is the zero Backoff, which behaves as
// DefaultBackoff.
const (
	kindDefault backoffKind = iota
	kindExponential
	kindLinear
	kindConstant
	kindDecorrelated
)

var kindNames = [...]string{"default", "exponential", "linear", "constant", "decorrelated"}

// String returns the kind's name as written in configuration files.
func (k backoffKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "BackoffKind(" + strconv.Itoa(int(k)) + ")"
}

// Backoff is the schedule of waits between attempts, before jitter. Build one
// with Exponential, Linear, Constant or Decorrelated; the zero Backoff means
// DefaultBackoff. It is a small value, compared and copied freely, and its
// arguments are checked by New, which reports the field and the rule broken.
type Backoff struct {
	kind backoffKind
	base time.Duration
	step time.Duration
	cap  time.Duration
	mult float64
}

// DefaultBackoff is the schedule of the zero Backoff: the SysManage resilience document's
// default policy, exponential from 1 s, doubling, capped at 60 s.
func DefaultBackoff() Backoff { return Exponential(time.Second, 2, 60*time.Second) }

// Exponential waits base, base×multiplier, base×multiplier², ... and never
// more than cap. base must be at least 0, multiplier at least 1 (and
// finite), and cap at least base; New refuses the others, naming the field.
func Exponential(base time.Duration, multiplier float64, cap time.Duration) Backoff {
	return Backoff{kind: kindExponential, base: base, mult: multiplier, cap: cap}
}

// Linear waits base, base+step, base+2×step, ... and never more than cap.
// base and step must be at least 0, and cap at least base; New refuses the
// others, naming the field.
func Linear(base, step, cap time.Duration) Backoff {
	return Backoff{kind: kindLinear, base: base, step: step, cap: cap}
}

// Constant waits d between every two attempts. d must be at least 0; New
// refuses a negative d. Its Cap is d itself, so a server's Retry-After is
// capped by Config.RetryAfterMax instead.
func Constant(d time.Duration) Backoff {
	return Backoff{kind: kindConstant, base: d, cap: d}
}

// Decorrelated is the "decorrelated jitter" schedule: each wait is drawn
// uniformly between base and three times the previous wait, or cap if that
// is less. The range is capped, not the draw: clamping the draw would put
// two thirds of the waits that reach the cap exactly on it, and the callers
// that failed together would retry together. It is random by construction,
// so Config.Jitter does not apply to it. base must be positive (a zero base
// would stay zero forever) and cap at least base.
func Decorrelated(base, cap time.Duration) Backoff {
	return Backoff{kind: kindDecorrelated, base: base, cap: cap}
}

func (b Backoff) orDefault() Backoff {
	if b.kind == kindDefault {
		return DefaultBackoff()
	}
	return b
}

// IsZero reports whether b is the zero Backoff, which means DefaultBackoff.
func (b Backoff) IsZero() bool { return b == Backoff{} }

// Base returns the first wait (the lower bound for Decorrelated).
func (b Backoff) Base() time.Duration { return b.orDefault().base }

// Multiplier returns the growth factor of an exponential schedule, 0 for other shapes.
func (b Backoff) Multiplier() float64 { return b.orDefault().mult }

// Step returns the increment of a linear schedule, 0 for other shapes.
func (b Backoff) Step() time.Duration { return b.orDefault().step }

// Cap returns the longest wait the schedule produces: the policy's max delay,
// which also caps a server's Retry-After unless the backoff is Constant (see
// Config.RetryAfterMax).
func (b Backoff) Cap() time.Duration { return b.orDefault().cap }

// String describes the schedule, e.g. "exponential(1s ×2 cap 30s)".
func (b Backoff) String() string {
	b = b.orDefault()
	switch b.kind {
	case kindExponential:
		return fmt.Sprintf("exponential(%v ×%g cap %v)", b.base, b.mult, b.cap)
	case kindLinear:
		return fmt.Sprintf("linear(%v +%v cap %v)", b.base, b.step, b.cap)
	case kindConstant:
		return fmt.Sprintf("constant(%v)", b.base)
	case kindDecorrelated:
		return fmt.Sprintf("decorrelated(%v cap %v)", b.base, b.cap)
	}
	return b.kind.String()
}

func (b Backoff) validate(field string) error {
	b = b.orDefault()
	switch b.kind {
	case kindExponential, kindLinear, kindConstant, kindDecorrelated:
	default:
		return fmt.Errorf("retry: %s has unknown kind %v", field, b.kind)
	}
	if b.base < 0 {
		return fmt.Errorf("retry: %s.Base must be >= 0, got %v", field, b.base)
	}
	if b.kind == kindDecorrelated && b.base == 0 {
		return fmt.Errorf("retry: %s.Base must be > 0 for a decorrelated backoff, got 0s", field)
	}
	if b.step < 0 {
		return fmt.Errorf("retry: %s.Step must be >= 0, got %v", field, b.step)
	}
	if b.kind == kindExponential && !(b.mult >= 1) { // also rejects NaN
		return fmt.Errorf("retry: %s.Multiplier must be >= 1, got %v", field, b.mult)
	}
	if math.IsInf(b.mult, 0) {
		return fmt.Errorf("retry: %s.Multiplier must be finite, got %v", field, b.mult)
	}
	if b.cap < b.base {
		return fmt.Errorf("retry: %s.Cap must be >= Base (%v), got %v", field, b.base, b.cap)
	}
	return nil
}

// Delay returns the wait before retry n (n = 1 is the wait after the first
// attempt), before jitter, within [0, Cap()]. prev is the previous value
// Delay returned for this call (0 before the first retry); only Decorrelated
// uses it, and only Decorrelated draws from rnd. A nil rnd means the
// goroutine-local source of math/rand/v2, which takes no lock.
//
// Delay is a pure function of its arguments, so a simulator or a test can
// replay a schedule with a seeded rnd.
func (b Backoff) Delay(n int, prev time.Duration, rnd *rand.Rand) time.Duration {
	b = b.orDefault()
	if n < 1 {
		n = 1
	}
	switch b.kind {
	case kindExponential:
		f := float64(b.base) * math.Pow(b.mult, float64(n-1))
		if !(f < float64(b.cap)) { // also catches +Inf and NaN
			return b.cap
		}
		return time.Duration(f)
	case kindLinear:
		if b.step > 0 && int64(n-1) > int64(b.cap-b.base)/int64(b.step) {
			return b.cap
		}
		return min(b.base+time.Duration(n-1)*b.step, b.cap)
	case kindDecorrelated:
		return b.base + uniform(rnd, b.decorrelatedTop(prev)-b.base)
	default: // kindConstant
		return b.base
	}
}

// decorrelatedTop is the top of the range a decorrelated wait after prev is
// drawn from: three times prev (at least base), at most the cap.
func (b Backoff) decorrelatedTop(prev time.Duration) time.Duration {
	prev = max(prev, b.base)
	if prev > math.MaxInt64/3 {
		return b.cap
	}
	return min(3*prev, b.cap)
}

// uniform returns a uniformly random duration in [0, d]. It scales one
// float draw, so for a given draw the result grows with d: schedules that
// grow stay ordered draw by draw, which the property tests rely on.
func uniform(rnd *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	f := float01(rnd) * float64(d)
	if f >= float64(d) {
		return d
	}
	return time.Duration(f)
}

func float01(rnd *rand.Rand) float64 {
	if rnd == nil {
		return rand.Float64()
	}
	return rnd.Float64()
}

// jitterKind names the way a Jitter randomises a wait.
type jitterKind uint8

// The jitter kinds. jitterDefault is the zero Jitter, which behaves as
// FullJitter.
const (
	jitterDefault jitterKind = iota
	jitterNone
	jitterFull
	jitterEqual
	jitterProportional
)

var jitterNames = [...]string{"default", "none", "full", "equal", "proportional"}

// String returns the kind's name as written in configuration files.
func (k jitterKind) String() string {
	if int(k) < len(jitterNames) {
		return jitterNames[k]
	}
	return "JitterKind(" + strconv.Itoa(int(k)) + ")"
}

// Jitter randomises each wait so that callers that failed together do not
// retry together. The zero Jitter means FullJitter.
type Jitter struct {
	kind  jitterKind
	ratio float64
}

// The fixed jitters. Use Proportional for a ± range.
var (
	// NoJitter waits exactly the backoff's delay.
	NoJitter = Jitter{kind: jitterNone}
	// FullJitter waits a uniform draw from [0, d]: the spread that best
	// breaks up a crowd (Brooker, "Exponential Backoff And Jitter", 2015).
	FullJitter = Jitter{kind: jitterFull}
	// EqualJitter waits d/2 plus a uniform draw from [0, d/2]: never less
	// than half the delay.
	EqualJitter = Jitter{kind: jitterEqual}
)

// Proportional waits d × (1 ± r): a uniform draw from [d(1-r), d(1+r)], the
// SysManage resilience document's "10 % jitter" with r = 0.1. r must be within [0, 1].
// Under a policy's cap (Config.Delay) a range that would end past the cap is
// scaled to end at it, so waits at the cap stay spread instead of piling up
// on it.
func Proportional(r float64) Jitter { return Jitter{kind: jitterProportional, ratio: r} }

// Ratio returns r of a Proportional jitter, 0 otherwise.
func (j Jitter) Ratio() float64 { return j.ratio }

// String describes the jitter, e.g. "full" or "±10%".
func (j Jitter) String() string {
	if j.kind == jitterProportional {
		return "±" + strconv.FormatFloat(j.ratio*100, 'g', -1, 64) + "%"
	}
	if j.kind == jitterDefault {
		return jitterFull.String()
	}
	return j.kind.String()
}

func (j Jitter) validate() error {
	switch j.kind {
	case jitterDefault, jitterNone, jitterFull, jitterEqual:
		return nil
	case jitterProportional:
		if !(j.ratio >= 0 && j.ratio <= 1) {
			return fmt.Errorf("retry: Config.Jitter range must be within [0, 1], got %v", j.ratio)
		}
		return nil
	}
	return fmt.Errorf("retry: Config.Jitter has unknown kind %v", j.kind)
}

// apply returns d randomised by the jitter, never negative: within [0, d] for
// full, [d/2, d] for equal, [d(1-r), d(1+r)] for proportional. rnd as for
// Backoff.Delay.
func (j Jitter) apply(d time.Duration, rnd *rand.Rand) time.Duration {
	if d <= 0 {
		return 0
	}
	switch j.kind {
	case jitterNone:
		return d
	case jitterEqual:
		half := d / 2
		return half + uniform(rnd, d-half)
	case jitterProportional:
		return j.proportional(d, math.MaxInt64, rnd)
	default: // jitterFull, jitterDefault
		return uniform(rnd, d)
	}
}

// applyUnder is apply for a wait that must not exceed cap (d <= cap). Full,
// equal and no jitter never exceed d; a proportional range that would reach
// past cap is scaled to end at it (see Config.Delay).
func (j Jitter) applyUnder(d, cap time.Duration, rnd *rand.Rand) time.Duration {
	if j.kind == jitterProportional && d > 0 {
		return j.proportional(d, cap, rnd)
	}
	return min(j.apply(d, rnd), cap)
}

// proportional draws from [d(1-r), d(1+r)], scaled by cap/(d(1+r)) when that
// range would end past cap. Scaling (rather than shifting the range down)
// keeps the wait non-decreasing in d for a given draw, so a growing schedule
// stays ordered draw by draw.
func (j Jitter) proportional(d, cap time.Duration, rnd *rand.Rand) time.Duration {
	f := float64(d) * (1 + j.ratio*(2*float01(rnd)-1))
	if hi := float64(d) * (1 + j.ratio); hi > float64(cap) {
		f *= float64(cap) / hi
	}
	if f >= float64(cap) {
		return cap
	}
	return time.Duration(max(f, 0))
}

// adaptiveFactor is the SysManage resilience document's adaptive rule: the factor by which
// delays are scaled given an operation's recent success rate. A healthy
// operation (> 0.9) retries sooner (0.7×), a struggling one later: > 0.7 →
// 1×, > 0.5 → 1.5×, otherwise 2×.
func adaptiveFactor(successRate float64) float64 {
	switch {
	case successRate > 0.9:
		return 0.7
	case successRate > 0.7:
		return 1
	case successRate > 0.5:
		return 1.5
	default:
		return 2
	}
}

// ParseRetryAfter parses an HTTP Retry-After header value, either
// delta-seconds ("120") or an HTTP-date, as a wait from now. A date in the
// past gives 0. ok is false for an empty or malformed value.
func ParseRetryAfter(value string, now time.Time) (wait time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if value[0] >= '0' && value[0] <= '9' {
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, false
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(secs) * time.Second, true
	}
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, value); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	return 0, false
}

// httpDateLayouts are the three forms of an HTTP-date a recipient must
// accept: IMF-fixdate first, then the obsolete RFC 850 and asctime forms.
// Parsing them here keeps net/http out of the policy.
var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	time.RFC850,
	time.ANSIC,
}

// retryAfterWait turns a server's Retry-After into the wait: capped by
// Config.RetryAfterMax, then up to 10 % more, so that a crowd told to come back
// at the same second does not arrive in the same millisecond.
func retryAfterWait(ra, cap time.Duration, rnd *rand.Rand) time.Duration {
	d := min(ra, cap)
	return d + uniform(rnd, d/10)
}
