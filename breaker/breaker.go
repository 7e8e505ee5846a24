package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
	"github.com/sluice-go/sluice/internal/window"
)

// Rule states; the values equal StateClosed, StateOpen and StateHalfOpen.
const (
	ruleClosed   = uint8(StateClosed)
	ruleOpen     = uint8(StateOpen)
	ruleHalfOpen = uint8(StateHalfOpen)
)

// Modes: who is in charge.
const (
	modeAuto        uint8 = iota // the rules
	modeDisabled                 // nobody: admit everything, never trip
	modeForcedOpen               // the operator: reject everything
	modeMetricsOnly              // the rules, in the background: admit everything
)

// The state word, read without the lock on every call:
//
//	bits 0-1  rule state
//	bits 2-3  mode
//	bit  4    clean: a success would change nothing (closed, full count window
//	          of successes only, no failure run), so it need not take the lock
//	bit  5    armed: open under the rules with a runtime timer due at the end
//	          of the open period, so a rejection need not read the clock
//	bit  6    timed: SlowCallDuration is set, so calls are timed
//	bit  7    timers: time comes from package time and Close was not called,
//	          so timed changes can be driven by a runtime timer
//	bits 8-63 generation, bumped on every change of rule state
const (
	stateMask = 3
	modeShift = 2
	modeMask  = 3 << modeShift
	cleanBit  = 1 << 4
	armedBit  = 1 << 5
	timedBit  = 1 << 6
	timersBit = 1 << 7
	genShift  = 8
)

// admitsFree reports whether the word admits a call without the lock: closed
// rules, and not forced open.
func admitsFree(w uint64) bool {
	return w&stateMask == uint64(ruleClosed) && w&modeMask != uint64(modeForcedOpen)<<modeShift
}

const (
	permitNone    uint8 = iota
	permitClosed        // counts in the closed window
	permitProbe         // holds a half-open probe slot
	permitPassive       // metrics-only call the rules would have rejected; counts only in Stats
)

// Breaker is a circuit breaker: it watches the outcomes of calls to a
// dependency and, when they go bad, stops calling it for a while so that it
// can recover, then lets a few probe calls through to see whether it has.
//
// Most callers put a Breaker in a sluice.Pipeline, or call Execute. Allow
// and Permit.Done expose the same state machine in two steps, reading the
// Clock only when they must; AllowAt, Permit.DoneAt, StateAt and StatsAt
// take the time as an argument instead, for simulators and tests. A Breaker
// is safe for concurrent use; create one with New. A successful call through a closed breaker takes no lock and
// allocates nothing; a rejected call allocates nothing.
//
// Timed changes (the end of an open period, the limit on hung probes) are
// applied lazily: every method that takes or reads the time (AllowAt,
// DoneAt, Execute, State, Stats, ...) first applies the changes due by then,
// so State and Stats are right without traffic, and the listener fires at
// that moment with the time the change was due. In addition, with the
// system clock, the methods that read the clock themselves (Execute, Allow,
// Done, State, Stats, the manual methods) arm a runtime timer for the next
// change (no goroutine waits on it), so the breaker turns half-open and
// OnStateChange fires on time even without traffic, and a rejection need
// not read the clock. Close stops the timer.
type Breaker struct {
	_    [64]byte // keep the read-mostly line below away from other objects
	word atomic.Uint64
	rej  atomic.Pointer[rejection] // the current open period's error
	set  atomic.Pointer[settings]
	name string
	// Errors of the rejections that carry no time: forcedErr built once,
	// busyErr once per half-open period (it carries the trip's cause).
	busyErr, forcedErr *rejection
	_                  [64]byte // the counters below are written on every call

	successes stripe.Counter
	rejected  stripe.Counter
	_         [64]byte

	mu sync.Mutex
	// Everything below is guarded by mu.
	gen         uint64
	state, mode uint8
	ring        *window.Ring    // CountWindow
	buckets     *window.Buckets // TimeWindow
	consecutive int             // failure run while closed
	opens       int             // openings since the last successful close
	probeAt     time.Time       // end of the open period
	openRej     *rejection      // error of the current open period
	trip        Trip            // the figures of the latest opening
	probesOut   int             // half-open probes admitted, not finished
	probeOK     int             // half-open probe successes
	progress    time.Time       // last half-open progress: entry, first probe out, a probe finishing
	since       time.Time       // time of the last change of state

	failures, ignored, slow, wouldReject int64

	timer    *time.Timer // AfterFunc(onTimer), with the system clock only
	timerOn  bool
	timerAt  time.Time
	noTimers bool // set by Close

	pending  []StateChange // changes not yet delivered to OnStateChange
	draining bool          // a goroutine is delivering pending

	sh *shared // Config.Shared's state, nil for a breaker of its own
}

var _ sluice.Policy = (*Breaker)(nil)

// New returns a closed breaker configured by cfg, or an error naming each
// invalid field and the rule it breaks.
func New(cfg Config) (*Breaker, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	b := &Breaker{name: cfg.Name}
	b.busyErr = &rejection{b: b, kind: rejectBusy}
	b.forcedErr = &rejection{b: b, kind: rejectForced}
	b.set.Store(s)
	b.newWindowLocked(s)
	b.since = s.clock.Now()
	b.publishLocked()
	if cfg.Shared != nil {
		if err := b.attach(cfg.Shared); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// fixed in code.
func MustNew(cfg Config) *Breaker {
	b, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return b
}

// Name returns Config.Name.
func (b *Breaker) Name() string { return b.name }

// Config returns the Config the breaker was built or last updated with, as
// given (defaults not filled in), so that Update with a modified copy
// changes only what was modified.
func (b *Breaker) Config() Config { return b.set.Load().cfg }

// Update applies cfg to a running breaker, keeping its state: an open
// breaker stays open until its current open period ends, a closed one keeps
// its window unless the window's shape changed. Name cannot change. Update
// replaces the whole Config, hooks included; start from Config() to change
// one knob.
func (b *Breaker) Update(cfg Config) error {
	s, err := newSettings(cfg)
	if err != nil {
		return err
	}
	if cfg.Name != b.name {
		return fmt.Errorf("breaker: Update cannot change Config.Name from %q to %q", b.name, cfg.Name)
	}
	if err := b.sameShared(cfg); err != nil {
		return err
	}
	b.mu.Lock()
	old := b.set.Load()
	b.set.Store(s)
	if !sameWindow(old, s) {
		b.newWindowLocked(s)
	}
	now := s.clock.Now()
	b.armLocked(now, s)
	b.publishLocked()
	b.unlockAndNotify()
	return nil
}

// Close stops the breaker's timer, so that a breaker no longer used is not
// kept alive until its open period ends, and closes Config.Shared (its
// goroutines end), returning that Close's error. The breaker keeps working
// afterwards, alone, applying timed changes lazily.
func (b *Breaker) Close() error {
	b.mu.Lock()
	b.noTimers = true
	b.stopTimerLocked()
	b.publishLocked()
	b.mu.Unlock()
	return b.closeShared()
}

// Execute runs next through the breaker: it rejects the call with an error
// satisfying errors.Is(err, ErrOpen) when the breaker is open, otherwise runs
// it and counts its outcome as Outcome judges it (a nil error is a success;
// the caller's own cancellation is neither; any other error is judged by
// Config.IsFailure or the shared classifier). A panic in next counts as a
// failure and is not recovered. Execute returns next's error unchanged.
func (b *Breaker) Execute(ctx context.Context, next sluice.Next) error {
	w := b.word.Load()
	if admitsFree(w) && w&timedBit == 0 {
		return b.executeClosed(ctx, next, w)
	}
	if r := b.rejectWithoutClock(w); r != nil {
		b.rejected.Inc()
		return r
	}
	return b.execute(ctx, next)
}

// executeClosed is Execute for a closed breaker that does not time calls: no
// clock, and no lock unless the outcome changes the window.
func (b *Breaker) executeClosed(ctx context.Context, next sluice.Next, w uint64) (err error) {
	p := Permit{b: b, gen: w >> genShift, kind: permitClosed}
	finished := false
	defer func() {
		if !finished { // next (or IsFailure) panicked, or called runtime.Goexit
			b.finish(b.set.Load(), p, Failure, nil)
		}
	}()
	err = next.Run(ctx)
	if err == nil && b.word.Load()&cleanBit != 0 {
		finished = true
		b.successes.Inc() // the hot path: nothing else to record
		return nil
	}
	s := b.set.Load()
	o := Success
	if err != nil {
		o = s.classify(ctx, err)
	}
	finished = true
	b.finish(s, p, o, err)
	return err
}

// execute is Execute for the other cases: half-open, open without an armed
// timer, metrics-only, or calls to be timed.
func (b *Breaker) execute(ctx context.Context, next sluice.Next) (err error) {
	s := b.set.Load()
	now := s.clock.Now()
	p, err := b.allow(now, true)
	if err != nil {
		return err
	}
	timed := s.slowDur > 0
	finished := false
	defer func() {
		if !finished {
			b.finishStarted(s, p, timed, now, Failure, nil)
		}
	}()
	err = next.Run(ctx)
	o := Success
	if err != nil {
		o = s.classify(ctx, err)
	}
	finished = true
	b.finishStarted(s, p, timed, now, o, err)
	return err
}

// rejectWithoutClock returns the rejection for a word that decides it
// without the time: forced open, or open with the timer armed (the timer
// moves the breaker on when the open period ends). Otherwise nil.
func (b *Breaker) rejectWithoutClock(w uint64) *rejection {
	if w&modeMask == uint64(modeForcedOpen)<<modeShift {
		return b.forcedErr
	}
	if w&(stateMask|modeMask|armedBit) == uint64(ruleOpen)|armedBit {
		if r := b.rej.Load(); r != nil && r.gen == w>>genShift {
			return r
		}
	}
	return nil
}

// Outcome returns how the breaker counts a call that ended with err, as
// Execute counts it: a nil error is a Success; the caller's own
// cancellation (ctx is done and err is a context error) is Ignored; any
// other error is a Failure or a Success as Config.IsFailure says, or, when
// IsFailure is nil, as the shared classifier does (sluice.Classify: a
// failure of the dependency counts, a local rejection, a client error or a
// cancellation does not). Pass the result to Permit.Done or Permit.DoneAt
// when driving the breaker through Allow or AllowAt.
func (b *Breaker) Outcome(ctx context.Context, err error) Outcome {
	if err == nil {
		return Success
	}
	return b.set.Load().classify(ctx, err)
}

// classify is Outcome for a non-nil err under settings s, so that Execute
// judges a call under the settings it was admitted with.
func (s *settings) classify(ctx context.Context, err error) Outcome {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return Ignored
	}
	if s.isFailure != nil {
		if s.isFailure(ctx, err) {
			return Failure
		}
		return Success
	}
	f := sluice.Classify(ctx, err)
	switch {
	case f.Type == sluice.FailureCanceled:
		return Ignored
	case f.IsFailure():
		return Failure
	}
	return Success
}

// finish records the outcome of an untimed call admitted by Execute,
// reading the clock only if the outcome may change the rules. err is the
// call's error, kept as the cause if the outcome opens the breaker.
func (b *Breaker) finish(s *settings, p Permit, o Outcome, err error) {
	if o == Success && b.word.Load()&cleanBit != 0 {
		b.successes.Inc()
		return
	}
	b.record(s.clock.Now(), s, p, o, false, true, err)
}

// finishTimed is finish for a call admitted at start, measured against
// SlowCallDuration.
func (b *Breaker) finishTimed(s *settings, p Permit, start time.Time, o Outcome, err error) {
	now := s.clock.Now()
	slow := now.Sub(start) > s.slowDur
	if o == Success && !slow && b.word.Load()&cleanBit != 0 {
		b.successes.Inc()
		return
	}
	b.record(now, s, p, o, slow, true, err)
}

// finishStarted is finishTimed when timed says that calls are measured,
// else finish.
func (b *Breaker) finishStarted(s *settings, p Permit, timed bool, start time.Time, o Outcome, err error) {
	if timed {
		b.finishTimed(s, p, start, o, err)
		return
	}
	b.finish(s, p, o, err)
}

// Permit is the right to make one call, granted by Allow or AllowAt. Report
// the call's outcome exactly once, with Done or DoneAt. A Permit is a small
// value; its zero value (returned with an error) ignores both.
type Permit struct {
	b    *Breaker
	gen  uint64
	kind uint8
}

// Probe reports whether the permit is for a half-open probe call, whose
// outcome decides whether the breaker closes.
func (p Permit) Probe() bool { return p.kind == permitProbe }

// DoneAt reports the outcome of the permitted call, which ended at now after
// running for elapsed (compared with Config.SlowCallDuration; pass 0 if slow
// calls do not matter). An outcome reported after the breaker changed state
// since the permit was granted updates Stats but not the rules.
func (p Permit) DoneAt(now time.Time, o Outcome, elapsed time.Duration) {
	b := p.b
	if b == nil {
		return
	}
	s := b.set.Load()
	slow := s.slowDur > 0 && elapsed > s.slowDur
	if o == Success && !slow && b.word.Load()&cleanBit != 0 {
		b.successes.Inc()
		return
	}
	b.record(now, s, p, o, slow, false, nil)
}

// Done reports the outcome of the permitted call, which ran for elapsed
// (compared with Config.SlowCallDuration; pass 0 if slow calls do not
// matter), at the time of the breaker's Clock. Like Execute it reads the
// clock only when the outcome may change the rules: a fast success through
// a closed breaker whose window holds only successes does not.
func (p Permit) Done(o Outcome, elapsed time.Duration) {
	b := p.b
	if b == nil {
		return
	}
	s := b.set.Load()
	slow := s.slowDur > 0 && elapsed > s.slowDur
	if o == Success && !slow && b.word.Load()&cleanBit != 0 {
		b.successes.Inc()
		return
	}
	b.record(s.clock.Now(), s, p, o, slow, true, nil)
}

// Allow decides whether a call may go ahead now, by the breaker's Clock. It
// returns a Permit whose Done (or DoneAt) must be called with the outcome,
// or an error satisfying errors.Is(err, ErrOpen) when the breaker rejects
// the call. Like Execute it reads the clock only when it must: a closed
// breaker admits, and an open one with its timer armed rejects, without it.
func (b *Breaker) Allow() (Permit, error) {
	w := b.word.Load()
	if admitsFree(w) {
		return Permit{b: b, gen: w >> genShift, kind: permitClosed}, nil
	}
	if r := b.rejectWithoutClock(w); r != nil {
		b.rejected.Inc()
		return Permit{}, r
	}
	return b.allow(b.set.Load().clock.Now(), true)
}

// AllowAt decides, at time now, whether a call may go ahead. It returns a
// Permit whose DoneAt (or Done) must be called with the outcome, or an
// error satisfying errors.Is(err, ErrOpen) when the breaker rejects the
// call. Execute is, in effect, Allow and Done around a call.
func (b *Breaker) AllowAt(now time.Time) (Permit, error) { return b.allow(now, false) }

// allow is Allow and AllowAt; clocked says that now was read from the Clock, so that
// timers may be armed from it.
func (b *Breaker) allow(now time.Time, clocked bool) (Permit, error) {
	w := b.word.Load()
	if admitsFree(w) {
		return Permit{b: b, gen: w >> genShift, kind: permitClosed}, nil
	}
	if w&modeMask == uint64(modeForcedOpen)<<modeShift {
		b.rejected.Inc()
		return Permit{}, b.forcedErr
	}
	// Open under the rules: decide without the lock, unless the clock's
	// time could arm the timer that lets later rejections skip the clock.
	if w&(stateMask|modeMask) == uint64(ruleOpen) && (!clocked || w&(timersBit|armedBit) != timersBit) {
		if r := b.rej.Load(); r != nil && r.gen == w>>genShift && now.Before(r.probeAt) {
			b.rejected.Inc()
			return Permit{}, r
		}
	}
	return b.allowLocked(now, clocked)
}

func (b *Breaker) allowLocked(now time.Time, clocked bool) (Permit, error) {
	s := b.set.Load()
	b.mu.Lock()
	b.advanceLocked(now, s)
	if b.fleetProbeLocked() {
		return b.allowFleetProbe(now, clocked, s)
	}
	var p Permit
	var err error
	switch {
	case b.mode == modeForcedOpen:
		err = b.forcedErr
	case b.state == ruleClosed:
		p = Permit{b: b, gen: b.gen, kind: permitClosed}
	case b.state == ruleHalfOpen && b.probesOut < s.halfOpenCalls:
		if b.probesOut == 0 {
			b.progress = later(b.progress, now)
		}
		b.probesOut++
		p = Permit{b: b, gen: b.gen, kind: permitProbe}
	case b.mode == modeMetricsOnly:
		b.wouldReject++
		p = Permit{b: b, gen: b.gen, kind: permitPassive}
	case b.state == ruleOpen:
		err = b.openRej
	default:
		err = b.busyErr
	}
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	b.unlockAndNotify()
	if err != nil {
		b.rejected.Inc()
	}
	return p, err
}

// record counts an outcome that may change the rules; err is the call's
// error when known.
func (b *Breaker) record(now time.Time, s *settings, p Permit, o Outcome, slow, clocked bool, err error) {
	if o == Success {
		b.successes.Inc()
	}
	b.mu.Lock()
	switch o {
	case Failure:
		b.failures++
	case Ignored:
		b.ignored++
	}
	if slow {
		b.slow++
	}
	b.advanceLocked(now, s)
	if p.gen == b.gen && b.mode != modeForcedOpen {
		switch {
		case p.kind == permitClosed && b.state == ruleClosed:
			b.recordClosedLocked(now, s, o, slow, err)
		case p.kind == permitProbe && b.state == ruleHalfOpen:
			b.recordProbeLocked(now, s, o, slow, err)
		}
	}
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	b.unlockAndNotify()
}

func (b *Breaker) recordClosedLocked(now time.Time, s *settings, o Outcome, slow bool, err error) {
	if o == Ignored {
		return
	}
	var flags uint8
	if o == Failure {
		flags |= window.Failure
		b.consecutive++
	} else {
		b.consecutive = 0
	}
	if slow {
		flags |= window.Slow
	}
	var c window.Counts
	if b.ring != nil {
		b.ring.Record(flags)
		c = b.ring.Counts()
	} else {
		b.buckets.RecordAt(now, flags)
		c = b.buckets.CountsAt(now)
	}
	if b.mode == modeDisabled {
		return
	}
	why := TripNone
	switch {
	case s.failureThreshold > 0 && b.consecutive >= s.failureThreshold:
		why = TripConsecutive
	case c.Calls < s.minCalls:
	case s.failureRate > 0 && c.FailureRate() >= s.failureRate:
		why = TripFailureRate
	case s.slowRate > 0 && c.SlowRate() >= s.slowRate:
		why = TripSlowRate
	}
	if why != TripNone {
		b.toOpenLocked(now, s, Trip{
			Reason: why, Calls: c.Calls, Failures: c.Failures,
			FailureRate: c.FailureRate(), SlowRate: c.SlowRate(),
			ConsecutiveFailures: b.consecutive, Cause: err,
		})
	}
}

func (b *Breaker) recordProbeLocked(now time.Time, s *settings, o Outcome, slow bool, err error) {
	if b.probesOut > 0 {
		b.probesOut--
	}
	b.progress = later(b.progress, now)
	switch {
	case o == Ignored:
		b.sharedProbeFreedLocked(now)
	case o == Failure || slow && s.slowRate > 0:
		b.toOpenLocked(now, s, b.probeTripLocked(o, slow, err))
	default:
		b.probeOK++
		if b.sharedProbeOKLocked(now, s) {
			return // the fleet counts the probes and closes
		}
		if b.probeOK >= s.successThreshold {
			b.opens = 0 // a successful close resets the backoff
			b.toClosedLocked(now, s)
		}
	}
}

// probeTripLocked returns the figures of a trip by the probe that just
// finished with outcome o, after probeOK probes of this half-open period
// succeeded.
func (b *Breaker) probeTripLocked(o Outcome, slow bool, err error) Trip {
	t := Trip{Reason: TripProbeSlow, Calls: int64(b.probeOK) + 1, Cause: err}
	if o == Failure {
		t.Reason, t.Failures, t.ConsecutiveFailures = TripProbeFailed, 1, 1
	}
	t.FailureRate = float64(t.Failures) / float64(t.Calls)
	if slow {
		t.SlowRate = 1 / float64(t.Calls)
	}
	return t
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// advanceLocked applies the timed changes due by now: the end of an open
// period, and the wait limit of a half-open breaker whose probes hang. The
// loop runs at most three times: after a re-opening and the following
// half-open entry no probe is out.
func (b *Breaker) advanceLocked(now time.Time, s *settings) {
	if b.mode == modeDisabled || b.mode == modeForcedOpen {
		return
	}
	for {
		switch {
		case b.state == ruleOpen && !now.Before(b.probeAt):
			b.toHalfOpenLocked(b.probeAt)
		case b.state == ruleHalfOpen && b.probesOut > 0 && !now.Before(b.progress.Add(s.halfOpenMaxWait)):
			b.toOpenLocked(b.progress.Add(s.halfOpenMaxWait), s,
				Trip{Reason: TripProbeHung, Calls: int64(b.probeOK)})
		default:
			return
		}
	}
}

// toOpenLocked opens the breaker at time at, for the next open period, for
// the reason and with the figures of t.
func (b *Breaker) toOpenLocked(at time.Time, s *settings, t Trip) {
	from := b.state
	t.At = at
	b.trip = t
	b.probeAt = at.Add(s.openDuration(b.opens))
	b.opens++
	b.gen++
	b.state = ruleOpen
	b.probesOut, b.probeOK = 0, 0
	b.openRej = &rejection{b: b, gen: b.gen, probeAt: b.probeAt, cause: t.Cause, kind: rejectOpen}
	b.rej.Store(b.openRej) // before the word that names this generation
	b.ruleChangeLocked(from, at)
	b.sharedOpenedLocked(from, at)
}

func (b *Breaker) toHalfOpenLocked(at time.Time) {
	from := b.state
	b.gen++
	b.state = ruleHalfOpen
	b.probesOut, b.probeOK = 0, 0
	b.progress = at
	if b.busyErr.cause != b.trip.Cause {
		b.busyErr = &rejection{b: b, kind: rejectBusy, cause: b.trip.Cause}
	}
	b.ruleChangeLocked(from, at)
}

func (b *Breaker) toClosedLocked(at time.Time, s *settings) {
	from := b.state
	b.freshRulesLocked(s)
	b.ruleChangeLocked(from, at)
}

// freshRulesLocked restarts the rules in the closed state with an empty
// window, invalidating every permit granted so far.
func (b *Breaker) freshRulesLocked(s *settings) {
	b.gen++
	b.state = ruleClosed
	b.consecutive = 0
	b.probesOut, b.probeOK = 0, 0
	b.newWindowLocked(s)
}

func (b *Breaker) newWindowLocked(s *settings) {
	if s.windowType == CountWindow {
		b.ring, b.buckets = window.NewRing(s.windowSize), nil
	} else {
		b.ring, b.buckets = nil, window.NewBuckets(s.windowDuration, s.windowBuckets)
	}
}

// ruleChangeLocked notes a change of rule state from → b.state at time at.
func (b *Breaker) ruleChangeLocked(from uint8, at time.Time) {
	switch b.mode {
	case modeAuto:
		b.changeLocked(StateChange{From: State(from), To: State(b.state), At: at})
	case modeMetricsOnly:
		b.changeLocked(StateChange{From: State(from), To: State(b.state), At: at, MetricsOnly: true})
	}
}

func (b *Breaker) changeLocked(c StateChange) {
	b.since = c.At
	if b.set.Load().onChange != nil {
		c.Name = b.name
		b.pending = append(b.pending, c)
	}
}

// reportedLocked returns the State callers see.
func (b *Breaker) reportedLocked() State {
	switch b.mode {
	case modeDisabled:
		return StateDisabled
	case modeForcedOpen:
		return StateForcedOpen
	case modeMetricsOnly:
		return StateMetricsOnly
	}
	return State(b.state)
}

// cleanLocked reports whether recording a success would change nothing.
func (b *Breaker) cleanLocked() bool {
	if b.mode == modeForcedOpen || b.state != ruleClosed || b.ring == nil || b.consecutive != 0 {
		return false
	}
	c := b.ring.Counts()
	return c.Calls == int64(b.ring.Size()) && c.Failures == 0 && c.Slow == 0
}

// publishLocked stores the state word that the lock-free paths read.
func (b *Breaker) publishLocked() {
	w := b.gen<<genShift | uint64(b.state) | uint64(b.mode)<<modeShift
	if b.cleanLocked() {
		w |= cleanBit
	}
	if b.mode == modeAuto && b.state == ruleOpen && b.timerOn && b.timerAt.Equal(b.probeAt) {
		w |= armedBit
	}
	s := b.set.Load()
	if s.slowDur > 0 {
		w |= timedBit
	}
	if s.sysClock && !b.noTimers {
		w |= timersBit
	}
	b.word.Store(w)
}

// nextDeadlineLocked returns the time of the next timed change, if any.
func (b *Breaker) nextDeadlineLocked(s *settings) (time.Time, bool) {
	if b.mode == modeDisabled || b.mode == modeForcedOpen {
		return time.Time{}, false
	}
	switch {
	case b.state == ruleOpen:
		return b.probeAt, true
	case b.state == ruleHalfOpen && b.probesOut > 0:
		return b.progress.Add(s.halfOpenMaxWait), true
	}
	return time.Time{}, false
}

// armLocked points the timer at the next timed change, when time comes from
// package time. The timer only calls onTimer, which applies what is due.
// It is called only with a now read from the clock: times passed to AllowAt,
// DoneAt, StateAt and StatsAt may be virtual, and those calls apply changes
// lazily.
func (b *Breaker) armLocked(now time.Time, s *settings) {
	deadline, ok := b.nextDeadlineLocked(s)
	if !ok || !s.sysClock || b.noTimers {
		b.stopTimerLocked()
		return
	}
	if b.timerOn && b.timerAt.Equal(deadline) {
		return
	}
	d := time.Until(deadline)
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.onTimer)
	} else {
		b.timer.Reset(d)
	}
	b.timerOn, b.timerAt = true, deadline
}

func (b *Breaker) stopTimerLocked() {
	if b.timerOn {
		b.timer.Stop()
		b.timerOn = false
	}
}

func (b *Breaker) onTimer() {
	s := b.set.Load()
	b.mu.Lock()
	b.timerOn = false
	now := s.clock.Now()
	b.advanceLocked(now, s)
	b.armLocked(now, s)
	b.publishLocked()
	b.unlockAndNotify()
}

// unlockAndNotify releases mu and delivers pending state changes to the
// listener, outside the lock. One goroutine delivers at a time, in order;
// changes queued meanwhile (by other goroutines or by the listener itself)
// are delivered by it too.
func (b *Breaker) unlockAndNotify() {
	if b.draining || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.draining = true
	ok := false
	defer func() {
		if !ok { // the listener panicked
			b.mu.Lock()
			b.draining = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		fn := b.set.Load().onChange
		b.mu.Unlock()
		for _, c := range batch {
			if fn != nil {
				fn(c)
			}
		}
		b.mu.Lock()
	}
	b.draining = false
	ok = true
	b.mu.Unlock()
}

// State returns the breaker's state at the time of its Clock, applying the
// timed changes due by then.
func (b *Breaker) State() State {
	s := b.set.Load()
	return b.stateAt(s.clock.Now(), s, true)
}

// StateAt returns the breaker's state at time now, applying the timed changes
// due by then.
func (b *Breaker) StateAt(now time.Time) State { return b.stateAt(now, b.set.Load(), false) }

// stateAt is State and StateAt; clocked says that now was read from the
// Clock, so that the timer may be armed from it.
func (b *Breaker) stateAt(now time.Time, s *settings, clocked bool) State {
	b.mu.Lock()
	b.advanceLocked(now, s)
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	st := b.reportedLocked()
	b.unlockAndNotify()
	return st
}

// Stats returns a snapshot of the breaker at the clock's current time.
func (b *Breaker) Stats() Stats { return b.statsAt(b.set.Load().clock.Now(), true) }

// StatsAt returns a snapshot of the breaker at time now, applying the timed
// changes due by then.
func (b *Breaker) StatsAt(now time.Time) Stats { return b.statsAt(now, false) }

func (b *Breaker) statsAt(now time.Time, clocked bool) Stats {
	s := b.set.Load()
	b.mu.Lock()
	b.advanceLocked(now, s)
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	var c window.Counts
	if b.ring != nil {
		c = b.ring.Counts()
	} else {
		c = b.buckets.CountsAt(now)
	}
	st := Stats{
		Name:                b.name,
		State:               b.reportedLocked(),
		Shadow:              b.reportedLocked(),
		Failures:            b.failures,
		Ignored:             b.ignored,
		Slow:                b.slow,
		WouldReject:         b.wouldReject,
		WindowCalls:         c.Calls,
		FailureRate:         c.FailureRate(),
		SlowRate:            c.SlowRate(),
		ConsecutiveFailures: b.consecutive,
		ProbesInFlight:      b.probesOut,
		Opens:               b.opens,
		InState:             max(0, now.Sub(b.since)),
		LastTrip:            b.trip,
	}
	if b.mode == modeMetricsOnly {
		st.Shadow = State(b.state)
	}
	if b.mode == modeAuto || b.mode == modeMetricsOnly {
		switch b.state {
		case ruleOpen:
			st.NextProbeIn = max(0, b.probeAt.Sub(now))
		case ruleHalfOpen:
			st.ProbeSuccesses = b.probeOK
		}
	}
	b.unlockAndNotify()
	st.Successes = b.successes.Load()
	st.Rejected = b.rejected.Load()
	st.Calls = st.Successes + st.Failures + st.Ignored
	return st
}

// ForceOpen makes the breaker reject every call until ForceClosed, Reset,
// Disable or SetMetricsOnly. Calls in flight no longer count.
func (b *Breaker) ForceOpen() { b.manual(modeForcedOpen, true, false) }

// ForceClosed hands the breaker back to its rules, closed, with an empty
// window. Unlike Reset it keeps the open-period backoff, so a dependency
// that fails again at once is not probed at the shortest interval.
func (b *Breaker) ForceClosed() { b.manual(modeAuto, true, false) }

// Reset hands the breaker back to its rules as New left it: closed, empty
// window, no backoff. Stats counters are totals and are kept.
func (b *Breaker) Reset() { b.manual(modeAuto, true, true) }

// Disable makes the breaker admit every call and never trip, while it still
// counts outcomes in Stats and its window, until ForceClosed, Reset,
// ForceOpen or SetMetricsOnly.
func (b *Breaker) Disable() { b.manual(modeDisabled, true, false) }

// SetMetricsOnly makes the breaker admit every call while its rules keep
// running from the current state: they open, half-open and close, notify
// OnStateChange (with StateChange.MetricsOnly set) and show in
// Stats.Shadow, but reject nothing. Leave it with ForceClosed, Reset,
// ForceOpen or Disable.
func (b *Breaker) SetMetricsOnly() { b.manual(modeMetricsOnly, false, false) }

func (b *Breaker) manual(mode uint8, fresh, resetBackoff bool) {
	s := b.set.Load()
	now := s.clock.Now()
	b.mu.Lock()
	b.advanceLocked(now, s)
	from := b.reportedLocked()
	b.mode = mode
	if fresh {
		b.freshRulesLocked(s)
	}
	if resetBackoff {
		b.opens = 0
	}
	if to := b.reportedLocked(); to != from {
		b.changeLocked(StateChange{From: from, To: to, At: now})
	}
	b.armLocked(now, s)
	b.publishLocked()
	b.unlockAndNotify()
}
