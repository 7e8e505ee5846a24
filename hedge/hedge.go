package hedge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// ErrSuperseded is the cause (context.Cause) of the context of every
// attempt still running when another attempt's answer ended the call: the
// attempt is cancelled because its answer is no longer wanted.
var ErrSuperseded = errors.New("hedge: another attempt answered first")

type attemptKey struct{}

// Attempt returns the index of the attempt that ctx was passed to by a
// Hedge: 0 for a call's first attempt, 1 for its first hedge, and so on; 0
// for work no Hedge runs. A load balancer inside the hedge reads it to send
// a hedge to another replica than the attempt before it. Under nested
// Hedges it is the innermost one's index.
func Attempt(ctx context.Context) int {
	i, _ := ctx.Value(attemptKey{}).(int)
	return i
}

// Stats are the counters of a Hedge since it was made.
type Stats struct {
	// Calls is the number of calls executed.
	Calls int64
	// NotIdempotent is the number of those calls that ran with no hedge
	// because their context marked them non-idempotent.
	NotIdempotent int64
	// Hedges is the number of hedges (extra attempts) started.
	Hedges int64
	// Won is the number of calls whose answer, a success, came from a
	// hedge rather than from the first attempt.
	Won int64
	// Refused is the number of hedges the budget did not allow.
	Refused int64
}

// Hedge is a sluice.Policy that sends a second attempt of a call when the
// first has not answered within a delay, and takes the first good answer;
// see the package documentation. Make one with New. It is safe for
// concurrent use and may sit in many pipelines, which then share its
// statistics and its latency window.
type Hedge struct {
	name       string
	fixed      time.Duration
	maxHedges  int
	clock      sluice.Clock // nil: the system clock
	budget     Budget
	classifier *sluice.Classifier
	onHedge    func(Event)
	est        *estimator // nil: the fixed Delay
	pool       sync.Pool  // of *call

	calls                      stripe.Counter
	notIdem, hedges, won, refs atomic.Int64
}

var _ sluice.Policy = (*Hedge)(nil)

// New returns a Hedge for cfg, or an error naming the field of cfg that is
// out of range and the rule it breaks.
func New(cfg Config) (*Hedge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Hedge{
		name:       cfg.Name,
		fixed:      cfg.Delay,
		maxHedges:  cfg.MaxHedges,
		clock:      cfg.Clock,
		budget:     cfg.Budget,
		classifier: cfg.Classifier,
		onHedge:    cfg.OnHedge,
	}
	if h.classifier == nil {
		h.classifier = sluice.DefaultClassifier
	}
	if cfg.Percentile != 0 {
		h.est = newEstimator(cfg)
	}
	h.pool.New = h.newCall
	return h, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew(cfg Config) *Hedge {
	h, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

// Name returns Config.Name.
func (h *Hedge) Name() string { return h.name }

// Stats returns the counters. Increments racing with Stats may or may not be
// included.
func (h *Hedge) Stats() Stats {
	return Stats{
		Calls:         h.calls.Load(),
		NotIdempotent: h.notIdem.Load(),
		Hedges:        h.hedges.Load(),
		Won:           h.won.Load(),
		Refused:       h.refs.Load(),
	}
}

// DelayAt returns the delay computed as of now: Config.Delay for a fixed
// delay; with Config.Percentile, the percentile of the latencies in the
// window within [MinDelay, MaxDelay], or Delay while the window holds fewer
// than MinSamples. Execute uses the same computation, redone when a new
// fifth of the window begins or MinSamples latencies have arrived since it
// was last done, so its delay may lag DelayAt's by that much.
func (h *Hedge) DelayAt(now time.Time) time.Duration {
	if h.est == nil {
		return h.fixed
	}
	return h.est.delayAt(now)
}

// Delay is DelayAt at the clock's current time.
func (h *Hedge) Delay() time.Duration { return h.DelayAt(h.now()) }

// ObserveAt files latency, the time a first attempt took, observed at now,
// in the window of a percentile delay, as Execute does for its own first
// attempts. A simulator driving the policy in virtual time feeds it this
// way. With a fixed delay it does nothing.
func (h *Hedge) ObserveAt(now time.Time, latency time.Duration) {
	if h.est != nil {
		h.est.observeAt(now, latency)
	}
}

func (h *Hedge) now() time.Time {
	if h.clock == nil {
		return time.Now()
	}
	return h.clock.Now()
}

// Execute runs next, starting a hedge each time the delay passes with no
// answer, up to Config.MaxHedges, and returns the first answer that ends the
// call (see the package documentation for which do). A ctx already done
// gets no attempt: Execute returns context.Cause(ctx). Work marked
// non-idempotent (sluice.WithIdempotent(ctx, false)) runs once, unhedged.
// Execute returns only once every attempt it started has returned; the
// attempts still running when the call is decided are cancelled with cause
// ErrSuperseded. A panic in any attempt is raised again on the caller's
// goroutine once the others have returned.
func (h *Hedge) Execute(ctx context.Context, next sluice.Next) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	h.calls.Inc()
	if idem, marked := sluice.Idempotent(ctx); marked && !idem {
		h.notIdem.Add(1)
		return next.Run(ctx)
	}
	var start time.Time
	delay := h.fixed
	if h.est != nil {
		start = h.now()
		delay = h.est.delayFor(start)
	}
	actx, cancel := context.WithCancelCause(ctx)
	run := context.Context(actx)
	if ctx.Value(attemptKey{}) != nil {
		// An outer Hedge marked ctx; this is attempt 0 of this one.
		run = context.WithValue(actx, attemptKey{}, 0)
	}
	c := h.pool.Get().(*call)
	c.mu.Lock() // what fire reads is published through mu
	c.begin(ctx, next, delay, cancel)
	c.arm(delay)
	c.mu.Unlock()
	returned := false
	defer func() {
		if !returned {
			c.abandon()
		}
	}()
	err := next.Run(run)
	returned = true
	return c.end(err, start)
}

// call is the state of one call under a Hedge, pooled so that a call whose
// first attempt answers within the delay allocates nothing of its own.
type call struct {
	h     *Hedge
	ctx   context.Context // the caller's
	next  sluice.Next
	delay time.Duration
	timer *time.Timer   // system clock: an AfterFunc timer running fire
	stop  chan struct{} // another Clock: closed to stop the watching goroutine

	// wg counts the armed timers (each either stopped by disarm or running
	// fire) and the hedges running.
	wg sync.WaitGroup

	mu       sync.Mutex
	decided  bool
	winner   int   // the attempt whose answer ends the call, once decided
	err      error // the call's error, once decided
	cand     int   // without a decision: the attempt whose failure the call would end with
	candErr  error
	candWeak bool // candErr is a rejection or a cancellation: a later failure replaces it
	started  int  // attempts started
	running  int  // attempts not yet returned
	panicked bool
	panicVal any
	cancels  [MaxMaxHedges + 1]context.CancelCauseFunc
	forks    [MaxMaxHedges + 1]sluice.Next // of the hedges; forks[0] is unused (the first attempt runs on next)
}

func (h *Hedge) newCall() any {
	c := &call{h: h}
	if h.clock == nil {
		c.timer = time.AfterFunc(time.Hour, c.fire)
		c.timer.Stop()
	}
	return c
}

func (c *call) begin(ctx context.Context, next sluice.Next, delay time.Duration, cancel context.CancelCauseFunc) {
	c.ctx, c.next, c.delay = ctx, next, delay
	c.started, c.running = 1, 1
	c.cancels[0] = cancel
}

// arm schedules fire after d. Called under mu.
func (c *call) arm(d time.Duration) {
	c.wg.Add(1)
	if c.timer != nil {
		c.timer.Reset(d)
		return
	}
	stop := make(chan struct{})
	c.stop = stop
	go c.watch(c.h.clock.NewTimer(d), stop)
}

// disarm stops the timer armed last, if it has not fired. Called under mu.
func (c *call) disarm() {
	if c.timer != nil {
		if c.timer.Stop() {
			c.wg.Done() // fire will not run for this arming
		}
		return
	}
	if c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
}

// watch waits, for a Clock other than the system's, for the delay or disarm.
func (c *call) watch(t sluice.Timer, stop <-chan struct{}) {
	select {
	case <-t.C():
		c.fire()
	case <-stop:
		t.Stop()
		c.wg.Done()
	}
}

// fire runs, on a goroutine of its own, when the delay has passed with the
// call undecided: it starts a hedge, asking the budget first, arms the
// timer for the next one if any remain, and runs the hedge.
func (c *call) fire() {
	h := c.h
	c.mu.Lock()
	if c.decided || c.ctx.Err() != nil {
		c.mu.Unlock()
		c.wg.Done()
		return
	}
	if h.budget != nil {
		if ok, _ := h.budget.AllowRetryAt(h.now()); !ok {
			h.refs.Add(1)
			c.mu.Unlock()
			c.wg.Done()
			return
		}
	}
	i := c.started
	c.started++
	c.running++
	actx, cancel := context.WithCancelCause(c.ctx)
	c.cancels[i] = cancel
	f := c.next.Fork()
	c.forks[i] = f
	if i < h.maxHedges {
		c.arm(c.delay)
	}
	c.mu.Unlock()
	h.hedges.Add(1)
	c.runHedge(i, f, context.WithValue(actx, attemptKey{}, i))
}

// errGoexit stands for the panic value of a hedge whose goroutine ended by
// runtime.Goexit.
var errGoexit = errors.New("hedge: an attempt called runtime.Goexit")

// runHedge calls OnHedge and runs hedge i, recovering a panic in either.
func (c *call) runHedge(i int, f sluice.Next, ctx context.Context) {
	defer c.wg.Done()
	returned := false
	defer func() {
		if returned {
			return
		}
		p := recover()
		if p == nil {
			p = errGoexit
		}
		c.mu.Lock()
		c.running--
		if !c.panicked {
			c.panicked, c.panicVal = true, p
		}
		if !c.decided {
			c.decide(i, nil)
		}
		c.mu.Unlock()
	}()
	if h := c.h; h.onHedge != nil {
		h.onHedge(Event{Name: h.name, Attempt: i, Delay: c.delay})
	}
	err := f.Run(ctx)
	returned = true
	c.mu.Lock()
	c.record(i, err)
	c.mu.Unlock()
}

// record takes the outcome of attempt i. Called under mu.
//
// A success ends the call, and so does a failure that is the dependency's
// final word (not retryable by the classifier) or any failure once the
// caller has gone. A retryable failure, a rejection by a policy inside the
// hedge or a cancellation the caller did not ask for leaves the call to the
// attempts still running; when none is, the call ends with the last such
// failure, a rejection or cancellation yielding to an earlier attempt's
// failure (an attempt that never reached the dependency says less about
// it). The next hedge is not started early: failures are the retry
// policy's business, with its backoff and budget.
func (c *call) record(i int, err error) {
	c.running--
	if c.decided {
		return
	}
	if err == nil {
		c.decide(i, nil)
		return
	}
	f := c.h.classifier.Classify(c.ctx, err)
	weak := f.Type == sluice.FailureRejected || f.Type == sluice.FailureCanceled
	if c.ctx.Err() != nil || !(f.Retryable || weak) {
		c.decide(i, err)
		return
	}
	if c.candErr == nil || c.candWeak || !weak {
		c.cand, c.candErr, c.candWeak = i, err, weak
	}
	if c.running == 0 {
		c.decide(c.cand, c.candErr)
	}
}

// decide ends the call with attempt i's answer: the other attempts are
// cancelled and no further hedge starts. Called under mu.
func (c *call) decide(i int, err error) {
	c.decided, c.winner, c.err = true, i, err
	for j := range c.started {
		if j != i {
			c.cancels[j](ErrSuperseded)
		}
	}
	c.disarm()
}

// end finishes a call whose first attempt returned err: it waits for the
// other attempts, adopts the winner's result and returns the call to the
// pool.
func (c *call) end(err error, start time.Time) error {
	h := c.h
	c.mu.Lock()
	superseded := c.decided
	c.record(0, err)
	c.mu.Unlock()
	if h.est != nil && (err == nil || superseded) {
		// A superseded first attempt files the time it ran, a lower bound
		// of its latency: the slow answers that hedging cuts short must
		// still reach the window, or the percentile would sink below the
		// latency it is meant to follow.
		now := h.now()
		h.est.observeAt(now, now.Sub(start))
	}
	c.wg.Wait()
	for j := range c.started {
		c.cancels[j](nil)
	}
	w, err := c.winner, c.err
	if w > 0 {
		c.next.Adopt(c.forks[w])
		if err == nil {
			h.won.Add(1)
		}
	}
	if c.panicked {
		panic(c.panicVal) // the call is not pooled again
	}
	c.reset()
	h.pool.Put(c)
	return err
}

// abandon cleans up after a first attempt that panicked: the hedges are
// cancelled and waited for, and the call is not pooled again.
func (c *call) abandon() {
	c.mu.Lock()
	c.running--
	if !c.decided {
		c.decide(0, nil)
	}
	c.mu.Unlock()
	c.wg.Wait()
	for j := range c.started {
		c.cancels[j](nil)
	}
}

// reset clears the call for its next use, dropping every reference.
func (c *call) reset() {
	c.ctx, c.next, c.stop = nil, sluice.Next{}, nil
	c.decided, c.winner, c.err = false, 0, nil
	c.cand, c.candErr, c.candWeak = 0, nil, false
	clear(c.cancels[:c.started])
	if c.started > 1 {
		clear(c.forks[1:c.started])
	}
	c.started, c.running = 0, 0
}
