package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/timeout"
)

// This file is the client side: one logical call going through a policy
// instance, attempt by attempt, in the order of sluicehttp's Transport,
// which the sidecar uses (retry, rate limiter, bulkhead, breaker,
// per-attempt timeout). Each decision is taken by the policy packages' own
// state machines at the virtual time of the event.

// The errors of the model. A rejection the sim decides on behalf of a
// package whose explicit-time API returns no error value (the rate
// limiter's AllowAt and ReserveAt) matches that package's sentinel and
// sluice.ErrRejected, as the package's own would.
var (
	errUnavailable  = &sluice.StatusError{Code: 503}
	errCallerGaveUp = fmt.Errorf("sim: caller's deadline passed: %w", context.DeadlineExceeded)
	errRateLimited  = fmt.Errorf("sim: %w: %w", ratelimit.ErrLimited, sluice.ErrRejected)
)

// gaveUpContext returns the context of a caller whose deadline has passed:
// the policies judge an error seen with it as the caller's own
// cancellation. The policies see context.Background() for a caller still
// waiting.
func gaveUpContext() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCallerGaveUp)
	return ctx
}

// answers makes the answers a middle service sends its caller, as its
// caller's HTTP client sees them, one shared value per distinct answer (the
// wire carries a status, a Sluice-Reject reason and a Retry-After in whole
// seconds).
type answers map[answerKey]error

type answerKey struct {
	code       int
	reason     string
	retryAfter time.Duration
	final      bool
}

func (a answers) get(k answerKey) error {
	if e, ok := a[k]; ok {
		return e
	}
	var e error
	if k.final {
		e = &sluicehttp.NoRetryError{Code: k.code, Reason: k.reason, RetryAfterHint: k.retryAfter}
	} else {
		e = &sluice.StatusError{Code: k.code}
	}
	a[k] = e
	return e
}

// final is an answer marked Sluice-Reject (reason set) or Sluice-Retry: no,
// which the caller's transport turns into a *sluicehttp.NoRetryError.
func (a answers) final(code int, reason string, retryAfter time.Duration) error {
	if retryAfter > 0 {
		retryAfter = (retryAfter + time.Second - 1).Truncate(time.Second)
	}
	return a.get(answerKey{code: code, reason: reason, retryAfter: retryAfter, final: true})
}

// sidecar is what a service behind a sluice sidecar answers for a call that
// ended with err, as sluicehttp has it: the upstream's last failure answer
// marked Sluice-Retry: no when the upstream answered at all; otherwise the
// answer RejectionFor gives a policy's decision (Sluice-Reject); otherwise
// 502.
func (a answers) sidecar(c *call, err error) error {
	if err == nil {
		return nil
	}
	if last := c.lastAnswer; last != nil {
		var nr *sluicehttp.NoRetryError
		if errors.As(last, &nr) {
			return a.final(nr.Code, nr.Reason, nr.RetryAfterHint)
		}
		var sc sluice.StatusCoder
		if errors.As(last, &sc) {
			hint, _ := sluice.RetryAfter(last)
			return a.final(sc.StatusCode(), "", hint)
		}
	}
	if r, ok := sluicehttp.RejectionFor(err); ok {
		return a.final(r.Status, r.Reason, r.RetryAfter)
	}
	return a.get(answerKey{code: 502})
}

// plain is what a service with a plain retry library answers: the status
// of the failure, 503 when its policy shed the call, 502 otherwise.
func (a answers) plain(err error) error {
	if err == nil {
		return nil
	}
	var sc sluice.StatusCoder
	switch {
	case errors.As(err, &sc):
		return a.get(answerKey{code: sc.StatusCode()})
	case errors.Is(err, sluice.ErrTimeLimit):
		return a.get(answerKey{code: 504})
	case errors.Is(err, sluice.ErrRejected):
		return a.get(answerKey{code: 503})
	}
	return a.get(answerKey{code: 502})
}

// inst is one client's instance of a policy: its own retry (with its
// budget), breaker, bulkhead and limiter, as each service instance's sidecar
// has its own.
type inst struct {
	sp    *spec
	chain int        // which client (or chain of services) it serves
	rng   *rand.Rand // the retry's jitter
	rt    *retry.Retry
	br    *breaker.Breaker
	bh    *bulkhead.Bulkhead
	lim   *ratelimit.TokenBucket
	// checks is the breaker's link to the instance's health checks, when
	// the policy runs them.
	checks *checkLink

	// queued maps the bulkhead's tickets to the attempts waiting on them.
	queued map[bulkhead.Ticket]*try
}

func newInst(sp *spec, w *world, chain int, rng *rand.Rand) *inst {
	in := &inst{sp: sp, chain: chain, rng: rng}
	if sp.retry != nil {
		c := *sp.retry
		c.Clock = w.clock
		c.Budget = sp.budget.build()
		rt, err := retry.New(c)
		if err != nil {
			panic(err) // validated when the spec was built
		}
		in.rt = rt
	}
	if sp.breaker != nil {
		c := *sp.breaker
		c.Clock = w.clock
		if sp.checks {
			in.checks = &checkLink{w: w}
			c.Shared = in.checks
		}
		in.br = breaker.MustNew(c)
	}
	if sp.bulkhead != nil {
		c := *sp.bulkhead
		c.Clock = w.clock
		in.bh = bulkhead.MustNew(c)
		in.queued = map[bulkhead.Ticket]*try{}
	}
	if sp.limiter != nil {
		c := *sp.limiter
		c.Clock = w.clock
		in.lim = ratelimit.MustNew(c)
	}
	return in
}

// layer is one hop of calls: callers with policy instances sending attempts
// to whatever is below (the upstream server, or the next service).
type layer struct {
	w              *world
	rec            *recorder
	index          int
	attemptTimeout time.Duration   // the client's own per-attempt timeout
	send           func(t *try)    // transmit an attempt; the answer comes back through reply
	bottom         bool            // attempts reach the upstream server
	timeouts       *lane           // per-attempt timeouts, a fixed delay after sending
	gaveUp         context.Context // see gaveUpContext
	timeoutErrs    map[time.Duration]error
}

// call is one logical request at one layer.
type call struct {
	in       *inst
	arrive   int64
	deadline int64
	rc       retry.Call // the retry policy's state of the call, when there is one
	done     func(c *call, err error)
	finished bool
	// lastAnswer is the last failure answer from below, for the answer a
	// sidecar gives when the call fails.
	lastAnswer error
}

// try is one attempt of a call.
type try struct {
	c         *call
	allowedAt int64 // when the breaker admitted it
	timeoutAt int64
	permit    breaker.Permit
	bulk      bool            // holds a bulkhead permit
	ticket    bulkhead.Ticket // queued for a bulkhead permit, while not zero
	finished  bool
}

// start begins a logical call at the current time.
func (l *layer) start(in *inst, deadline int64, done func(c *call, err error)) {
	c := &call{in: in, arrive: l.w.now, deadline: deadline, done: done}
	if in.rt != nil {
		c.rc = in.rt.BeginAt(l.w.time(), in.rng)
	}
	l.attempt(c)
}

func (l *layer) attempt(c *call) {
	t := &try{c: c}
	l.stageLimiter(t)
}

func (l *layer) stageLimiter(t *try) {
	in, c, w := t.c.in, t.c, l.w
	lc := in.sp.limiter
	if lc == nil {
		l.stageBulkhead(t)
		return
	}
	if lc.MaxWait == 0 {
		if in.lim.AllowAt(w.time(), 1) {
			l.stageBulkhead(t)
		} else {
			l.end(t, errRateLimited, false)
		}
		return
	}
	r := in.lim.ReserveAt(w.time(), 1)
	d := r.Delay()
	if !r.OK() || (lc.MaxWait > 0 && d > lc.MaxWait) || w.now+int64(d) > c.deadline {
		if r.OK() {
			r.CancelAt(w.time())
		}
		l.end(t, errRateLimited, false)
		return
	}
	if d <= 0 {
		l.stageBulkhead(t)
		return
	}
	l.rec.queued++
	w.after(d, func() { l.stageBulkhead(t) })
}

// stageBulkhead takes a bulkhead permit, or queues for one with a ticket of
// the bulkhead's explicit-time queue. A queued attempt waits until a
// release grants it a permit (release), its MaxWait runs out (ExpireAt) or
// its caller's deadline passes (Cancel), whichever comes first.
func (l *layer) stageBulkhead(t *try) {
	in, c, w := t.c.in, t.c, l.w
	if in.bh == nil {
		l.stageBreaker(t)
		return
	}
	tk, admitted, err := in.bh.EnqueueAt(w.time())
	switch {
	case err != nil:
		l.end(t, err, false)
		return
	case admitted:
		t.bulk = true
		l.stageBreaker(t)
		return
	}
	l.rec.queued++
	t.ticket = tk
	in.queued[tk] = t
	if mw := in.sp.bulkhead.MaxWait; mw > 0 && w.now+int64(mw) < c.deadline {
		w.after(mw, func() { l.expire(in) })
		return
	}
	w.at(c.deadline, func() {
		if t.ticket == tk && in.bh.Cancel(tk) {
			delete(in.queued, tk)
			t.ticket = bulkhead.Ticket{}
			l.end(t, errCallerGaveUp, true)
		}
	})
}

// expire ends the queued attempts whose bulkhead wait has run out.
func (l *layer) expire(in *inst) {
	expired, err := in.bh.ExpireAt(l.w.time())
	for _, tk := range expired {
		t := in.queued[tk]
		delete(in.queued, tk)
		t.ticket = bulkhead.Ticket{}
		l.end(t, err, false)
	}
}

func (l *layer) stageBreaker(t *try) {
	in, w := t.c.in, l.w
	if in.br != nil {
		p, err := in.br.AllowAt(w.time())
		if err != nil {
			l.end(t, err, false)
			return
		}
		t.permit = p
	}
	t.allowedAt = w.now
	l.transmit(t)
}

// release returns a bulkhead permit; the attempts it (or a wait that ran
// out at the same instant) lets in go on.
func (l *layer) release(in *inst) {
	for _, tk := range in.bh.ReleaseAt(l.w.time()) {
		t := in.queued[tk]
		delete(in.queued, tk)
		t.ticket = bulkhead.Ticket{}
		t.bulk = true
		l.stageBreaker(t)
	}
}

// transmit sends the attempt below, bounded by the per-attempt timeout (the
// client's own, or the policy's if shorter) and the caller's deadline.
func (l *layer) transmit(t *try) {
	c, w := t.c, l.w
	l.rec.sent(l.index, w.now, l.bottom)
	tmo := l.attemptTimeout
	if p := c.in.sp.timeout; p > 0 && p < tmo {
		tmo = p
	}
	limit, gaveUp := w.now+int64(tmo), false
	if limit >= c.deadline {
		limit, gaveUp = c.deadline, true
	}
	t.timeoutAt = limit
	schedule := w.at
	if !gaveUp && l.timeouts != nil {
		schedule = func(t int64, fn func()) { w.atLane(l.timeouts, t, fn) }
	}
	schedule(limit, func() {
		if t.finished {
			return
		}
		if gaveUp {
			l.end(t, errCallerGaveUp, true)
		} else {
			l.end(t, l.timeoutErr(tmo), false)
		}
	})
	l.send(t)
}

// timeoutErr returns the error of an attempt cut short after d, the one a
// timeout policy returns; one value per limit, as the policy shares it too.
func (l *layer) timeoutErr(d time.Duration) error {
	if e, ok := l.timeoutErrs[d]; ok {
		return e
	}
	if l.timeoutErrs == nil {
		l.timeoutErrs = map[time.Duration]error{}
	}
	e := &timeout.Error{Limit: d, Err: context.DeadlineExceeded}
	l.timeoutErrs[d] = e
	return e
}

// reply delivers the answer to an attempt; an answer to an attempt its
// client has given up on is work the server did for nothing.
func (l *layer) reply(t *try, err error) {
	if t.finished {
		if l.bottom {
			l.rec.wasted++
		}
		return
	}
	if err != nil {
		t.c.lastAnswer = err
	}
	l.end(t, err, false)
}

// end finishes attempt t with err: it returns the bulkhead permit, reports
// the outcome to the breaker, and lets the retry policy decide. gaveUp says
// the caller's own deadline ended it (its context is done).
func (l *layer) end(t *try, err error, gaveUp bool) {
	t.finished = true
	c, in, w := t.c, t.c.in, l.w
	if t.bulk {
		t.bulk = false
		l.release(in)
	}
	ctx := context.Background()
	if gaveUp {
		ctx = l.gaveUp
	}
	if in.br != nil {
		t.permit.DoneAt(w.time(), in.br.Outcome(ctx, err), time.Duration(w.now-t.allowedAt))
	}
	l.decide(c, ctx, err)
}

// decide hands the end of an attempt to the retry policy's Call, which
// decides as the executor does (retry.(*Retry).Execute runs every call
// through one): the call ends, or the next attempt starts after the wait —
// unless the caller's deadline comes first.
func (l *layer) decide(c *call, ctx context.Context, err error) {
	w, in := l.w, c.in
	if in.rt == nil {
		l.finish(c, err)
		return
	}
	if err == nil {
		c.rc.SucceededAt(w.time())
		l.finish(c, nil)
		return
	}
	wait, final := c.rc.FailedAt(ctx, w.time(), err)
	if final != nil {
		if _, refused := final.(*retry.BudgetError); refused {
			l.rec.budgetRefused++
		}
		l.finish(c, final)
		return
	}
	if w.now+int64(wait) >= c.deadline {
		// The caller's deadline ends the wait.
		w.at(c.deadline, func() { l.finish(c, c.rc.CanceledAt(w.time(), errCallerGaveUp)) })
		return
	}
	w.after(wait, func() { l.attempt(c) })
}

func (l *layer) finish(c *call, err error) {
	if c.finished {
		return
	}
	c.finished = true
	c.done(c, err)
}
