package retry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-go/sluice"
)

// Defaults applied by New to zero fields of a Config.
const (
	DefaultName        = "retry"
	DefaultMaxAttempts = 3
	DefaultSampleEvery = 16

	// DefaultRetryAfterMax caps a server's Retry-After under a Constant
	// backoff when Config.RetryAfterMax is zero: the cap of DefaultBackoff.
	DefaultRetryAfterMax = 60 * time.Second
)

// Config configures a Retry. The zero Config is valid: 3 attempts, the
// DefaultBackoff (exponential from 1 s, ×2, capped at 60 s) with full jitter,
// the shared sluice classifier, and a retry budget of its own.
type Config struct {
	// Name names the operation in statistics and metrics
	// (retry_attempts_total{operation=Name}). If empty, "retry".
	Name string

	// MaxAttempts is the most attempts a call gets, the first included, so
	// 1 means no retry. If zero, 3. Negative is an error.
	MaxAttempts int

	// MaxElapsed bounds the time from the start of a call to the start of
	// its last attempt: no retry is begun whose wait would end past it, and
	// the call fails with ErrExhausted. If zero, no bound.
	MaxElapsed time.Duration

	// Backoff is the schedule of waits. If zero, DefaultBackoff(). Its Cap
	// is the policy's max delay, the longest wait it computes.
	Backoff Backoff

	// RetryAfterMax is the longest a server's Retry-After is waited (plus up
	// to 10 %, so a crowd told the same second does not return in the same
	// millisecond). If zero, the backoff's Cap; for a Constant backoff,
	// whose Cap is its one delay, DefaultRetryAfterMax — a constant 20 ms
	// between attempts says nothing about how long a server may ask to be
	// left alone. Negative is an error.
	RetryAfterMax time.Duration

	// Jitter randomises each wait. If zero, FullJitter. It does not apply to
	// a Decorrelated backoff, which is random already.
	Jitter Jitter

	// Adaptive scales every wait by a factor of the operation's success
	// rate over its last 100 calls (0.8 until there is history): the
	// SysManage resilience document's adaptive backoff, 0.7× above 0.9,
	// 1× above 0.7, 1.5× above 0.5, otherwise 2×. Scaled waits stay within the
	// backoff's Cap (so with Constant the factor can only shorten them). It
	// costs a short mutex per call.
	Adaptive bool

	// Classifier decides which errors are retried (Failure.Retryable). If
	// nil, sluice.DefaultClassifier.
	Classifier *sluice.Classifier

	// RetryOn, if set, decides instead of the Classifier whether an error
	// is retried. The caller's own cancellation is never retried.
	RetryOn func(err error) bool

	// RetryOnResult, if set, is asked about every successful attempt of a
	// call made with sluice.Get; when it returns true the attempt counts as
	// a failure and is retried. result is a pointer to the value (a *T under
	// Get[T]); see ResultMatches. Calls made with Do have no result and are
	// never passed to it. When the attempts run out, the error is an
	// ExhaustedError wrapping ErrUnwantedResult and Get returns the last value.
	RetryOnResult func(result any) bool

	// AttemptTimeout bounds each attempt through its context
	// (context.WithTimeoutCause); the callee learns why through
	// context.Cause, which is ErrAttemptTimeout. A timed-out attempt is
	// retried like any timeout. If zero, attempts are bounded only by the
	// caller's context. The deadline runs on real time (the bubble's time
	// under testing/synctest), not on Clock.
	AttemptTimeout time.Duration

	// RetryNonIdempotent allows retrying work that the caller marked
	// non-idempotent with sluice.WithIdempotent(ctx, false). If false, such
	// work gets one attempt. Unmarked work is treated as idempotent.
	RetryNonIdempotent bool

	// Budget limits retries across calls so that an outage cannot multiply
	// the load on a dependency. If nil, the Retry gets a budget of its own,
	// NewBudget(BudgetConfig{}): each first attempt earns a tenth of a
	// retry, valid for 10 s, on top of a reserve of 10 retries per second.
	// Pass one Budget to several policies to share it; pass NoBudget{} to
	// turn budgeting off.
	Budget Budget

	// SampleEvery makes the executor read the clock for one successful call
	// in SampleEvery, at random; only those calls enter the duration
	// histogram, each weighted by SampleEvery, so the histogram is an
	// unbiased estimate. A successful first attempt otherwise reads no
	// clock at all, which on many machines costs more than the rest of the
	// policy. If zero, 16; 1 times every call exactly. Counts of calls,
	// attempts and outcomes are always exact.
	SampleEvery int

	// OnRetry, if set, is called before each wait with the attempt that
	// failed, its error and the wait. It runs on the caller's goroutine,
	// holding no lock; a slow hook delays the retry.
	OnRetry func(Event)

	// Clock is the source of time for waits and windows. If nil, the system
	// clock.
	Clock sluice.Clock
}

// Event describes one retry, for Config.OnRetry.
type Event struct {
	// Name is the policy's Config.Name.
	Name string
	// Attempt is the number of the attempt that failed, 1 for the first.
	Attempt int
	// Err is that attempt's error (ErrUnwantedResult when RetryOnResult
	// rejected its value).
	Err error
	// Delay is the wait before attempt Attempt+1.
	Delay time.Duration
}

// ErrUnwantedResult is the error of an attempt whose value RetryOnResult
// rejected.
var ErrUnwantedResult = errors.New("retry: result matched RetryOnResult")

// ErrAttemptTimeout is the cause of a context cancelled by
// Config.AttemptTimeout, read through context.Cause; the error of a timed-out
// attempt wraps it. It matches context.DeadlineExceeded under errors.Is and
// reports Timeout() true.
var ErrAttemptTimeout error = attemptTimeoutError{}

type attemptTimeoutError struct{}

func (attemptTimeoutError) Error() string        { return "retry: attempt timed out" }
func (attemptTimeoutError) Timeout() bool        { return true }
func (attemptTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// ResultMatches adapts a predicate on values of type T for
// Config.RetryOnResult: it is false for results of any other type.
func ResultMatches[T any](pred func(T) bool) func(result any) bool {
	return func(result any) bool {
		p, ok := result.(*T)
		return ok && p != nil && pred(*p)
	}
}

// Network is the SysManage resilience document's policy for calls to agents over the
// network: 5 attempts, exponential from 1 s, ×2, capped at 30 s, ±10 %
// jitter. It returns a Config to adjust before New.
func Network() Config {
	return Config{Name: "network", MaxAttempts: 5, Backoff: Exponential(time.Second, 2, 30*time.Second), Jitter: Proportional(0.1)}
}

// Database is the SysManage resilience document's policy for database calls: 3 attempts,
// exponential from 0.5 s, ×2, capped at 10 s, ±10 % jitter.
func Database() Config {
	return Config{Name: "database", MaxAttempts: 3, Backoff: Exponential(500*time.Millisecond, 2, 10*time.Second), Jitter: Proportional(0.1)}
}

// API is the SysManage resilience document's policy for external HTTP APIs: 4 attempts,
// exponential from 2 s, ×1.5, capped at 60 s, ±10 % jitter, retrying the
// statuses 429, 502, 503 and 504 and no other status (network errors and
// timeouts stay retryable, as the shared classifier has them).
func API() Config {
	return Config{
		Name: "api", MaxAttempts: 4, Backoff: Exponential(2*time.Second, 1.5, 60*time.Second), Jitter: Proportional(0.1),
		Classifier: &sluice.Classifier{Rules: []sluice.Rule{
			// A timeout policy's error is a timeout whatever status the
			// work it cut short returned.
			{Is: sluice.ErrTimeLimit, Type: sluice.FailureTimeout, Retryable: true},
			{Statuses: []int{429}, Type: sluice.FailureRateLimited, Retryable: true},
			{Statuses: []int{502, 503}, Type: sluice.FailureUnavailable, Retryable: true},
			{Statuses: []int{504}, Type: sluice.FailureTimeout, Retryable: true},
			{Match: hasStatus, Type: sluice.FailureUnknown},
		}},
	}
}

func hasStatus(err error) bool {
	var sc sluice.StatusCoder
	return errors.As(err, &sc)
}

// withDefaults returns c with zero fields filled in (but Budget, Classifier
// and Clock left nil: their defaults are objects).
func (c Config) withDefaults() Config {
	c.Name = cmp.Or(c.Name, DefaultName)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	if c.Backoff.IsZero() {
		c.Backoff = DefaultBackoff()
	}
	if c.Jitter.kind == jitterDefault {
		c.Jitter = FullJitter
	}
	c.SampleEvery = cmp.Or(c.SampleEvery, DefaultSampleEvery)
	return c
}

// retryAfterMax is the cap on a server's Retry-After; see RetryAfterMax.
func (c Config) retryAfterMax() time.Duration {
	switch {
	case c.RetryAfterMax > 0:
		return c.RetryAfterMax
	case c.Backoff.kind == kindConstant:
		return DefaultRetryAfterMax
	}
	return c.Backoff.Cap()
}

// Validate reports the first field of c that New would reject, naming the
// field and the rule.
func (c Config) Validate() error {
	if c.MaxAttempts < 0 {
		return fmt.Errorf("retry: Config.MaxAttempts must be >= 0 (0 means %d), got %d", DefaultMaxAttempts, c.MaxAttempts)
	}
	if c.MaxElapsed < 0 {
		return fmt.Errorf("retry: Config.MaxElapsed must be >= 0, got %v", c.MaxElapsed)
	}
	if c.RetryAfterMax < 0 {
		return fmt.Errorf("retry: Config.RetryAfterMax must be >= 0 (0 means the backoff's cap), got %v", c.RetryAfterMax)
	}
	if c.AttemptTimeout < 0 {
		return fmt.Errorf("retry: Config.AttemptTimeout must be >= 0, got %v", c.AttemptTimeout)
	}
	if c.SampleEvery < 0 {
		return fmt.Errorf("retry: Config.SampleEvery must be >= 0 (0 means %d), got %d", DefaultSampleEvery, c.SampleEvery)
	}
	switch b := c.Budget.(type) {
	case *RatioBudget:
		if b == nil {
			return errors.New("retry: Config.Budget is a nil *RatioBudget; leave it nil for the default")
		}
	case *TokenBudget:
		if b == nil {
			return errors.New("retry: Config.Budget is a nil *TokenBudget; leave it nil for the default")
		}
	}
	if err := c.Backoff.validate("Config.Backoff"); err != nil {
		return err
	}
	return c.Jitter.validate()
}

// Delay returns the wait before retry n of a call under c (n = 1 after the
// first attempt): the backoff's delay, jittered within [0, Cap]. A
// proportional jitter whose range d(1±r) would reach past the cap is scaled
// to end at it, [d(1-r), d(1+r)] × Cap/(d(1+r)): at the cap (every wait of a
// Constant backoff, the late waits of the others) the draws are spread over
// [Cap(1-r)/(1+r), Cap] instead of half of them being clamped onto Cap. prev
// is the raw delay returned by the previous call for the same logical call
// (0 at first); raw is the one to pass next time. rnd as for Backoff.Delay.
// This is the executor's own computation (without Config.Adaptive's
// scaling), exposed so a simulator can replay it.
func (c Config) Delay(n int, prev time.Duration, rnd *rand.Rand) (wait, raw time.Duration) {
	return c.delay(n, prev, 1, rnd)
}

// delay is Delay with the backoff's delay scaled by factor (Config.Adaptive's
// adaptiveFactor), capped at the backoff's Cap, before the jitter. A factor
// of zero or less means 1.
func (c Config) delay(n int, prev time.Duration, factor float64, rnd *rand.Rand) (wait, raw time.Duration) {
	b := c.Backoff.orDefault()
	raw = b.Delay(n, prev, rnd)
	if !(factor > 0) {
		factor = 1
	}
	if b.kind == kindDecorrelated {
		// Random already: scale the range the draw came from, so that a
		// factor above 1 at the cap spreads the waits below it.
		if top := float64(b.decorrelatedTop(prev)) * factor; top > float64(b.cap) {
			factor *= float64(b.cap) / top
		}
		return scaleWithin(raw, factor, b.cap), raw
	}
	j := c.Jitter
	if j.kind == jitterDefault {
		j = FullJitter
	}
	d := j.applyUnder(scaleWithin(raw, factor, b.cap), b.cap, rnd)
	return min(max(d, 0), b.cap), raw
}

// scaleWithin returns d × factor, at most cap.
func scaleWithin(d time.Duration, factor float64, cap time.Duration) time.Duration {
	if factor == 1 {
		return d
	}
	if f := float64(d) * factor; f < float64(cap) {
		return time.Duration(f)
	}
	return cap
}
