package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/window"
)

// adaptiveWindow is the number of recent calls the adaptive rule looks at,
// the SysManage resilience document's adaptation window.
const adaptiveWindow = 100

// defaultSuccessRate is the success rate assumed before there is history,
// the SysManage resilience document's assumption.
const defaultSuccessRate = 0.8

// Retry is a retry policy: it runs the rest of a pipeline again when an
// attempt fails in a retryable way, waiting between attempts, within its
// attempts, its time and its retry budget. Make one with New; it is a
// sluice.Policy, safe for concurrent use, and one Retry may sit in many
// pipelines, which then share its statistics and budget.
type Retry struct {
	s         atomic.Pointer[settings]
	defBudget *RatioBudget // the budget used when Config.Budget is nil
	updateMu  sync.Mutex   // serialises Update

	ringMu sync.Mutex // guards ring
	ring   *window.Ring

	stats stats
	epoch time.Time
}

// settings is one immutable configuration of a Retry, swapped whole by Update.
type settings struct {
	cfg          Config        // defaults applied
	raMax        time.Duration // the cap on a server's Retry-After
	classifier   *sluice.Classifier
	budget       Budget
	ratio        *RatioBudget // budget, when it reads the Retry's own first-attempt count
	hotBudget    Budget       // budget, when successes must be reported to it; else nil
	epoch        time.Time    // for the system clock: a reading with a monotonic part
	sampleEvery  uint32
	sampleBelow  uint64 // a call is timed when a random uint32 is below this: 2³²/sampleEvery
	simple       bool   // no per-attempt timeout: run attempts directly
	plainSuccess bool   // a first-attempt success needs only the stats counter
}

func (s *settings) now() time.Time {
	if s.cfg.Clock == nil {
		// time.Since reads only the monotonic clock, often half the cost of
		// time.Now; the result is as good for windows and durations.
		return s.epoch.Add(time.Since(s.epoch))
	}
	return s.cfg.Clock.Now()
}

// New returns a Retry for cfg, or an error naming the field of cfg that is
// out of range and the rule it breaks.
func New(cfg Config) (*Retry, error) {
	r := &Retry{ring: window.NewRing(adaptiveWindow), epoch: time.Now()}
	s, err := r.settingsFor(cfg)
	if err != nil {
		return nil, err
	}
	if s.ratio != nil {
		s.ratio.attach(&r.stats.firstOK)
	}
	r.s.Store(s)
	return r, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew(cfg Config) *Retry {
	r, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return r
}

func (r *Retry) settingsFor(cfg Config) (*settings, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &settings{
		cfg:         cfg,
		raMax:       cfg.retryAfterMax(),
		classifier:  cfg.Classifier,
		budget:      cfg.Budget,
		sampleEvery: uint32(min(cfg.SampleEvery, 1<<30)),
		simple:      cfg.AttemptTimeout == 0,
		epoch:       r.epoch,
	}
	if s.classifier == nil {
		s.classifier = sluice.DefaultClassifier
	}
	if s.budget == nil {
		if r.defBudget == nil {
			r.defBudget, _ = NewBudget(BudgetConfig{}) // the zero config is valid
		}
		s.budget = r.defBudget
	}
	switch b := s.budget.(type) {
	case *RatioBudget:
		s.ratio = b
	case NoBudget:
	default:
		s.hotBudget = b
	}
	s.sampleBelow = (1 << 32) / uint64(s.sampleEvery)
	s.plainSuccess = s.hotBudget == nil && !cfg.Adaptive
	return s, nil
}

// Name returns Config.Name, the operation name of the policy's statistics.
func (r *Retry) Name() string { return r.s.Load().cfg.Name }

// Config returns the configuration in effect, with defaults filled in
// (a nil Budget, Classifier or Clock stays nil: it means the default).
func (r *Retry) Config() Config { return r.s.Load().cfg }

// Update applies a changed configuration at runtime, for a live reload: calls
// that start afterwards use cfg, calls in progress finish under the old one.
// Statistics, the adaptive history and (when cfg.Budget is nil) the policy's
// own budget are kept. On error nothing changes.
func (r *Retry) Update(cfg Config) error {
	r.updateMu.Lock()
	defer r.updateMu.Unlock()
	s, err := r.settingsFor(cfg)
	if err != nil {
		return err
	}
	old := r.s.Load()
	if s.ratio != nil && s.ratio != old.ratio {
		s.ratio.attach(&r.stats.firstOK)
	}
	r.s.Store(s)
	if old.ratio != nil && old.ratio != s.ratio {
		old.ratio.detach(&r.stats.firstOK)
	}
	return nil
}

// Budget returns the budget in effect: Config.Budget, or the policy's own.
func (r *Retry) Budget() Budget { return r.s.Load().budget }

// Stats returns a snapshot of the policy's statistics.
func (r *Retry) Stats() Stats {
	s := r.s.Load()
	return r.stats.snapshot(s.cfg.Name, s.cfg.MaxAttempts)
}

// recentSuccessRate returns the success rate of the last 100 calls that the
// adaptive rule uses, 0.8 before any call, and the number of calls it covers.
// Calls are recorded only while Config.Adaptive is set.
func (r *Retry) recentSuccessRate() (rate float64, calls int) {
	r.ringMu.Lock()
	c := r.ring.Counts()
	r.ringMu.Unlock()
	if c.Calls == 0 {
		return defaultSuccessRate, 0
	}
	return 1 - c.FailureRate(), int(c.Calls)
}

func (r *Retry) recordOutcome(ok bool) {
	var flags uint8
	if !ok {
		flags = window.Failure
	}
	r.ringMu.Lock()
	r.ring.Record(flags)
	r.ringMu.Unlock()
}

// Call is one call under a Retry, driven attempt by attempt: BeginAt starts
// it; after each attempt the caller reports the outcome with SucceededAt or
// FailedAt, which decides, at the time it is given, whether to try again and
// after what wait; CanceledAt ends a call whose caller gave up during that
// wait. Execute runs every call through a Call, so these are the executor's
// own decisions, in its order; a simulator or an event loop uses them to
// drive the policy in virtual time, with no goroutine or timer. Begin,
// Succeeded, Failed and Canceled are the same steps at the time of
// Config.Clock, read only when the step needs it.
//
// A Call is a small value owned by one caller: keep it in one place (its
// methods take a pointer) and do not use it from two goroutines at once. The
// Retry it came from may serve other calls meanwhile. The zero Call is not
// usable; Begin or BeginAt makes one.
type Call struct {
	r       *Retry
	s       *settings
	rnd     *rand.Rand
	start   time.Time     // unset (and unread) when neither MaxElapsed nor the histogram needs it
	prevRaw time.Duration // the backoff's raw delay before this retry, for Decorrelated
	last    error         // the error of the attempt before a wait
	weight  int64         // the call's weight in the duration histogram; 0: not timed
	attempt int           // attempts made, the one under way included
	waiting bool          // FailedAt returned a wait; the next outcome is of a new attempt
	done    bool
}

// BeginAt starts a call whose first attempt begins at now, for a caller that
// drives the policy itself rather than through Execute. rnd is the source of
// the jitter (nil means math/rand/v2's global source); pass a seeded one for
// a reproducible run. The configuration in effect at BeginAt governs the whole
// call. Every call driven this way is timed exactly (weight 1 in the
// duration histogram), since its times cost nothing to read.
func (r *Retry) BeginAt(now time.Time, rnd *rand.Rand) Call {
	return r.begin(r.s.Load(), now, rnd)
}

// Begin is BeginAt at the time of Config.Clock. The call is timed exactly,
// as with BeginAt, so its Succeeded and Canceled read the clock too.
func (r *Retry) Begin(rnd *rand.Rand) Call {
	s := r.s.Load()
	return r.begin(s, s.now(), rnd)
}

func (r *Retry) begin(s *settings, now time.Time, rnd *rand.Rand) Call {
	return Call{r: r, s: s, rnd: rnd, start: now, weight: 1, attempt: 1}
}

// Attempts returns the number of attempts the call has made, the one under
// way included: 1 after BeginAt, and one more each time an outcome is
// reported after a wait that FailedAt returned.
func (c *Call) Attempts() int { return c.attempt }

// next counts the attempt whose outcome is being reported, once per wait.
func (c *Call) next() {
	if c.done {
		panic("retry: Call used after it ended")
	}
	if c.waiting {
		c.waiting = false
		c.attempt++
	}
}

// SucceededAt ends the call: its latest attempt succeeded at now. It panics
// if the call already ended.
func (c *Call) SucceededAt(now time.Time) {
	c.next()
	s := c.s
	// A RatioBudget learns of a first-attempt success from the stats
	// counter that end increments; other budgets are told.
	if s.hotBudget != nil {
		s.hotBudget.AttemptAt(now, c.attempt == 1, Succeeded)
	} else if s.ratio != nil {
		s.ratio.tick(now)
	}
	c.finishAt(true, now)
}

// Succeeded ends the call: its latest attempt succeeded just now. It reads
// Config.Clock only when the call is timed (always for Begin and BeginAt;
// for a sample of Execute's calls, Config.SampleEvery); otherwise the
// budget files the success with the latest time it has seen, as on
// Execute's hot path. It panics if the call already ended.
func (c *Call) Succeeded() {
	if c.weight != 0 {
		c.SucceededAt(c.s.now())
		return
	}
	c.next()
	if b := c.s.hotBudget; b != nil {
		b.Attempt(c.attempt == 1, Succeeded)
	}
	c.end(true)
}

// FailedAt reports that the latest attempt failed at now with err (non-nil;
// ErrUnwantedResult for a value that Config.RetryOnResult rejected, which is
// retried whatever the classifier says), and decides. ctx is the caller's
// context: a done ctx means the caller gave up, and it carries the
// idempotency mark (sluice.WithIdempotent); it is not waited on.
//
// With final nil the call goes on: wait, then make the next attempt and
// report its outcome (or call CanceledAt if the caller gives up during the
// wait). Otherwise the call has ended and final is its error: err itself
// when the caller gave up or err is not retried, an *ExhaustedError when
// attempts or Config.MaxElapsed run out, a *BudgetError when the budget
// refuses the retry. The checks run in the order the package documentation
// gives, and OnRetry, if set, is called before a wait is returned. FailedAt
// panics if the call already ended.
func (c *Call) FailedAt(ctx context.Context, now time.Time, err error) (wait time.Duration, final error) {
	if err == nil {
		panic("retry: Call.FailedAt with a nil error")
	}
	c.next()
	s := c.s
	first := c.attempt == 1
	if ctx.Err() != nil {
		// The caller gave up: its error, not a retry decision.
		s.budget.AttemptAt(now, first, NotRetryable)
		c.finishAt(false, now)
		return 0, err
	}
	if err != ErrUnwantedResult && !s.retryable(ctx, err) {
		s.budget.AttemptAt(now, first, NotRetryable)
		c.finishAt(false, now)
		return 0, err
	}
	s.budget.AttemptAt(now, first, Retryable)
	if !s.cfg.RetryNonIdempotent {
		if idem, marked := sluice.Idempotent(ctx); marked && !idem {
			c.finishAt(false, now)
			return 0, err
		}
	}
	if c.attempt >= s.cfg.MaxAttempts {
		c.r.stats.exhausted.Add(1)
		c.finishAt(false, now)
		return 0, &ExhaustedError{Attempts: c.attempt, Last: err}
	}

	factor := 1.0
	if s.cfg.Adaptive {
		rate, _ := c.r.recentSuccessRate()
		factor = adaptiveFactor(rate)
	}
	wait, c.prevRaw = s.cfg.delay(c.attempt, c.prevRaw, factor, c.rnd)
	if ra, ok := sluice.RetryAfter(err); ok && ra > 0 {
		wait = retryAfterWait(ra, s.raMax, c.rnd)
	}
	if s.cfg.MaxElapsed > 0 && now.Add(wait).Sub(c.start) > s.cfg.MaxElapsed {
		c.r.stats.exhausted.Add(1)
		c.finishAt(false, now)
		return 0, &ExhaustedError{Attempts: c.attempt, OutOfTime: true, Last: err}
	}
	if ok, w := s.budget.AllowRetryAt(now); !ok {
		c.r.stats.refused.Add(1)
		c.finishAt(false, now)
		return 0, &BudgetError{Attempts: c.attempt, Last: err, Wait: w}
	}
	if s.cfg.OnRetry != nil {
		s.cfg.OnRetry(Event{Name: s.cfg.Name, Attempt: c.attempt, Err: err, Delay: wait})
	}
	c.last, c.waiting = err, true
	return wait, nil
}

// Failed is FailedAt at the time of Config.Clock.
func (c *Call) Failed(ctx context.Context, err error) (wait time.Duration, final error) {
	return c.FailedAt(ctx, c.s.now(), err)
}

// CanceledAt ends a call whose caller gave up at now, during a wait that
// FailedAt returned, for cause (its context's cause, say). It returns the
// call's error, which matches cause under errors.Is and keeps the last
// attempt's error reachable. It panics unless the call is in such a wait.
func (c *Call) CanceledAt(now time.Time, cause error) error {
	c.cancel()
	c.finishAt(false, now)
	return &canceledError{cause: cause, last: c.last}
}

// Canceled is CanceledAt just now: it reads Config.Clock only when the call
// is timed, as Succeeded does.
func (c *Call) Canceled(cause error) error {
	c.cancel()
	c.finish(false)
	return &canceledError{cause: cause, last: c.last}
}

// cancel checks that the call is in a wait between attempts, and leaves it.
func (c *Call) cancel() {
	if c.done || !c.waiting {
		panic("retry: Call.Canceled outside a wait between attempts")
	}
	c.waiting = false
}

// finish records the end of the call just now, reading the clock only if
// the call is timed.
func (c *Call) finish(ok bool) {
	if c.weight != 0 {
		c.finishAt(ok, c.s.now())
		return
	}
	c.end(ok)
}

// finishAt records the end of the call at now.
func (c *Call) finishAt(ok bool, now time.Time) {
	if c.weight != 0 {
		c.r.stats.observe(now.Sub(c.start), c.weight)
	}
	c.end(ok)
}

// end counts the call as ended, with ok its success.
func (c *Call) end(ok bool) {
	c.done = true
	c.r.stats.ended(ok, c.attempt)
	if c.s.cfg.Adaptive {
		c.r.recordOutcome(ok)
	}
}

// checkPanic runs deferred in Execute: a call that did not finish is
// panicking. It is counted as failed and the panic goes on, stack intact.
func (c *Call) checkPanic() {
	if !c.done {
		n := c.attempt
		if c.waiting {
			n++ // the attempt after the wait panicked
		}
		c.r.stats.ended(false, n)
		if c.s.cfg.Adaptive {
			c.r.recordOutcome(false)
		}
	}
}

// Execute runs next, retrying as configured. A ctx already done when
// Execute is called gets no attempt: Execute returns context.Cause(ctx). It
// returns nil on success; the
// error of a non-retryable failure as it is; an *ExhaustedError
// (ErrExhausted) when attempts or time run out; a *BudgetError
// (ErrBudgetExhausted, sluice.ErrRejected) when the budget refuses a retry;
// and, when ctx ends during a wait, an error matching ctx's cause that also
// wraps the last attempt's error. Each decision is a Call's (Failed,
// Succeeded, Canceled), taken at the time read from Config.Clock.
func (r *Retry) Execute(ctx context.Context, next sluice.Next) error {
	_, err := r.execute(ctx, next)
	return err
}

func (r *Retry) execute(ctx context.Context, next sluice.Next) (int, error) {
	if ctx.Err() != nil {
		// The caller has gone: no attempt, and no call in the statistics.
		return 0, context.Cause(ctx)
	}
	c := Call{r: r, s: r.s.Load(), attempt: 1}
	s := c.s
	if uint64(rand.Uint32()) < s.sampleBelow {
		c.weight = int64(s.sampleEvery)
	}
	if c.weight != 0 || s.cfg.MaxElapsed > 0 {
		c.start = s.now()
	}
	defer c.checkPanic()

	var err error
	if s.simple {
		err = next.Run(ctx)
	} else {
		err = runAttempt(ctx, next, s)
	}
	if err == nil && s.cfg.RetryOnResult == nil {
		// The hot path: no clock read unless sampled, no lock. This is
		// Succeeded for a first attempt that nothing else needs to hear of.
		if s.plainSuccess && c.weight == 0 {
			c.done = true
			r.stats.firstOK.Inc() // which a RatioBudget reads
			return 1, nil
		}
		c.Succeeded()
		return 1, nil
	}
	err = c.run(ctx, next, err)
	return c.attempt, err
}

// run continues a call whose first attempt did not simply succeed; err is
// that attempt's error.
func (c *Call) run(ctx context.Context, next sluice.Next, err error) error {
	s := c.s
	for {
		if err == nil {
			if s.cfg.RetryOnResult == nil {
				c.Succeeded()
				return nil
			}
			if res := next.Result(); res == nil || !s.cfg.RetryOnResult(res) {
				c.Succeeded()
				return nil
			}
			err = ErrUnwantedResult
		}
		wait, final := c.FailedAt(ctx, s.now(), err)
		if final != nil {
			return final
		}
		if serr := sluice.Sleep(ctx, s.cfg.Clock, wait); serr != nil {
			return c.Canceled(serr)
		}
		err = runAttempt(ctx, next, s)
	}
}

func (s *settings) retryable(ctx context.Context, err error) bool {
	if s.cfg.RetryOn != nil {
		return s.cfg.RetryOn(err)
	}
	return s.classifier.Classify(ctx, err).Retryable
}

// runAttempt runs one attempt, under Config.AttemptTimeout if set. The error
// of an attempt cut short by it wraps ErrAttemptTimeout.
func runAttempt(ctx context.Context, next sluice.Next, s *settings) error {
	d := s.cfg.AttemptTimeout
	if d <= 0 {
		return next.Run(ctx)
	}
	actx, cancel := context.WithTimeoutCause(ctx, d, ErrAttemptTimeout)
	defer cancel()
	err := next.Run(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil && !errors.Is(err, ErrAttemptTimeout) {
		err = fmt.Errorf("%w after %v: %w", ErrAttemptTimeout, d, err)
	}
	return err
}
