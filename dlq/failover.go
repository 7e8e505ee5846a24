package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
)

// Importer is a Store that can store a message with the ID it already has,
// which is how a Failover moves messages from its local store to its
// primary without changing their IDs (a crash between the copy and the
// local delete then leaves nothing twice in the primary).
type Importer interface {
	// Import stores m as it is, ID and all fields included. If a message
	// with m.ID is stored already it does nothing and returns nil. It fails
	// as Put does (ErrInvalidMessage, also for the zero ID; ErrTooLarge;
	// ErrQueueFull), storing nothing.
	Import(ctx context.Context, m Message) error
}

// ErrPrimaryDown is matched (errors.Is) by Failover.LastError and by the
// errors of the calls a Failover cannot serve while its primary is
// unreachable (changing a message that only the primary holds, a purge of
// the primary); they wrap the primary's own error.
var ErrPrimaryDown = errors.New("dlq: failover: primary store unreachable")

// FailoverOptions configures a Failover. Primary and Local are required.
type FailoverOptions struct {
	// Primary is the shared store (a Redis store, say) that every instance
	// writes to while it answers. If it implements Importer, migrated
	// messages keep their IDs; otherwise they are put anew (new IDs, and a
	// crash between put and local delete leaves a duplicate).
	Primary Store

	// Local is the store (a Bolt file) that takes the puts while Primary is
	// unreachable, until the migrator has moved them to Primary.
	Local Store

	// Unavailable reports whether an error of Primary means it could not
	// be reached (a network error, a timeout), as opposed to an answer
	// (ErrQueueFull, ErrTooLarge, ...). If nil, DefaultUnavailable. A call
	// cut off by Timeout counts as unreachable whatever it says.
	Unavailable func(error) bool

	// Timeout bounds each call to Primary, so that a hung primary costs a
	// put at most Timeout before it goes to Local. If zero, 2s.
	Timeout time.Duration

	// RetryInterval is how long, while Primary is unreachable, the store
	// waits between attempts to reach it again (and to move the local
	// messages). Calls do not try Primary meanwhile. If zero, 1s.
	RetryInterval time.Duration

	// MigrateBatch is how many local messages the migrator lists at a
	// time. If zero, 100.
	MigrateBatch int

	// Clock times RetryInterval. If nil, the system clock.
	Clock sluice.Clock
}

// DefaultUnavailable is the FailoverOptions.Unavailable of a Failover whose
// options name none: every error but the answers a store gives about the
// message or the queue (ErrNotFound, ErrInvalidMessage, ErrTooLarge,
// ErrQueueFull, ErrClosed, ErrCorrupt) and a context's own end.
func DefaultUnavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, answer := range []error{ErrNotFound, ErrInvalidMessage, ErrTooLarge, ErrQueueFull, ErrClosed, ErrCorrupt, context.Canceled} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

// FailoverCounts are what a Failover did since it was made.
type FailoverCounts struct {
	// LocalPuts counts the puts that went to the local store.
	LocalPuts int64
	// Moved counts the messages the migrator moved to the primary.
	Moved int64
}

// Failover is a Store that writes to a shared primary and, while the
// primary cannot be reached, to a local store instead, so that a dead
// Redis does not lose dead letters: a put is answered once one of the two
// has it. While messages are local it is degraded: reads merge both
// stores (only the local one while the primary is unreachable), writes go
// to whichever holds the message, and claims take local messages first so
// that replay goes on. A migrator goroutine retries the primary every
// RetryInterval and, once it answers, moves the local messages there
// (copy, then delete locally), after which the store is back in shared
// mode by itself. Degraded and LastError report it for health and metrics.
//
// The Failover owns both stores: Close closes them.
type Failover struct {
	opt       FailoverOptions
	primary   Store
	local     Store
	importer  Importer // Primary as an Importer, or nil
	unavail   func(error) bool
	clock     sluice.Clock
	localPuts atomic.Int64
	moved     atomic.Int64

	// moving is held exclusively while the migrator moves one message, and
	// shared by every call that reads or writes the local store, so that no
	// call sees a message in neither store or changes a copy being moved.
	moving sync.RWMutex

	mu        sync.Mutex
	down      bool  // the primary failed; calls do not try it until the migrator reaches it
	lastErr   error // the primary's last failure
	mayLocal  bool  // the local store may hold messages
	pending   int   // local puts under way
	gen       int64 // local puts finished
	migrating bool  // the migrator goroutine runs
	closed    bool
	ctx       context.Context // the migrator's, ended by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

var (
	_ Store                  = (*Failover)(nil)
	_ sluice.SharedComponent = (*Failover)(nil)
)

// Defaults of FailoverOptions.
const (
	DefaultFailoverTimeout       = 2 * time.Second
	DefaultFailoverRetryInterval = time.Second
	DefaultFailoverMigrateBatch  = 100
)

// NewFailover returns a Failover over opt.Primary and opt.Local, or an
// error naming the first invalid option. It starts the migrator, which
// first moves whatever the local store holds from an earlier run.
func NewFailover(opt FailoverOptions) (*Failover, error) {
	switch {
	case opt.Primary == nil:
		return nil, errors.New("dlq: FailoverOptions.Primary is required")
	case opt.Local == nil:
		return nil, errors.New("dlq: FailoverOptions.Local is required")
	case opt.Timeout < 0:
		return nil, fmt.Errorf("dlq: FailoverOptions.Timeout must be >= 0, got %v", opt.Timeout)
	case opt.RetryInterval < 0:
		return nil, fmt.Errorf("dlq: FailoverOptions.RetryInterval must be >= 0, got %v", opt.RetryInterval)
	case opt.MigrateBatch < 0:
		return nil, fmt.Errorf("dlq: FailoverOptions.MigrateBatch must be >= 0, got %d", opt.MigrateBatch)
	}
	opt.Timeout = cmp.Or(opt.Timeout, DefaultFailoverTimeout)
	opt.RetryInterval = cmp.Or(opt.RetryInterval, DefaultFailoverRetryInterval)
	opt.MigrateBatch = cmp.Or(opt.MigrateBatch, DefaultFailoverMigrateBatch)
	if opt.Unavailable == nil {
		opt.Unavailable = DefaultUnavailable
	}
	f := &Failover{
		opt: opt, primary: opt.Primary, local: opt.Local,
		unavail: opt.Unavailable, clock: sluice.ClockOr(opt.Clock),
		mayLocal: true,
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.importer, _ = opt.Primary.(Importer)
	f.mu.Lock()
	f.startLocked()
	f.mu.Unlock()
	return f, nil
}

// Options returns the options in force, with defaults applied.
func (f *Failover) Options() FailoverOptions { return f.opt }

// Degraded reports whether the store is not in shared mode: the primary is
// unreachable, or messages put while it was are not all moved to it yet.
// A new Failover is degraded until the migrator's first pass has found the
// local store empty (at once, when it is).
func (f *Failover) Degraded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down || f.mayLocal
}

// LastError returns the primary's last failure (matching ErrPrimaryDown
// and wrapping the primary's error), or nil if there has been none.
func (f *Failover) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// Counts returns how many puts went to the local store and how many
// messages the migrator has moved to the primary.
func (f *Failover) Counts() FailoverCounts {
	return FailoverCounts{LocalPuts: f.localPuts.Load(), Moved: f.moved.Load()}
}

// state returns whether the store is closed, the primary is down and the
// local store may hold messages.
func (f *Failover) state() (closed, down, mayLocal bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed, f.down, f.mayLocal
}

// begin starts a call: the context's error or ErrClosed, else whether the
// primary is down and the local store may hold messages.
func (f *Failover) begin(ctx context.Context) (down, mayLocal bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, false, context.Cause(ctx)
	}
	closed, down, mayLocal := f.state()
	if closed {
		return false, false, ErrClosed
	}
	return down, mayLocal, nil
}

// failed reports whether err (from the primary, in a call on ctx) means
// the primary is unreachable, and if so records it and enters degraded
// mode.
func (f *Failover) failed(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	// The caller's context lives on, so a deadline is Timeout's.
	if !errors.Is(err, context.DeadlineExceeded) && !f.unavail(err) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: no answer within FailoverOptions.Timeout (%v): %w", ErrPrimaryDown, f.opt.Timeout, err)
	} else {
		err = fmt.Errorf("%w: %w", ErrPrimaryDown, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down, f.lastErr = true, err
	f.startLocked()
	return true
}

// downErr is what a call that needs the primary returns while it is down.
func (f *Failover) downErr() error { return f.LastError() }

// onPrimary runs op on the primary with a context bounded by Timeout.
func (f *Failover) onPrimary(ctx context.Context, op func(context.Context) error) error {
	pctx, cancel := context.WithTimeout(ctx, f.opt.Timeout)
	defer cancel()
	return op(pctx)
}

// Put implements Store: into the primary, or into the local store if the
// primary is down or fails to answer within Timeout. It returns once the
// store that took the message has it.
func (f *Failover) Put(ctx context.Context, m Message) (ID, error) {
	down, _, err := f.begin(ctx)
	if err != nil {
		return ID{}, err
	}
	if !down {
		var id ID
		err := f.onPrimary(ctx, func(ctx context.Context) (err error) { id, err = f.primary.Put(ctx, m); return err })
		if !f.failed(ctx, err) {
			return id, err
		}
	}
	return f.putLocal(ctx, m)
}

// putLocal puts m into the local store and tells the migrator.
func (f *Failover) putLocal(ctx context.Context, m Message) (ID, error) {
	f.mu.Lock()
	f.pending++
	f.mayLocal = true
	f.mu.Unlock()
	id, err := f.local.Put(ctx, m)
	f.mu.Lock()
	f.pending--
	f.gen++
	f.startLocked()
	f.mu.Unlock()
	if err == nil {
		f.localPuts.Add(1)
	}
	return id, err
}

// Get implements Store: the primary's copy, else the local one.
func (f *Failover) Get(ctx context.Context, id ID) (Message, error) {
	down, mayLocal, err := f.begin(ctx)
	if err != nil {
		return Message{}, err
	}
	if mayLocal {
		f.moving.RLock()
		defer f.moving.RUnlock()
	}
	if !down {
		var m Message
		err := f.onPrimary(ctx, func(ctx context.Context) (err error) { m, err = f.primary.Get(ctx, id); return err })
		switch {
		case err == nil, errors.Is(err, ErrNotFound) && !mayLocal:
			return m, err
		case !errors.Is(err, ErrNotFound) && !f.failed(ctx, err):
			return m, err
		case !errors.Is(err, ErrNotFound):
			down = true
		}
	}
	m, err := f.local.Get(ctx, id)
	if down && errors.Is(err, ErrNotFound) {
		return m, f.downErr() // it may be in the primary
	}
	return m, err
}

// List implements Store: both stores' messages, merged by ID (only the
// local store's while the primary is unreachable).
func (f *Failover) List(ctx context.Context, q Query) ([]Message, error) {
	down, mayLocal, err := f.begin(ctx)
	if err != nil {
		return nil, err
	}
	if mayLocal {
		f.moving.RLock()
		defer f.moving.RUnlock()
	}
	var shared []Message
	if !down {
		shared, err = f.listPrimary(ctx, q)
		switch {
		case err == nil && !mayLocal:
			return shared, nil
		case err != nil && !f.failed(ctx, err):
			return nil, err
		}
	}
	local, err := f.local.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return mergeByID(shared, local, cmp.Or(q.Limit, DefaultListLimit)), nil
}

func (f *Failover) listPrimary(ctx context.Context, q Query) (ms []Message, err error) {
	err = f.onPrimary(ctx, func(ctx context.Context) error { ms, err = f.primary.List(ctx, q); return err })
	return ms, err
}

// mergeByID merges two lists sorted by ID into the first limit messages,
// a message in both counted once.
func mergeByID(a, b []Message, limit int) []Message {
	out := make([]Message, 0, min(len(a)+len(b), max(limit, 0)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		switch {
		case len(b) == 0 || (len(a) > 0 && cmpID(a[0].ID, b[0].ID) < 0):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || cmpID(a[0].ID, b[0].ID) > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

func cmpID(a, b ID) int { return slices.Compare(a[:], b[:]) }

// write runs op on the store that holds the message: the local one first
// while it may hold messages, then the primary.
func (f *Failover) write(ctx context.Context, op func(context.Context, Store) error) error {
	down, mayLocal, err := f.begin(ctx)
	if err != nil {
		return err
	}
	if mayLocal {
		f.moving.RLock()
		defer f.moving.RUnlock()
		if err := op(ctx, f.local); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if down {
		return f.downErr()
	}
	err = f.onPrimary(ctx, func(ctx context.Context) error { return op(ctx, f.primary) })
	if f.failed(ctx, err) {
		return f.downErr()
	}
	return err
}

// Delete implements Store.
func (f *Failover) Delete(ctx context.Context, id ID) error {
	return f.write(ctx, func(ctx context.Context, s Store) error { return s.Delete(ctx, id) })
}

// Park implements Store.
func (f *Failover) Park(ctx context.Context, id ID) error {
	return f.write(ctx, func(ctx context.Context, s Store) error { return s.Park(ctx, id) })
}

// Reschedule implements Store.
func (f *Failover) Reschedule(ctx context.Context, id ID, at time.Time) error {
	return f.write(ctx, func(ctx context.Context, s Store) error { return s.Reschedule(ctx, id, at) })
}

// Fail implements Store.
func (f *Failover) Fail(ctx context.Context, id ID, fl ReplayFailure) error {
	return f.write(ctx, func(ctx context.Context, s Store) error { return s.Fail(ctx, id, fl) })
}

// ClaimAt implements Store. While the local store may hold messages it
// claims there first, then from the primary for the rest of limit, so
// replay goes on while the primary is away (earliest due first within each
// store, not across the two). A primary that fails is not an error when
// there are local claims to return (they would otherwise wait out their
// lease), nor when it is unreachable: Degraded says why there are no more.
func (f *Failover) ClaimAt(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	down, mayLocal, err := f.begin(ctx)
	if err != nil {
		return nil, err
	}
	var out []Message
	if mayLocal {
		f.moving.RLock()
		defer f.moving.RUnlock()
		if out, err = f.local.ClaimAt(ctx, queue, now, lease, limit); err != nil {
			return nil, err
		}
	}
	if down || len(out) >= limit {
		return out, nil
	}
	var shared []Message
	err = f.onPrimary(ctx, func(ctx context.Context) (err error) {
		shared, err = f.primary.ClaimAt(ctx, queue, now, lease, limit-len(out))
		return err
	})
	if err != nil && !f.failed(ctx, err) && len(out) == 0 {
		return nil, err
	}
	return append(out, shared...), nil
}

// Purge implements Store: both stores. If the primary is unreachable it
// purges the local store, and returns its count with an error saying the
// primary was not purged.
func (f *Failover) Purge(ctx context.Context, pf PurgeFilter) (int, error) {
	down, _, err := f.begin(ctx)
	if err != nil {
		return 0, err
	}
	f.moving.RLock()
	defer f.moving.RUnlock()
	n, err := f.local.Purge(ctx, pf)
	if err != nil {
		return n, err
	}
	if down {
		return n, f.downErr()
	}
	var m int
	err = f.onPrimary(ctx, func(ctx context.Context) (err error) { m, err = f.primary.Purge(ctx, pf); return err })
	if f.failed(ctx, err) {
		return n + m, f.downErr()
	}
	return n + m, err
}

// Stats implements Store: both stores' queues, summed (only the local
// store's while the primary is unreachable).
func (f *Failover) Stats(ctx context.Context) ([]QueueStats, error) {
	down, mayLocal, err := f.begin(ctx)
	if err != nil {
		return nil, err
	}
	var shared []QueueStats
	if !down {
		err := f.onPrimary(ctx, func(ctx context.Context) (err error) { shared, err = f.primary.Stats(ctx); return err })
		if err != nil && !f.failed(ctx, err) {
			return nil, err
		}
		if err == nil && !mayLocal {
			return shared, nil
		}
	}
	local, err := f.local.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return mergeStats(shared, local), nil
}

// mergeStats sums two stores' stats queue by queue.
func mergeStats(a, b []QueueStats) []QueueStats {
	byQueue := map[string]QueueStats{}
	for _, q := range slices.Concat(a, b) {
		s, ok := byQueue[q.Queue]
		if !ok {
			byQueue[q.Queue] = q
			continue
		}
		s.Ready += q.Ready
		s.Parked += q.Parked
		s.Bytes += q.Bytes
		s.OldestReady = earliest(s.OldestReady, q.OldestReady)
		s.OldestParked = earliest(s.OldestParked, q.OldestParked)
		byQueue[q.Queue] = s
	}
	out := make([]QueueStats, 0, len(byQueue))
	for _, q := range byQueue {
		out = append(out, q)
	}
	slices.SortFunc(out, func(x, y QueueStats) int { return cmp.Compare(x.Queue, y.Queue) })
	return out
}

// earliest returns the earlier of two times, a zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Close stops the migrator and closes both stores (local messages stay
// local until the next Failover on the same stores moves them).
func (f *Failover) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.cancel()
	f.mu.Unlock()
	f.wg.Wait()
	return errors.Join(f.primary.Close(), f.local.Close())
}
