package dlq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
)

// Handler replays one message: it sends the work to its target again. A nil
// error means the work is done and the message is deleted; an error is a
// failed replay. The handler gets its own copy of the message.
type Handler func(ctx context.Context, m Message) error

// ReplayerConfig configures a Replayer. The zero value is valid: the system
// clock, always healthy, backoff from 1s doubling to 5m, park after 10
// failed replays, 4 replays at a time.
type ReplayerConfig struct {
	// Clock is read for due times and waits. If nil, the system clock.
	Clock sluice.Clock

	// Gate reports whether the target is healthy enough to replay to (for
	// example, that its breaker is closed). It is called before each
	// claim and each on-demand replay, never under a lock. If nil, the
	// target is always healthy.
	Gate func() bool

	// Pipeline, if not nil, runs every handler call (a retry, a timeout,
	// the target's breaker...). A rejection by one of its policies
	// (sluice.ErrRejected) is not a failed replay: the message is handed
	// back, due again after the rejection's RetryAfter or PollInterval.
	Pipeline *sluice.Pipeline

	// Backoff returns how long a message waits after its n-th failed
	// replay (n >= 1) before it is due again. A retry package schedule
	// fits with a closure:
	//
	//	b := retry.Exponential(time.Second, 2, 10*time.Minute)
	//	cfg.Backoff = func(n int) time.Duration { return b.Delay(n, 0, nil) }
	//
	// If nil, min(1s << (n-1), 5m).
	Backoff func(replay int) time.Duration

	// MaxReplays is the number of failed replays after which a message is
	// parked. If zero, 10.
	MaxReplays int

	// Concurrency bounds the handler calls running at once, for Run and
	// on-demand replays together. If zero, 4. With 1, Run replays in due
	// order.
	Concurrency int

	// PollInterval is how often Run looks for due messages when there
	// were none, and rechecks a closed Gate. If zero, 1s.
	PollInterval time.Duration

	// Lease is how long a claimed message is withheld from other claims;
	// if the process dies mid-replay, the message is due again when the
	// lease ends. Make it longer than a handler call can take, or a slow
	// call may see its message replayed twice. If zero, 5m.
	Lease time.Duration

	// OnReplay, if not nil, is called after every replay with its
	// outcome, from the goroutine that ran it, never under a lock.
	OnReplay func(ReplayEvent)
}

const (
	defaultMaxReplays   = 10
	defaultConcurrency  = 4
	defaultPollInterval = time.Second
	defaultLease        = 5 * time.Minute
	defaultBackoffBase  = time.Second
	defaultBackoffCap   = 5 * time.Minute
	listPage            = 100
)

func (c ReplayerConfig) resolve() (ReplayerConfig, error) {
	switch {
	case c.MaxReplays < 0:
		return c, fmt.Errorf("dlq: ReplayerConfig.MaxReplays must be >= 0, got %d", c.MaxReplays)
	case c.Concurrency < 0:
		return c, fmt.Errorf("dlq: ReplayerConfig.Concurrency must be >= 0, got %d", c.Concurrency)
	case c.PollInterval < 0:
		return c, fmt.Errorf("dlq: ReplayerConfig.PollInterval must be >= 0, got %v", c.PollInterval)
	case c.Lease < 0:
		return c, fmt.Errorf("dlq: ReplayerConfig.Lease must be >= 0, got %v", c.Lease)
	}
	c.Clock = sluice.ClockOr(c.Clock)
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.MaxReplays == 0 {
		c.MaxReplays = defaultMaxReplays
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.PollInterval == 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.Lease == 0 {
		c.Lease = defaultLease
	}
	return c, nil
}

func defaultBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 20 { // 1s << 19 is already far past the cap
		return defaultBackoffCap
	}
	return min(defaultBackoffBase<<(n-1), defaultBackoffCap)
}

// Outcome is what a replay did to its message.
type Outcome uint8

const (
	// OutcomeReplayed: the handler succeeded and the message was deleted.
	OutcomeReplayed Outcome = iota + 1
	// OutcomeFailed: the handler failed; the message waits for its backoff
	// (or stays parked, for a parked message replayed on demand).
	OutcomeFailed
	// OutcomeParked: the handler failed for the MaxReplays-th time and the
	// message was parked.
	OutcomeParked
	// OutcomeReleased: the replay did not count — the Replayer was
	// stopping, or a policy of the Pipeline rejected the call — and the
	// message was handed back unchanged.
	OutcomeReleased
)

var outcomeNames = [...]string{"", "replayed", "failed", "parked", "released"}

// String returns "replayed", "failed", "parked", "released", or
// "Outcome(n)".
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// ReplayEvent reports one replay to ReplayerConfig.OnReplay.
type ReplayEvent struct {
	// Message is the message as it was before the replay.
	Message Message
	// Outcome is what the replay did.
	Outcome Outcome
	// Err is the handler's error (nil when replayed), or a store error
	// met while recording the outcome.
	Err error
}

// ReplayerStats are a Replayer's counters since it was made, for the health
// monitor and the metrics collector.
type ReplayerStats struct {
	// Replayed counts messages replayed successfully (and deleted).
	Replayed int64
	// Failed counts failed replays, including those that parked.
	Failed int64
	// Parked counts messages this Replayer parked.
	Parked int64
	// Released counts replays that did not count (stopping, rejected).
	Released int64
	// StoreErrors counts store errors met by Run while claiming.
	StoreErrors int64
	// InFlight is the number of handler calls running now.
	InFlight int64
}

// ReplayResult counts what an on-demand Replay did.
type ReplayResult struct {
	Replayed, Failed, Parked, Released int
	// Skipped counts messages not replayed because a replay of them was
	// already running or they were gone by the time their turn came.
	Skipped int
}

func (r *ReplayResult) add(o Outcome) {
	switch o {
	case OutcomeReplayed:
		r.Replayed++
	case OutcomeFailed:
		r.Failed++
	case OutcomeParked:
		r.Failed++
		r.Parked++
	case OutcomeReleased:
		r.Released++
	}
}

// Filter selects messages for an on-demand Replay.
type Filter struct {
	// State restricts the replay to one state. If zero (StateAny), both
	// ready and parked messages are replayed.
	State State
	// Match, if not nil, selects the messages to replay.
	Match func(Message) bool
	// Limit is the most messages replayed. If zero, no limit.
	Limit int
}

// Replayer drives the messages of one queue through a handler: in the
// background (Run) as they come due, while the gate says the target is
// healthy, and on demand (ReplayOne, Replay, ReplayAll). A message is deleted
// only after the handler succeeded (at-least-once: a crash between the two
// replays it again); a failure sets it back by Backoff; the MaxReplays-th
// failure parks it. It is safe for concurrent use.
type Replayer struct {
	store   Store
	queue   string
	handler Handler
	cfg     ReplayerConfig
	clock   sluice.Clock
	sem     chan struct{} // one token per running handler call

	mu       sync.Mutex
	inflight map[ID]struct{}

	running                                             atomic.Bool
	replayed, failed, parked, released, storeErrs, busy atomic.Int64
}

// NewReplayer returns a Replayer of the given queue of store, replaying with
// h. It fails if store or h is nil, queue is empty, or cfg is invalid.
func NewReplayer(store Store, queue string, h Handler, cfg ReplayerConfig) (*Replayer, error) {
	switch {
	case store == nil:
		return nil, errors.New("dlq: NewReplayer needs a Store, got nil")
	case h == nil:
		return nil, errors.New("dlq: NewReplayer needs a Handler, got nil")
	case queue == "" || len(queue) > MaxQueueName:
		return nil, fmt.Errorf("dlq: NewReplayer needs a queue name of 1 to %d bytes, got %q", MaxQueueName, queue)
	}
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return &Replayer{
		store:    store,
		queue:    queue,
		handler:  h,
		cfg:      c,
		clock:    c.Clock,
		sem:      make(chan struct{}, c.Concurrency),
		inflight: map[ID]struct{}{},
	}, nil
}

// Queue returns the name of the queue the Replayer drives.
func (r *Replayer) Queue() string { return r.queue }

// Stats returns the Replayer's counters.
func (r *Replayer) Stats() ReplayerStats {
	return ReplayerStats{
		Replayed:    r.replayed.Load(),
		Failed:      r.failed.Load(),
		Parked:      r.parked.Load(),
		Released:    r.released.Load(),
		StoreErrors: r.storeErrs.Load(),
		InFlight:    r.busy.Load(),
	}
}

// Snapshot joins the queue's depth and age in the store with the Replayer's
// counters: what the health monitor and the metrics collector read.
type Snapshot struct {
	// Queue is the queue's depth and age as the store reports them.
	Queue QueueStats
	// Replayer is the Replayer's counters.
	Replayer ReplayerStats
}

// Snapshot reads the queue's stats from the store and the Replayer's
// counters. An empty queue has zero QueueStats apart from its name.
func (r *Replayer) Snapshot(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{Queue: QueueStats{Queue: r.queue}, Replayer: r.Stats()}
	all, err := r.store.Stats(ctx)
	if err != nil {
		return snap, err
	}
	for _, q := range all {
		if q.Queue == r.queue {
			snap.Queue = q
		}
	}
	return snap, nil
}

// unhealthyError is ErrUnhealthy with the time to come back; it is also a
// sluice.ErrRejected, as every load-shedding error is.
type unhealthyError struct{ retryAfter time.Duration }

func (e *unhealthyError) Error() string {
	return ErrUnhealthy.Error()
}
func (e *unhealthyError) Unwrap() []error           { return []error{ErrUnhealthy, sluice.ErrRejected} }
func (e *unhealthyError) RetryAfter() time.Duration { return e.retryAfter }

func (r *Replayer) healthy() bool { return r.cfg.Gate == nil || r.cfg.Gate() }

func (r *Replayer) markInflight(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.inflight[id]; dup {
		return false
	}
	r.inflight[id] = struct{}{}
	return true
}

func (r *Replayer) unmarkInflight(id ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, id)
}

// acquire takes a handler token, waiting for one until ctx is done.
func (r *Replayer) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (r *Replayer) releaseToken() { <-r.sem }

// Run replays due messages of the queue until ctx is done, then waits for
// the replays in flight (their handlers see ctx cancelled; a replay stopped
// that way does not count and its message is handed back) and returns nil.
// While the Gate reports the target unhealthy it claims nothing. It returns
// early only if the store is closed or damaged. Only one Run may run at a
// time.
func (r *Replayer) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("dlq: Replayer.Run is already running")
	}
	defer r.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait()
	kick := make(chan struct{}, 1) // a worker finished: tokens are free
	for {
		if ctx.Err() != nil {
			return nil
		}
		more, err := r.claimAndStart(ctx, &wg, kick)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		t := r.clock.NewTimer(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-kick:
			t.Stop()
		case <-t.C():
		}
	}
}

// claimAndStart claims as many due messages as there are free tokens and
// starts a replay of each. It reports whether it filled every free token
// (so more may be due at once).
func (r *Replayer) claimAndStart(ctx context.Context, wg *sync.WaitGroup, kick chan struct{}) (more bool, err error) {
	if !r.healthy() {
		return false, nil
	}
	n := 0
take:
	for n < cap(r.sem) {
		select {
		case r.sem <- struct{}{}:
			n++
		default:
			break take
		}
	}
	if n == 0 {
		return false, nil
	}
	ms, err := r.store.ClaimAt(ctx, r.queue, r.clock.Now(), r.cfg.Lease, n)
	if err != nil {
		for range n {
			r.releaseToken()
		}
		switch {
		case ctx.Err() != nil:
			return false, nil
		case errors.Is(err, ErrClosed) || errors.Is(err, ErrCorrupt):
			return false, err
		}
		r.storeErrs.Add(1)
		return false, nil
	}
	for range n - len(ms) {
		r.releaseToken()
	}
	for _, m := range ms {
		if !r.markInflight(m.ID) { // an on-demand replay has it; it settles the message
			r.releaseToken()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				select {
				case kick <- struct{}{}:
				default:
				}
			}()
			defer r.releaseToken()
			defer r.unmarkInflight(m.ID)
			_, _ = r.replay(ctx, m, true)
		}()
	}
	return len(ms) == n, nil
}

// ReplayOne replays one message of the queue now, in the calling goroutine,
// whatever its state and due time, and returns the handler's error (nil when
// the message was replayed and deleted). It fails with ErrUnhealthy while
// the Gate reports the target unhealthy, ErrBusy if the message is being
// replayed already, and ErrNotFound if it is not in this queue.
func (r *Replayer) ReplayOne(ctx context.Context, id ID) error {
	if !r.healthy() {
		return &unhealthyError{r.cfg.PollInterval}
	}
	if !r.markInflight(id) {
		return fmt.Errorf("%w: %s", ErrBusy, id)
	}
	defer r.unmarkInflight(id)
	m, err := r.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if m.Queue != r.queue {
		return fmt.Errorf("%w: message %s is in queue %q, not %q", ErrNotFound, id, m.Queue, r.queue)
	}
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.releaseToken()
	_, err = r.replay(ctx, m, false)
	return err
}

// ReplayAll replays every message of the queue, ready and parked, now; see
// Replay.
func (r *Replayer) ReplayAll(ctx context.Context) (ReplayResult, error) {
	return r.Replay(ctx, Filter{})
}

// Replay replays the messages of the queue that f selects, oldest first,
// now, whatever their due time, up to Concurrency at a time, and waits for
// them. A failed replay counts as in Run (backoff, parking); a parked
// message that fails stays parked. It stops early, returning what it did
// and the reason, when ctx is done or the Gate reports the target unhealthy
// (ErrUnhealthy). Messages already being replayed are skipped.
func (r *Replayer) Replay(ctx context.Context, f Filter) (ReplayResult, error) {
	var (
		mu  sync.Mutex
		res ReplayResult
		wg  sync.WaitGroup
	)
	count := func(o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		res.add(o)
	}
	finish := func(err error) (ReplayResult, error) {
		wg.Wait()
		return res, err
	}
	started := 0
	after := ID{}
	for {
		page, err := r.store.List(ctx, Query{Queue: r.queue, State: f.State, After: after, Limit: listPage})
		if err != nil {
			return finish(err)
		}
		if len(page) == 0 {
			return finish(nil)
		}
		after = page[len(page)-1].ID
		for _, m := range page {
			if f.Match != nil && !f.Match(m) {
				continue
			}
			if f.Limit > 0 && started >= f.Limit {
				return finish(nil)
			}
			if err := r.acquire(ctx); err != nil {
				return finish(err)
			}
			// Checked with the token held, so that the replays before
			// this one have had their say on the target's health.
			if !r.healthy() {
				r.releaseToken()
				return finish(&unhealthyError{r.cfg.PollInterval})
			}
			if !r.markInflight(m.ID) {
				r.releaseToken()
				mu.Lock()
				res.Skipped++
				mu.Unlock()
				continue
			}
			started++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.releaseToken()
				defer r.unmarkInflight(m.ID)
				// The page is a snapshot: make sure Run has not settled
				// the message since.
				cur, err := r.store.Get(ctx, m.ID)
				if err != nil {
					mu.Lock()
					res.Skipped++
					mu.Unlock()
					return
				}
				o, _ := r.replay(ctx, cur, false)
				count(o)
			}()
		}
	}
}

// replay calls the handler on m and records the outcome in the store.
// claimed says whether m was taken by ClaimAt, whose lease is handed back if
// the replay does not count. A panic in the handler is recorded as a failed
// replay and then re-raised.
func (r *Replayer) replay(ctx context.Context, m Message, claimed bool) (outcome Outcome, err error) {
	r.busy.Add(1)
	defer r.busy.Add(-1)
	keep := context.WithoutCancel(ctx) // bookkeeping must land even when stopping
	defer func() {
		if p := recover(); p != nil {
			_, _ = r.fail(keep, m, fmt.Errorf("dlq: handler panicked: %v", p))
			panic(p)
		}
	}()
	err = r.cfg.Pipeline.Do(ctx, func(ctx context.Context) error { return r.handler(ctx, m.Clone()) })
	switch {
	case err == nil:
		if derr := r.store.Delete(keep, m.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
			// The work is done but the message stays: it will be replayed
			// again, which at-least-once allows.
			err = fmt.Errorf("dlq: message %s replayed but not deleted: %w", m.ID, derr)
			r.emit(ReplayEvent{Message: m, Outcome: OutcomeReplayed, Err: err})
			r.replayed.Add(1)
			return OutcomeReplayed, err
		}
		r.replayed.Add(1)
		r.emit(ReplayEvent{Message: m, Outcome: OutcomeReplayed})
		return OutcomeReplayed, nil
	case !sluice.Classify(ctx, err).IsFailure() || errors.Is(err, sluice.ErrRejected):
		// Stopping, or a policy refused to try: not the message's fault.
		if claimed {
			at := r.clock.Now()
			if errors.Is(err, sluice.ErrRejected) {
				wait, ok := sluice.RetryAfter(err)
				if !ok || wait <= 0 {
					wait = r.cfg.PollInterval
				}
				at = at.Add(wait)
			}
			if rerr := r.store.Reschedule(keep, m.ID, at); rerr != nil && !errors.Is(rerr, ErrNotFound) {
				err = errors.Join(err, rerr)
			}
		}
		r.released.Add(1)
		r.emit(ReplayEvent{Message: m, Outcome: OutcomeReleased, Err: err})
		return OutcomeReleased, err
	}
	return r.fail(keep, m, err)
}

// fail records a failed replay of m: backoff, or parking at MaxReplays.
func (r *Replayer) fail(ctx context.Context, m Message, herr error) (Outcome, error) {
	now := r.clock.Now()
	replays := m.Replays + 1
	park := m.State == StateParked || replays >= r.cfg.MaxReplays
	f := ReplayFailure{At: now, Error: herr.Error(), NextReplay: now.Add(r.cfg.Backoff(replays)), Park: park}
	err := herr
	if ferr := r.store.Fail(ctx, m.ID, f); ferr != nil && !errors.Is(ferr, ErrNotFound) {
		err = errors.Join(herr, fmt.Errorf("dlq: recording the failed replay of %s: %w", m.ID, ferr))
	}
	r.failed.Add(1)
	o := OutcomeFailed
	if park && m.State != StateParked {
		o = OutcomeParked
		r.parked.Add(1)
	}
	r.emit(ReplayEvent{Message: m, Outcome: o, Err: err})
	return o, err
}

func (r *Replayer) emit(e ReplayEvent) {
	if r.cfg.OnReplay != nil {
		r.cfg.OnReplay(e)
	}
}
