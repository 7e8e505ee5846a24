package registry

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
)

// KeyedConfig bounds a keyed family.
type KeyedConfig struct {
	// MaxKeys is the most instances the family holds. When a new key would
	// exceed it, the least recently used instance is evicted first, so
	// high-cardinality keys cannot grow memory without limit. If zero, 1024.
	MaxKeys int
	// IdleTTL evicts instances not used for this long, on the next insert
	// or Sweep. If zero, instances are evicted only to make room.
	IdleTTL time.Duration
	// Evictable, if set, is asked before an instance is evicted to make room
	// or for idleness; returning false keeps it (an open breaker remembers an
	// outage that a fresh one would forget). When every candidate refuses,
	// the least recently used is evicted anyway to honour MaxKeys.
	Evictable func(key string, v any) bool
}

// Keyed is a family of instances of one policy, one per key, built on demand
// from a template. Get is lock-free for keys already present.
type Keyed[T any] struct {
	name  string
	cfg   KeyedConfig
	clock sluice.Clock
	build func(key string) (T, error)
	close func(T)

	sys   bool      // clock is the system clock: read the cheaper monotonic clock
	epoch time.Time // origin of used times when sys

	m     sync.Map // key → *keyedEntry[T]
	count atomic.Int64
	mu    sync.Mutex // serialises inserts and evictions
	evict atomic.Int64
}

type keyedEntry[T any] struct {
	v    T
	used atomic.Int64 // last use, whole seconds on the family's clock: coarse so that hot keys rarely write
}

// ErrKeyedBuild wraps the error of building a keyed instance.
var ErrKeyedBuild = errors.New("registry: building keyed instance")

func newKeyed[T any](name string, cfg KeyedConfig, clock sluice.Clock, build func(key string) (T, error), closeFn func(T)) *Keyed[T] {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 1024
	}
	return &Keyed[T]{name: name, cfg: cfg, clock: sluice.ClockOr(clock), sys: clock == nil, epoch: time.Now(),
		build: build, close: closeFn}
}

// seconds returns the family's coarse time. With the system clock it reads
// only the monotonic clock (time.Since), which costs a fraction of time.Now
// on every Get.
func (k *Keyed[T]) seconds(now time.Time) int64 {
	if k.sys {
		return int64(time.Since(k.epoch) / time.Second)
	}
	return now.Unix()
}

func (k *Keyed[T]) nowSeconds() int64 {
	if k.sys {
		return int64(time.Since(k.epoch) / time.Second)
	}
	return k.clock.Now().Unix()
}

// Name returns the family's name; its instances are named name/key.
func (k *Keyed[T]) Name() string { return k.name }

// Get returns the instance for key, building it on first use.
func (k *Keyed[T]) Get(key string) (T, error) {
	if e, ok := k.m.Load(key); ok {
		ke := e.(*keyedEntry[T])
		k.touch(ke)
		return ke.v, nil
	}
	return k.insert(key)
}

func (k *Keyed[T]) touch(e *keyedEntry[T]) {
	now := k.nowSeconds()
	if e.used.Load() != now {
		e.used.Store(now)
	}
}

func (k *Keyed[T]) insert(key string) (T, error) {
	k.mu.Lock()
	if e, ok := k.m.Load(key); ok {
		k.mu.Unlock()
		return e.(*keyedEntry[T]).v, nil
	}
	var victims []T
	now := k.clock.Now()
	victims = append(victims, k.sweepLocked(now)...)
	for k.count.Load() >= int64(k.cfg.MaxKeys) {
		v, ok := k.evictOneLocked()
		if !ok {
			break
		}
		victims = append(victims, v)
	}
	v, err := k.build(key)
	if err != nil {
		k.mu.Unlock()
		k.closeAll(victims)
		var zero T
		return zero, fmt.Errorf("%w %s/%s: %w", ErrKeyedBuild, k.name, key, err)
	}
	e := &keyedEntry[T]{v: v}
	e.used.Store(k.seconds(now))
	k.m.Store(key, e)
	k.count.Add(1)
	k.mu.Unlock()
	k.closeAll(victims)
	return v, nil
}

func (k *Keyed[T]) closeAll(vs []T) {
	if k.close == nil {
		return
	}
	for _, v := range vs {
		k.close(v)
	}
}

// sweepLocked removes idle entries.
func (k *Keyed[T]) sweepLocked(now time.Time) []T {
	if k.cfg.IdleTTL <= 0 {
		return nil
	}
	cutoff := k.seconds(now) - int64(k.cfg.IdleTTL/time.Second)
	var out []T
	k.m.Range(func(key, e any) bool {
		ke := e.(*keyedEntry[T])
		if ke.used.Load() < cutoff && k.evictable(key.(string), ke.v) {
			k.m.Delete(key)
			k.count.Add(-1)
			k.evict.Add(1)
			out = append(out, ke.v)
		}
		return true
	})
	return out
}

func (k *Keyed[T]) evictable(key string, v T) bool {
	return k.cfg.Evictable == nil || k.cfg.Evictable(key, v)
}

// evictOneLocked removes the least recently used entry, preferring ones the
// Evictable hook accepts.
func (k *Keyed[T]) evictOneLocked() (T, bool) {
	var (
		bestKey, anyKey   any
		bestUsed, anyUsed int64 = 1<<63 - 1, 1<<63 - 1
	)
	k.m.Range(func(key, e any) bool {
		ke := e.(*keyedEntry[T])
		u := ke.used.Load()
		if u < anyUsed {
			anyKey, anyUsed = key, u
		}
		if u < bestUsed && k.evictable(key.(string), ke.v) {
			bestKey, bestUsed = key, u
		}
		return true
	})
	if bestKey == nil {
		bestKey = anyKey
	}
	if bestKey == nil {
		var zero T
		return zero, false
	}
	e, _ := k.m.LoadAndDelete(bestKey)
	k.count.Add(-1)
	k.evict.Add(1)
	return e.(*keyedEntry[T]).v, true
}

// Sweep evicts instances idle for longer than IdleTTL.
func (k *Keyed[T]) Sweep() int {
	k.mu.Lock()
	vs := k.sweepLocked(k.clock.Now())
	k.mu.Unlock()
	k.closeAll(vs)
	return len(vs)
}

// Len returns the number of instances held.
func (k *Keyed[T]) Len() int { return int(k.count.Load()) }

// Evictions returns the number of instances evicted so far.
func (k *Keyed[T]) Evictions() int64 { return k.evict.Load() }

// Each calls fn for every instance, in no particular order.
func (k *Keyed[T]) Each(fn func(key string, v T)) {
	k.m.Range(func(key, e any) bool {
		fn(key.(string), e.(*keyedEntry[T]).v)
		return true
	})
}

func (k *Keyed[T]) forEach(fn func(name string, v any)) {
	k.Each(func(key string, v T) { fn(k.name+"/"+key, v) })
}

func (k *Keyed[T]) closeAllEntries() {
	var vs []T
	k.mu.Lock()
	k.m.Range(func(key, e any) bool {
		vs = append(vs, e.(*keyedEntry[T]).v)
		return true
	})
	k.mu.Unlock()
	k.closeAll(vs)
}

type keyedAdapter[T any] struct{ *Keyed[T] }

func (a keyedAdapter[T]) closeAll() { a.closeAllEntries() }

func registerKeyed[T any](r *Registry, k *Keyed[T]) error {
	return addNamed(&r.mu, r.keyed, k.name, keyedFamily(keyedAdapter[T]{k}))
}

// KeyedBreakers returns a family of breakers, one per key, each built from
// tmpl with Name set to name/key. The family is registered under name, so its
// instances appear in Snapshot.
func (r *Registry) KeyedBreakers(name string, tmpl breaker.Config, cfg KeyedConfig) (*Keyed[*breaker.Breaker], error) {
	if tmpl.Clock == nil {
		tmpl.Clock = r.clock
	}
	probe := tmpl
	probe.Name = name
	b, err := breaker.New(probe) // validates the template once, up front
	if err != nil {
		return nil, fmt.Errorf("registry: keyed breakers %q: %w", name, err)
	}
	b.Close()
	k := newKeyed(name, cfg, r.clock, func(key string) (*breaker.Breaker, error) {
		c := tmpl
		c.Name = name + "/" + key
		return breaker.New(c)
	}, func(b *breaker.Breaker) { b.Close() })
	return k, registerKeyed(r, k)
}

// KeyedLimiters returns a family of token-bucket limiters, one per key (one
// per tenant, say), each built from tmpl.
func (r *Registry) KeyedLimiters(name string, tmpl ratelimit.Config, cfg KeyedConfig) (*Keyed[*ratelimit.TokenBucket], error) {
	if tmpl.Clock == nil {
		tmpl.Clock = r.clock
	}
	probe := tmpl
	probe.Name = name
	if _, err := ratelimit.New(probe); err != nil {
		return nil, fmt.Errorf("registry: keyed limiters %q: %w", name, err)
	}
	k := newKeyed(name, cfg, r.clock, func(key string) (*ratelimit.TokenBucket, error) {
		c := tmpl
		c.Name = name + "/" + key
		return ratelimit.New(c)
	}, nil)
	return k, registerKeyed(r, k)
}

// KeyedBulkheads returns a family of bulkheads, one per key, each built from
// tmpl.
func (r *Registry) KeyedBulkheads(name string, tmpl bulkhead.Config, cfg KeyedConfig) (*Keyed[*bulkhead.Bulkhead], error) {
	if tmpl.Clock == nil {
		tmpl.Clock = r.clock
	}
	probe := tmpl
	probe.Name = name
	if _, err := bulkhead.New(probe); err != nil {
		return nil, fmt.Errorf("registry: keyed bulkheads %q: %w", name, err)
	}
	k := newKeyed(name, cfg, r.clock, func(key string) (*bulkhead.Bulkhead, error) {
		c := tmpl
		c.Name = name + "/" + key
		return bulkhead.New(c)
	}, nil)
	return k, registerKeyed(r, k)
}
