package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
	"github.com/sluice-go/sluice/internal/ttlstore"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTTL         = time.Minute
	DefaultMaxEntries  = 10_000
	DefaultCallTimeout = 30 * time.Second
)

// NeverFresh, as Config.TTL, makes every Get call fn (coalesced with the
// concurrent callers of the same key) and keeps values only to answer a
// failed call within Config.StaleIfError. Any negative TTL means the same.
const NeverFresh time.Duration = -1

// ErrCallTimeout is returned by Get when the shared call was still running
// Config.CallTimeout after it started and fn returned a context error. It
// satisfies errors.Is(err, context.DeadlineExceeded), reports Timeout() ==
// true, and so classifies as a timeout: a stale entry may answer it.
var ErrCallTimeout error = callTimeoutError{}

type callTimeoutError struct{}

func (callTimeoutError) Error() string { return "cache: call exceeded Config.CallTimeout" }

// Is makes errors.Is(ErrCallTimeout, context.DeadlineExceeded) hold.
func (callTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout reports true, as a net.Error timeout does.
func (callTimeoutError) Timeout() bool { return true }

// errGoexit is the result a waiter sees when fn called runtime.Goexit.
var errGoexit = errors.New("cache: fn called runtime.Goexit")

// PanicError is what every caller waiting on a call re-panics with when the
// call panicked: fn ran on another goroutine, so the original panic cannot
// unwind into the callers. Policy does not use it: there the pipeline runs
// on its caller's goroutine, so its panic unwinds there as usual, and the
// callers waiting on it start over.
type PanicError struct {
	// Value is the value the call panicked with.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack []byte
}

// Error returns the panic value followed by the stack.
func (p *PanicError) Error() string {
	return fmt.Sprintf("cache: call panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns Value when it is an error, so errors.Is and errors.As see
// through a recovered *PanicError.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// Config configures a Cache. The zero Config is valid: a one-minute TTL, no
// stale serving, 10 000 entries, the system clock.
type Config struct {
	// Name identifies the cache in statistics, logs and a registry. It may be
	// empty.
	Name string

	// TTL is how long a stored value stays fresh: Get returns it without
	// calling fn. If zero, DefaultTTL (one minute). A negative TTL
	// (NeverFresh) means values are never fresh and serve only as
	// stale-if-error answers.
	TTL time.Duration

	// StaleIfError is how long past TTL a value may still be returned when
	// the call that should refresh it fails with an error ServeStale allows.
	// If zero, a failed call's error is always returned. Must not be
	// negative.
	StaleIfError time.Duration

	// MaxEntries bounds the number of entries kept. When a new key needs
	// room, an expired entry or one not read recently is evicted. If zero,
	// DefaultMaxEntries (10 000). Must not be negative.
	MaxEntries int

	// CallTimeout bounds the shared call that Get runs for a key: fn's
	// context is cancelled this long after the call starts, whatever its
	// callers do. If zero, DefaultCallTimeout (30 seconds). Must not be
	// negative. It uses the runtime's timers, not Clock. Policy does not
	// apply it: the pipeline runs under its caller's context and its own
	// timeout policy.
	CallTimeout time.Duration

	// Clock is the source of time for freshness and ages. If nil, the system
	// clock.
	Clock sluice.Clock

	// ServeStale reports whether a failed call's error allows a stale value
	// to be returned instead. ctx is the waiting caller's context. It is
	// called outside every lock, only when a value in its stale window
	// exists, and never when ctx is already done: the caller's own
	// cancellation never serves stale. If nil,
	// sluice.Classify(ctx, err).Failed().
	ServeStale func(ctx context.Context, err error) bool
}

// Outcome says how Get produced its answer.
type Outcome uint8

// The outcomes. Miss is the zero value: the answer (value or error) came
// from a call of fn, this caller's or, with Info.Coalesced, another's.
const (
	Miss  Outcome = iota // fn was called; its result or error is returned
	Hit                  // a fresh value was returned without calling fn
	Stale                // fn failed and a value in its stale window was returned
)

var outcomeNames = [...]string{"miss", "hit", "stale"}

// String returns "miss", "hit" or "stale".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Info describes one Get.
type Info struct {
	// Outcome says whether the answer was a fresh hit, a call's result, or a
	// stale value.
	Outcome Outcome
	// Coalesced reports that the caller waited on a call another caller
	// started, instead of starting one.
	Coalesced bool
	// Age is how old the returned value was (for Hit and Stale): the time
	// since it was stored, as of the lookup for a Hit and as of the failed
	// call's return for Stale. It is zero for a Miss. An HTTP layer sends it
	// as the Age header.
	Age time.Duration
}

// Stats is a snapshot of a Cache's counters since New.
type Stats struct {
	Hits      int64 // Gets answered by a fresh value
	Misses    int64 // calls started (one per coalesced group)
	Coalesced int64 // Gets that waited on another caller's call
	Stale     int64 // Gets answered by a stale value after a failed call
	Evictions int64 // entries removed to make room for another key
	Entries   int   // entries held now, expired ones included until removed
}

// Cache is a bounded TTL cache of values of type T with request coalescing
// and stale-if-error. Most callers want Get, or Policy inside a pipeline
// under sluice.Get. A Cache is safe for concurrent use; the zero Cache is
// not usable: make one with New.
type Cache[T any] struct {
	name        string
	ttl         time.Duration // 0: never fresh
	stale       time.Duration
	keep        bool // ttl+stale > 0: a stored value can ever be returned
	callTimeout time.Duration
	clock       sluice.Clock
	sysClock    bool // Config.Clock was nil: see fresh
	serveStale  func(context.Context, error) bool

	store *ttlstore.Store[T, flights[T]]

	hits      stripe.Counter
	misses    atomic.Int64
	coalesced atomic.Int64
	staleN    atomic.Int64
	evictions atomic.Int64
}

// New returns a Cache configured by cfg, or an error naming the first
// invalid field.
func New[T any](cfg Config) (*Cache[T], error) {
	if cfg.StaleIfError < 0 {
		return nil, fmt.Errorf("cache: Config.StaleIfError must be >= 0, got %v", cfg.StaleIfError)
	}
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("cache: Config.MaxEntries must be >= 0, got %d", cfg.MaxEntries)
	}
	if cfg.CallTimeout < 0 {
		return nil, fmt.Errorf("cache: Config.CallTimeout must be >= 0, got %v", cfg.CallTimeout)
	}
	ttl := cfg.TTL
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0:
		ttl = 0
	}
	stale := min(cfg.StaleIfError, math.MaxInt64-ttl) // so that ttl+stale cannot overflow
	maxEntries := cfg.MaxEntries
	maxEntries = cmp.Or(maxEntries, DefaultMaxEntries)
	callTimeout := cfg.CallTimeout
	callTimeout = cmp.Or(callTimeout, DefaultCallTimeout)
	serveStale := cfg.ServeStale
	if serveStale == nil {
		serveStale = func(ctx context.Context, err error) bool { return sluice.Classify(ctx, err).Failed() }
	}

	c := &Cache[T]{
		name:        cfg.Name,
		ttl:         ttl,
		stale:       stale,
		keep:        ttl+stale > 0,
		callTimeout: callTimeout,
		clock:       sluice.ClockOr(cfg.Clock),
		sysClock:    cfg.Clock == nil,
		serveStale:  serveStale,
		store:       ttlstore.New[T, flights[T]](maxEntries, ttl+stale),
	}
	c.store.Each(func(s *shard[T]) { s.Extra = make(flights[T]) })
	return c, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew[T any](cfg Config) *Cache[T] {
	c, err := New[T](cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// Name returns Config.Name.
func (c *Cache[T]) Name() string { return c.name }

// shard is one lock's worth of the cache: its entries and, under the same
// lock, the calls in flight for its keys.
type shard[T any] = ttlstore.Shard[T, flights[T]]

// flights are the calls in flight, by key.
type flights[T any] = map[string]*flight[T]

func (c *Cache[T]) shardFor(key string) *shard[T] { return c.store.Shard(key) }

// state is the verdict on an entry of a given age.
type state uint8

const (
	stateFresh   state = iota // returned by Get without a call
	stateStale                // returned only when a call fails with an allowed error
	stateExpired              // never returned; removable
)

// stateOf is the whole TTL rule, a pure function of the entry's age.
func (c *Cache[T]) stateOf(age time.Duration) state {
	switch {
	case c.ttl > 0 && age < c.ttl:
		return stateFresh
	case c.stale > 0 && age < c.ttl+c.stale:
		return stateStale
	default:
		return stateExpired
	}
}

// Get returns the value for key: a fresh stored value if there is one;
// otherwise the result of fn, shared with every concurrent Get of key and
// stored on success; or, when fn fails with an error Config.ServeStale
// allows, a value in its stale window. Info says which, and the value's age.
//
// When ctx ends before the answer is ready Get returns context.Cause(ctx) at
// once; the call goes on for the other callers and fills the cache. See the
// package documentation for the context fn runs under. fn must not Get its
// own key from the same Cache: it would wait on itself until CallTimeout.
func (c *Cache[T]) Get(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, Info, error) {
	s := c.shardFor(key)
	if v, age, ok := c.fresh(s, key); ok {
		c.hits.Inc()
		return v, Info{Outcome: Hit, Age: age}, nil
	}
	return c.missAt(ctx, c.clock.Now(), s, key, fn)
}

// getAt is Get with the lookup time given, for tests that drive the core
// with explicit times. The time a call returns is read from the clock when
// it returns.
func (c *Cache[T]) getAt(ctx context.Context, now time.Time, key string, fn func(context.Context) (T, error)) (T, Info, error) {
	s := c.shardFor(key)
	if v, age, ok := c.freshAt(s, key, now); ok {
		c.hits.Inc()
		return v, Info{Outcome: Hit, Age: age}, nil
	}
	return c.missAt(ctx, now, s, key, fn)
}

// missAt is Get after the fast lookup found no fresh value, at time now: it
// joins or starts key's call and waits for its answer.
func (c *Cache[T]) missAt(ctx context.Context, now time.Time, s *shard[T], key string, fn func(context.Context) (T, error)) (T, Info, error) {
	var zero T
	if ctx.Err() != nil {
		// The caller has left already: starting a call for it is waste.
		return zero, Info{}, context.Cause(ctx)
	}
	f, v, age, st := c.join(s, key, now)
	switch st {
	case joinHit:
		c.hits.Inc()
		return v, Info{Outcome: Hit, Age: age}, nil
	case joinLead:
		c.misses.Add(1)
		go c.run(s, key, f, ctx, fn)
	case joinWait:
		c.coalesced.Add(1)
	}
	info := Info{Coalesced: st == joinWait}
	select {
	case <-f.done:
	case <-ctx.Done():
		return zero, info, context.Cause(ctx)
	}
	if f.panicked != nil {
		panic(f.panicked)
	}
	if f.err == nil {
		return f.val, info, nil
	}
	if v, age, ok := c.staleFor(ctx, s, key, f.at, f.err); ok {
		info.Outcome, info.Age = Stale, age
		return v, info, nil
	}
	return zero, info, f.err
}

// fresh returns key's value and age if it is fresh now, by the cache's
// clock. It is the hot path: a read lock, a map lookup, a copy, and no
// allocation. On the system clock it needs no current time: the entry's age
// is time.Since(e.Stored), which reads only the monotonic clock, about half
// the price of time.Now on Linux (on virtual machines where reading the
// clock is slow, most of a hit's cost). Any other Clock is user code, read
// before locking, and the lookup is freshAt at its reading.
func (c *Cache[T]) fresh(s *shard[T], key string) (T, time.Duration, bool) {
	if !c.sysClock {
		return c.freshAt(s, key, c.clock.Now())
	}
	s.RLock()
	e := s.GetLocked(key)
	var a time.Duration
	if e != nil {
		a = time.Since(e.Stored)
	}
	v, ok := c.takeFreshLocked(e, a)
	s.RUnlock()
	return v, max(a, 0), ok
}

// freshAt is fresh at time now.
func (c *Cache[T]) freshAt(s *shard[T], key string, now time.Time) (T, time.Duration, bool) {
	s.RLock()
	e := s.GetLocked(key)
	var a time.Duration
	if e != nil {
		a = now.Sub(e.Stored)
	}
	v, ok := c.takeFreshLocked(e, a)
	s.RUnlock()
	return v, max(a, 0), ok
}

// takeFreshLocked returns e's value, marking it used, when e exists and its
// age a is fresh. The caller holds e's shard lock, at least for reading.
func (c *Cache[T]) takeFreshLocked(e *ttlstore.Entry[T], a time.Duration) (T, bool) {
	if e == nil || c.stateOf(a) != stateFresh {
		var zero T
		return zero, false
	}
	e.Touch()
	return e.Value, true
}

type joinState uint8

const (
	joinHit  joinState = iota // a fresh value appeared meanwhile
	joinLead                  // a new flight was registered: the caller runs it
	joinWait                  // a flight was running: the caller waits on it
)

// join registers the caller with key's flight under the shard's write lock,
// starting a new flight if none is running.
func (c *Cache[T]) join(s *shard[T], key string, now time.Time) (*flight[T], T, time.Duration, joinState) {
	var zero T
	s.Lock()
	defer s.Unlock()
	if e := s.GetLocked(key); e != nil {
		age := now.Sub(e.Stored)
		switch c.stateOf(age) {
		case stateFresh:
			// Stored by a call that finished between freshAt and here.
			e.Touch()
			return nil, e.Value, max(age, 0), joinHit
		case stateExpired:
			s.RemoveLocked(e)
		}
	}
	if f := s.Extra[key]; f != nil {
		return f, zero, 0, joinWait
	}
	f := &flight[T]{done: make(chan struct{})}
	s.Extra[key] = f
	return f, zero, 0, joinLead
}

// staleFor returns key's value if it is within its stale window at the
// failed call's return time at and ServeStale allows err for ctx.
func (c *Cache[T]) staleFor(ctx context.Context, s *shard[T], key string, at time.Time, err error) (T, time.Duration, bool) {
	var zero T
	if c.stale <= 0 || ctx.Err() != nil {
		return zero, 0, false
	}
	s.RLock()
	e := s.GetLocked(key)
	var (
		v   T
		age time.Duration
		ok  bool
	)
	if e != nil {
		age = at.Sub(e.Stored)
		// A fresh value here was put while the call ran; it answers too.
		if c.stateOf(age) != stateExpired {
			v, ok = e.Value, true
			e.Touch()
		}
	}
	s.RUnlock()
	// ServeStale is user code: called with no lock held.
	if !ok || !c.serveStale(ctx, err) {
		return zero, 0, false
	}
	c.staleN.Add(1)
	return v, max(age, 0), true
}

// Peek returns key's value without calling anything or counting a hit: a
// fresh value with Outcome Hit, or a value in its stale window with Outcome
// Stale, and its age. It reports false when key holds neither.
func (c *Cache[T]) Peek(key string) (T, Info, bool) {
	return c.peekAt(key, c.clock.Now())
}

func (c *Cache[T]) peekAt(key string, now time.Time) (T, Info, bool) {
	s := c.shardFor(key)
	s.RLock()
	defer s.RUnlock()
	var zero T
	e := s.GetLocked(key)
	if e == nil {
		return zero, Info{}, false
	}
	age := now.Sub(e.Stored)
	switch c.stateOf(age) {
	case stateFresh:
		return e.Value, Info{Outcome: Hit, Age: max(age, 0)}, true
	case stateStale:
		return e.Value, Info{Outcome: Stale, Age: max(age, 0)}, true
	}
	return zero, Info{}, false
}

// Put stores v under key as of now, as a successful call would. A call
// running for key when Put is made still stores its own result when it
// returns.
func (c *Cache[T]) Put(key string, v T) {
	c.putAt(key, v, c.clock.Now())
}

func (c *Cache[T]) putAt(key string, v T, now time.Time) {
	if !c.keep {
		return
	}
	s := c.shardFor(key)
	s.Lock()
	evicted := s.PutAtLocked(key, v, now)
	s.Unlock()
	if evicted {
		c.evictions.Add(1)
	}
}

// Delete removes key's value and forgets a call running for key: that call's
// callers still get its result, but it is not stored, and the next Get starts
// a new call. Use it to invalidate a key whose data changed. Delete reports
// whether a value was removed.
func (c *Cache[T]) Delete(key string) bool {
	s := c.shardFor(key)
	s.Lock()
	defer s.Unlock()
	if f := s.Extra[key]; f != nil {
		f.forgotten = true
		delete(s.Extra, key)
	}
	e := s.GetLocked(key)
	if e == nil {
		return false
	}
	s.RemoveLocked(e)
	return true
}

// Purge removes every value and forgets every running call, as Delete does
// for one key.
func (c *Cache[T]) Purge() {
	c.store.Each(func(s *shard[T]) {
		s.Lock()
		for _, f := range s.Extra {
			f.forgotten = true
		}
		clear(s.Extra)
		s.ResetLocked()
		s.Unlock()
	})
}

// Len returns the number of entries held, expired ones included until they
// are removed.
func (c *Cache[T]) Len() int { return c.store.Len() }

// Stats returns a snapshot of the cache's counters. The counters are read one
// by one, not atomically together.
func (c *Cache[T]) Stats() Stats {
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Coalesced: c.coalesced.Load(),
		Stale:     c.staleN.Load(),
		Evictions: c.evictions.Load(),
		Entries:   c.Len(),
	}
}
