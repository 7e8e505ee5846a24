package bulkhead

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// Isolation selects how a Bulkhead's limit is set.
type Isolation uint8

const (
	// Strict is a hard cap: at most MaxConcurrent calls run at once.
	Strict Isolation = iota
	// Shared is a cap that may overflow by a bounded share while other
	// members of the bulkhead's Group leave theirs idle; see Group.
	Shared
	// Adaptive finds the limit from measured latency with an Estimator
	// (Gradient or AIMD) between Adaptive.MinLimit and Adaptive.MaxLimit.
	Adaptive
)

// String returns "strict", "shared" or "adaptive".
func (i Isolation) String() string {
	switch i {
	case Strict:
		return "strict"
	case Shared:
		return "shared"
	case Adaptive:
		return "adaptive"
	}
	return "Isolation(" + strconv.Itoa(int(i)) + ")"
}

// Config configures a Bulkhead. The zero Config is valid: a strict limit of
// 10 concurrent calls and no queue.
type Config struct {
	// Name identifies the bulkhead in errors and statistics. If empty,
	// errors carry no name.
	Name string

	// MaxConcurrent is how many calls may run at once. If zero, 10. At most
	// 1,000,000. With Adaptive isolation it is the default for
	// Adaptive.MaxLimit instead.
	MaxConcurrent int

	// MaxQueue is how many calls may wait, in FIFO order, for a permit when
	// all are taken. If zero, there is no queue: such a call is rejected at
	// once. At most 1,000,000.
	MaxQueue int

	// MaxWait is the longest a call waits in the queue before it is
	// rejected; a call never waits past its context either. If zero, a
	// queued call waits as long as its context allows. It must not be
	// negative, and a positive MaxWait needs a positive MaxQueue: without a
	// queue no call waits, and New refuses the pair rather than silently
	// rejecting the calls the MaxWait was meant to let wait.
	MaxWait time.Duration

	// Isolation is Strict (the zero value), Shared or Adaptive.
	Isolation Isolation

	// Group is the group whose idle capacity a Shared bulkhead may borrow.
	// Required with Shared isolation, optional with Strict (the bulkhead
	// then lends its idle capacity but never borrows), not allowed with
	// Adaptive.
	Group *Group

	// OverflowRatio is, for Shared isolation, the share of MaxConcurrent the
	// bulkhead may run beyond it while the group has idle capacity:
	// floor(OverflowRatio × MaxConcurrent) permits. If zero, 0.2. It must be
	// in [0, 1] and is only allowed with Shared isolation.
	OverflowRatio float64

	// Adaptive configures the limit algorithm of Adaptive isolation. Its
	// zero value is valid; it must be left zero with other isolations.
	Adaptive AdaptiveConfig

	// RetryAfter is what a rejection error's RetryAfter returns. If zero,
	// 100ms. It must not be negative.
	RetryAfter time.Duration

	// Clock is the source of time for queue waits, latency samples and the
	// recent rejection rate. If nil, the system clock. Update keeps the
	// Clock given to New.
	Clock sluice.Clock

	// OnReject, if set, is called with the error of every rejected call,
	// after the bulkhead's locks are released, on the rejected caller's
	// goroutine. It must not block.
	OnReject func(err *FullError)
}

// Validate reports whether c is a valid Config: nil, or an error naming the
// first invalid field. New and Update return the same error, so a
// configuration can be checked without building a bulkhead.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults validates c and fills in its defaults. Validate, New and
// Update all go through it, so the three never disagree.
func (c Config) withDefaults() (Config, error) {
	if c.Isolation > Adaptive {
		return c, fmt.Errorf("bulkhead: Config.Isolation must be Strict, Shared or Adaptive, got %d", c.Isolation)
	}
	if c.MaxConcurrent < 0 || c.MaxConcurrent > maxPermits {
		return c, fmt.Errorf("bulkhead: Config.MaxConcurrent must be in [0, %d], got %d", maxPermits, c.MaxConcurrent)
	}
	if c.MaxQueue < 0 || c.MaxQueue > maxPermits {
		return c, fmt.Errorf("bulkhead: Config.MaxQueue must be in [0, %d], got %d", maxPermits, c.MaxQueue)
	}
	if c.MaxWait < 0 {
		return c, fmt.Errorf("bulkhead: Config.MaxWait must not be negative, got %v", c.MaxWait)
	}
	if c.MaxWait > 0 && c.MaxQueue == 0 {
		return c, fmt.Errorf("bulkhead: Config.MaxWait (%v) needs Config.MaxQueue > 0: without a queue no call waits", c.MaxWait)
	}
	if c.RetryAfter < 0 {
		return c, fmt.Errorf("bulkhead: Config.RetryAfter must not be negative, got %v", c.RetryAfter)
	}
	c.RetryAfter = cmp.Or(c.RetryAfter, 100*time.Millisecond)
	if c.Isolation != Shared && c.OverflowRatio != 0 {
		return c, fmt.Errorf("bulkhead: Config.OverflowRatio must be zero unless Isolation is Shared, got %v", c.OverflowRatio)
	}
	if c.Isolation != Adaptive && c.Adaptive != (AdaptiveConfig{}) {
		return c, fmt.Errorf("bulkhead: Config.Adaptive must be zero unless Isolation is Adaptive, got Isolation %v", c.Isolation)
	}
	switch c.Isolation {
	case Shared:
		if c.Group == nil {
			return c, fmt.Errorf("bulkhead: Config.Group must be set when Isolation is Shared")
		}
		c.OverflowRatio = cmp.Or(c.OverflowRatio, 0.2)
		if !(c.OverflowRatio >= 0 && c.OverflowRatio <= 1) {
			return c, fmt.Errorf("bulkhead: Config.OverflowRatio must be in [0, 1], got %v", c.OverflowRatio)
		}
	case Adaptive:
		if c.Group != nil {
			return c, fmt.Errorf("bulkhead: Config.Group must be nil when Isolation is Adaptive")
		}
		if c.Adaptive.MaxLimit == 0 && c.MaxConcurrent > 0 {
			c.Adaptive.MaxLimit = c.MaxConcurrent
		}
		a, err := c.Adaptive.withDefaults()
		if err != nil {
			return c, err
		}
		c.Adaptive = a
		c.MaxConcurrent = a.MaxLimit
	}
	c.MaxConcurrent = cmp.Or(c.MaxConcurrent, 10)
	return c, nil
}

// Bulkhead limits how many calls run at once, queueing a bounded number of
// callers in FIFO order when all permits are taken. It implements
// sluice.Policy; Acquire, TryAcquire and Release offer the same limit to
// code that holds a permit across something other than one function call.
// A Bulkhead is safe for concurrent use. Taking and returning a permit when
// one is free is one CAS and one atomic add, with no lock and no allocation.
type Bulkhead struct {
	// The permits in use, the waiter count and the limit; see permits.go.
	// Its own padding keeps it on cache lines of its own.
	p        permits
	adaptive bool

	rejected stripe.Counter
	canceled atomic.Int64
	waited   atomic.Int64 // callers that joined the queue

	name  string
	clock sluice.Clock
	cfg   atomic.Pointer[Config]
	errs  atomic.Pointer[[2]*FullError] // by Reason, rebuilt by Update

	mu         sync.Mutex // the queue; Update
	head, tail *waiter
	pool       sync.Pool // of *waiter
	granted    []Ticket  // tickets handed a permit, not yet returned by ReleaseAt or Granted
	expired    []Ticket  // tickets whose wait ran out, not yet returned by ExpireAt

	amu sync.Mutex // est
	est Estimator

	smu      sync.Mutex // recent, floorAdm
	recent   recentWindow
	floorAdm int64 // last Admitted reported, kept monotonic
}

// waiter is a caller in the queue: a goroutine blocked in Acquire (ch set)
// or a Ticket of the explicit-time queue (ch nil). granted is set, under
// Bulkhead.mu, by the caller that hands it a permit, which then sends on ch
// or files the ticket in Bulkhead.granted.
type waiter struct {
	ch         chan struct{}
	granted    bool
	prev, next *waiter
	// Tickets only.
	state    ticketState
	deadline time.Time // when its MaxWait runs out; the zero Time if never
}

// ticketState is where a Ticket stands, under Bulkhead.mu.
type ticketState uint8

const (
	ticketQueued   ticketState = iota
	ticketGranted              // handed a permit, not yet returned to its owner
	ticketHeld                 // returned by ReleaseAt or Granted: its owner holds the permit
	ticketExpired              // its wait ran out
	ticketCanceled             // withdrawn by Cancel
)

// New returns a Bulkhead for cfg, or an error naming the first invalid
// field.
func New(cfg Config) (*Bulkhead, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Bulkhead{
		name:     c.Name,
		clock:    sluice.ClockOr(c.Clock),
		adaptive: c.Isolation == Adaptive,
	}
	if c.Isolation == Shared {
		b.p.lender = c.Group
	}
	b.p.wake = b.wake
	b.pool.New = func() any { return &waiter{ch: make(chan struct{}, 1)} }
	b.apply(&c, nil)
	b.recent.observe(recentEpoch(b.clock.Now()), 0, 0)
	if c.Group != nil {
		c.Group.add(b)
	}
	return b, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew(cfg Config) *Bulkhead {
	b, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return b
}

// apply installs a validated config. prev is the config it replaces, nil
// from New.
func (b *Bulkhead) apply(c *Config, prev *Config) {
	b.cfg.Store(c)
	b.errs.Store(&[2]*FullError{
		QueueFull:   newFullError(c.Name, QueueFull, c.MaxWait, c.RetryAfter),
		WaitExpired: newFullError(c.Name, WaitExpired, c.MaxWait, c.RetryAfter),
	})
	switch {
	case c.Isolation == Adaptive:
		ac := c.Adaptive
		b.amu.Lock()
		if b.est != nil && prev != nil && prev.Adaptive == c.Adaptive {
			b.amu.Unlock()
			return
		}
		if b.est != nil {
			// Carry the current estimate over to the new algorithm.
			ac.InitialLimit = min(max(b.est.Limit(), ac.MinLimit), ac.MaxLimit)
		}
		b.est = newEstimator(ac)
		b.p.setLimit(int64(b.est.Limit()))
		b.amu.Unlock()
	default:
		b.p.setLimit(int64(c.MaxConcurrent))
		b.p.setOverflow(int64(c.OverflowRatio * float64(c.MaxConcurrent)))
		b.p.setStriped(stripes(c))
	}
}

// Name returns Config.Name.
func (b *Bulkhead) Name() string { return b.name }

// Config returns the current configuration, with defaults filled in.
func (b *Bulkhead) Config() Config { return *b.cfg.Load() }

// Update replaces the configuration at run time: limits, queue, waits,
// adaptive tuning, the retry hint and the listener. Calls holding permits
// keep them; lowering MaxConcurrent below the number running only stops new
// admissions until enough finish, and raising it admits waiters at once.
// Waiters already queued stay queued if MaxQueue shrinks. Name, Isolation
// and Group cannot change, and Clock is kept from New. Under Adaptive
// isolation a change of Adaptive restarts the algorithm from the current
// limit.
func (b *Bulkhead) Update(cfg Config) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	prev := b.cfg.Load()
	switch {
	case c.Name != prev.Name:
		return fmt.Errorf("bulkhead: Update cannot change Config.Name from %q to %q", prev.Name, c.Name)
	case c.Isolation != prev.Isolation:
		return fmt.Errorf("bulkhead: Update cannot change Config.Isolation from %v to %v", prev.Isolation, c.Isolation)
	case c.Group != prev.Group:
		return fmt.Errorf("bulkhead: Update cannot change Config.Group")
	}
	c.Clock = prev.Clock
	b.mu.Lock()
	defer b.mu.Unlock()
	b.apply(&c, prev)
	b.p.drain() // stashed permits were taken under the old limit
	b.dispatchLocked()
	return nil
}

// TryAcquire takes a permit if one is free now and nobody is queued ahead,
// without waiting. On success the caller must call Release (or
// ReleaseSampleAt) exactly once. A false result counts as a rejection in
// Stats and is reported to OnReject.
func (b *Bulkhead) TryAcquire() bool {
	if b.p.tryAcquire(b.p.hint()) {
		return true
	}
	b.reject(QueueFull)
	return false
}

// Acquire takes a permit, queueing for at most MaxWait, and never past ctx,
// when none is free. It returns nil with a permit that the caller must
// Release (or ReleaseSampleAt) exactly once; a *FullError when the queue is
// full or the wait ran out; or context.Cause(ctx) when ctx was done first,
// holding no permit.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	if b.p.tryAcquire(b.p.hint()) {
		return nil
	}
	return b.acquireSlow(ctx)
}

// Release returns a permit taken by Acquire or TryAcquire, handing it to the
// first waiter if any. Releasing a permit that was not taken panics.
func (b *Bulkhead) Release() { b.p.release(b.p.hint()) }

// ReleaseSampleAt is Release for an Adaptive bulkhead, feeding the limit
// algorithm: the call finished at now after rtt, and dropped says whether
// it failed in a way that signals overload. Samples are serialised; a sample
// that would wait for another one to be recorded is skipped unless it is a
// drop. Under other isolations it is Release.
func (b *Bulkhead) ReleaseSampleAt(now time.Time, rtt time.Duration, dropped bool) {
	if b.adaptive {
		b.sample(now, rtt, dropped)
	}
	b.Release()
}

func (b *Bulkhead) sample(now time.Time, rtt time.Duration, dropped bool) {
	inflight := int(b.p.inUse())
	if dropped {
		b.amu.Lock()
	} else if !b.amu.TryLock() {
		return
	}
	b.p.setLimit(int64(b.est.SampleAt(now, rtt, inflight, dropped)))
	b.amu.Unlock()
}

// Execute runs next with a permit, waiting for one as Acquire does, and
// returns its error, or the error of Acquire without running next. The
// permit is released in a defer, so a panic in next releases it and goes
// on. Under Adaptive isolation Execute times the call on the Clock and
// feeds the limit algorithm: a call whose error the shared classifier
// (sluice.Classify) calls a timeout, unavailable or rate-limited counts as
// dropped, the caller's own cancellation and panics give no sample.
func (b *Bulkhead) Execute(ctx context.Context, next sluice.Next) error {
	// The permit is taken and returned through the same stash cell.
	h := b.p.hint()
	if !b.p.tryAcquire(h) {
		if err := b.acquireSlow(ctx); err != nil {
			return err
		}
	}
	if b.adaptive {
		return b.runAdaptive(ctx, next)
	}
	defer b.p.release(h)
	return next.Run(ctx)
}

func (b *Bulkhead) runAdaptive(ctx context.Context, next sluice.Next) (err error) {
	start := b.clock.Now()
	sampled := false
	defer func() {
		if !sampled {
			b.Release() // panic: no sample
		}
	}()
	err = next.Run(ctx)
	sampled = true
	switch sluice.Classify(ctx, err).Type {
	case sluice.FailureCanceled:
		b.Release()
	case sluice.FailureTimeout, sluice.FailureUnavailable, sluice.FailureRateLimited:
		now := b.clock.Now()
		b.ReleaseSampleAt(now, now.Sub(start), true)
	default:
		now := b.clock.Now()
		b.ReleaseSampleAt(now, now.Sub(start), false)
	}
	return err
}

func (b *Bulkhead) acquireSlow(ctx context.Context) error {
	cfg := b.cfg.Load()
	if cfg.MaxQueue == 0 {
		return b.reject(QueueFull)
	}
	if ctx.Err() != nil {
		b.canceled.Add(1)
		return context.Cause(ctx)
	}
	b.mu.Lock()
	switch b.joinLocked(cfg.MaxQueue) {
	case joinTook:
		b.mu.Unlock()
		return nil
	case joinFull:
		b.mu.Unlock()
		return b.reject(QueueFull)
	}
	w := b.pool.Get().(*waiter)
	w.prev, w.next, w.granted = nil, nil, false
	b.pushLocked(w)
	b.settleLocked()
	b.mu.Unlock()

	var expired <-chan time.Time
	if cfg.MaxWait > 0 {
		t := b.clock.NewTimer(cfg.MaxWait)
		defer t.Stop()
		expired = t.C()
	}
	select {
	case <-w.ch:
		b.pool.Put(w)
		return nil
	case <-expired:
		return b.leave(w, nil)
	case <-ctx.Done():
		return b.leave(w, ctx)
	}
}

// joinLocked is the way into the queue, for Acquire and EnqueueAt alike: it
// takes a permit if one is free and nobody waits, else counts the caller
// among the waiters, unless maxQueue are waiting already (see permits.join).
func (b *Bulkhead) joinLocked(maxQueue int) int {
	for {
		r := b.p.join(maxQueue)
		if r != joinDrained {
			if r == joinQueued {
				b.waited.Add(1)
			}
			return r
		}
		b.dispatchLocked() // to those queued ahead, if any
	}
}

// settleLocked runs after a waiter joined the queue: a permit deposited in
// a stash before the waiter was counted is drained and handed to the queue,
// since the depositor did not see the waiter.
func (b *Bulkhead) settleLocked() {
	if b.p.drain() > 0 {
		b.dispatchLocked()
	}
}

// pushLocked appends w, already counted by joinLocked, to the queue.
func (b *Bulkhead) pushLocked(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next = w
	}
	b.tail = w
}

// unlinkLocked takes w out of the queue and out of the waiter count.
func (b *Bulkhead) unlinkLocked(w *waiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	b.p.unwait()
}

// leave takes w out of the queue after its wait ran out (ctx nil) or its
// context was done. A permit handed over in the meantime is kept when the
// wait ran out, returned when the caller cancelled.
func (b *Bulkhead) leave(w *waiter, ctx context.Context) error {
	b.mu.Lock()
	if w.granted {
		b.mu.Unlock()
		<-w.ch
		b.pool.Put(w)
		if ctx == nil {
			return nil
		}
		b.Release()
		return context.Cause(ctx)
	}
	b.unlinkLocked(w)
	b.mu.Unlock()
	b.pool.Put(w)
	if ctx != nil {
		b.canceled.Add(1)
		return context.Cause(ctx)
	}
	return b.reject(WaitExpired)
}

// wake hands free permits to the waiters; permits calls it when it has
// put permits back in the word while callers wait.
func (b *Bulkhead) wake() {
	b.mu.Lock()
	b.dispatchLocked()
	b.mu.Unlock()
}

// dispatchLocked hands free permits to waiters, head first: a goroutine is
// woken, a ticket is filed for ReleaseAt or Granted to return. The permits
// come with no time (a Release, an Update, a stash drained), so a ticket
// still queued gets one whatever its deadline: only ExpireAt and
// dispatchAtLocked, which are given the time, take expired tickets out.
func (b *Bulkhead) dispatchLocked() {
	for b.head != nil && b.grantHeadLocked() {
	}
}

// dispatchAtLocked is dispatchLocked for a release at now: a ticket whose
// wait ran out by then gets no permit; it leaves the queue, rejected, for
// ExpireAt to report.
func (b *Bulkhead) dispatchAtLocked(now time.Time) {
	for w := b.head; w != nil; w = b.head {
		if w.ch == nil && w.expiredBy(now) {
			b.expireLocked(w)
			continue
		}
		if !b.grantHeadLocked() {
			return
		}
	}
}

// grantHeadLocked hands a free permit, if there is one, to the waiter at
// the head of the queue, which must not be empty, and reports whether it
// did.
func (b *Bulkhead) grantHeadLocked() bool {
	if !b.p.takeForWaiter() {
		return false
	}
	w := b.head
	b.head = w.next
	if b.head == nil {
		b.tail = nil
	} else {
		b.head.prev = nil
	}
	w.next = nil
	w.granted = true
	if w.ch == nil {
		w.state = ticketGranted
		b.granted = append(b.granted, Ticket{w})
	} else {
		w.ch <- struct{}{} // buffered: never blocks
	}
	return true
}

// reject counts a rejection, tells the listener, and returns the error,
// which is preallocated.
func (b *Bulkhead) reject(r Reason) error {
	e := b.errs.Load()[r]
	b.rejected.Inc()
	if l := b.cfg.Load().OnReject; l != nil {
		l(e)
	}
	return e
}

// admittedLocked returns the count of permits ever granted, never less than
// it returned before.
func (b *Bulkhead) admittedLocked() int64 {
	n := b.p.admitted()
	// A caller that just wrapped the field may not have carried it into
	// countHi yet; report the last figure rather than a smaller one.
	n = max(n, b.floorAdm)
	b.floorAdm = n
	return n
}

// Stats is a snapshot of a Bulkhead's counters. The counts are read without
// stopping callers, so they may be a few calls apart from each other.
type Stats struct {
	Name      string
	Isolation Isolation

	// Active is the number of permits in use, overflow included.
	Active int
	// Queued is the number of callers waiting for a permit.
	Queued int
	// Limit is the bulkhead's own limit now: MaxConcurrent, or the adaptive
	// estimate.
	Limit int
	// MaxConcurrent is the configured limit; under Adaptive isolation the
	// ceiling, Adaptive.MaxLimit.
	MaxConcurrent int
	// Overflow is how many permits a Shared bulkhead may take beyond Limit
	// while its group has idle capacity; zero otherwise.
	Overflow int

	// Admitted counts calls that got a permit, Rejected calls turned away
	// with a *FullError (TryAcquire failures included), Canceled callers
	// whose context ended while they queued (or whose Ticket was
	// cancelled). Total is their sum.
	Admitted, Rejected, Canceled, Total int64
	// Waited counts the calls of Total that joined the queue before they
	// were admitted, rejected or cancelled.
	Waited int64
	// RejectionRate is Rejected/Total since the bulkhead was created.
	RejectionRate float64
	// RecentRejectionRate is the share of calls rejected over about the
	// last minute, for a reader that calls Stats at least every 10 seconds
	// (a health monitor); read less often, since the previous read. Stats
	// snapshots the counts at most once per 10-second slot and the rate is
	// taken from the oldest snapshot of the last six slots.
	RecentRejectionRate float64
	// Utilization is Active/Limit; above 1 while a Shared bulkhead overflows
	// or after its limit was lowered below the calls running.
	Utilization float64
}

// Stats returns a snapshot of the bulkhead's state and counters.
func (b *Bulkhead) Stats() Stats {
	now := b.clock.Now()
	cfg := b.cfg.Load()
	st := Stats{
		Name:          b.name,
		Isolation:     cfg.Isolation,
		Active:        int(b.p.inUse()),
		Queued:        b.p.waiting(),
		Limit:         int(b.p.limit()),
		MaxConcurrent: cfg.MaxConcurrent,
	}
	if cfg.Isolation == Shared {
		st.Overflow = int(b.p.overflowed())
	}
	epoch := recentEpoch(now)
	b.smu.Lock()
	st.Admitted = b.admittedLocked()
	st.Rejected = b.rejected.Load()
	st.Canceled = b.canceled.Load()
	st.Waited = b.waited.Load()
	st.Total = st.Admitted + st.Rejected + st.Canceled
	st.RecentRejectionRate = b.recent.rate(epoch, st.Total, st.Rejected)
	b.recent.observe(epoch, st.Total, st.Rejected)
	b.smu.Unlock()
	if st.Total > 0 {
		st.RejectionRate = float64(st.Rejected) / float64(st.Total)
	}
	if st.Limit > 0 {
		st.Utilization = float64(st.Active) / float64(st.Limit)
	}
	return st
}

var _ sluice.Policy = (*Bulkhead)(nil)
