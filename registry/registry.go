// Package registry holds the named instances of every policy — breakers,
// bulkheads, rate limiters, retry policies, timeouts, fallbacks, caches — so
// that the health monitor, the metrics collector, the YAML loader and the
// admin API can find them and read their statistics.
//
// A Registry is an ordinary value: nothing is global, and two registries in
// one process never see each other's instances. Get-or-create methods take a
// name and a config; the first call builds the instance, later calls return
// it. Keyed families (one breaker per upstream host, one limiter per tenant)
// build instances on demand from a template and bound their number.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// ErrExists is returned by the Add methods when the name is already taken.
var ErrExists = errors.New("registry: name already registered")

// Config configures a Registry. The zero value is ready to use.
type Config struct {
	// Clock is given to every instance the registry builds whose config
	// leaves its Clock nil. If nil, the system clock.
	Clock sluice.Clock
}

// FallbackStats is what the registry needs of a fallback of any result type.
type FallbackStats interface {
	Name() string
	Stats() fallback.Stats
}

// CacheStats is what the registry needs of a cache of any value type.
type CacheStats interface {
	Name() string
	Stats() cache.Stats
}

// Registry holds named policy instances. It is safe for concurrent use.
type Registry struct {
	clock sluice.Clock

	breakers  family[*breaker.Breaker, breaker.Config]
	bulkheads family[*bulkhead.Bulkhead, bulkhead.Config]
	limiters  family[*ratelimit.TokenBucket, ratelimit.Config]
	retries   family[*retry.Retry, retry.Config]
	timeouts  family[*timeout.Timeout, timeout.Config]

	mu        sync.Mutex
	fallbacks map[string]FallbackStats
	caches    map[string]CacheStats
	keyed     map[string]keyedFamily
}

// keyedFamily is what the registry needs of a Keyed family of any type.
type keyedFamily interface {
	forEach(func(name string, v any))
	closeAll()
}

// New returns an empty Registry.
func New(cfg Config) *Registry {
	r := &Registry{
		clock:     cfg.Clock,
		fallbacks: map[string]FallbackStats{},
		caches:    map[string]CacheStats{},
		keyed:     map[string]keyedFamily{},
	}
	r.breakers = newFamily("breaker",
		func(c breaker.Config) (*breaker.Breaker, error) { c.Clock = r.clockOr(c.Clock); return breaker.New(c) },
		func(b *breaker.Breaker, c breaker.Config) error { c.Clock = r.clockOr(c.Clock); return b.Update(c) })
	r.bulkheads = newFamily("bulkhead",
		func(c bulkhead.Config) (*bulkhead.Bulkhead, error) {
			c.Clock = r.clockOr(c.Clock)
			return bulkhead.New(c)
		},
		func(b *bulkhead.Bulkhead, c bulkhead.Config) error { c.Clock = r.clockOr(c.Clock); return b.Update(c) })
	r.limiters = newFamily("rate limiter",
		func(c ratelimit.Config) (*ratelimit.TokenBucket, error) {
			c.Clock = r.clockOr(c.Clock)
			return ratelimit.New(c)
		},
		func(l *ratelimit.TokenBucket, c ratelimit.Config) error {
			c.Clock = r.clockOr(c.Clock)
			return l.Update(c)
		})
	r.retries = newFamily("retry",
		func(c retry.Config) (*retry.Retry, error) { c.Clock = r.clockOr(c.Clock); return retry.New(c) },
		func(x *retry.Retry, c retry.Config) error { c.Clock = r.clockOr(c.Clock); return x.Update(c) })
	r.timeouts = newFamily("timeout",
		timeout.New, nil)
	return r
}

// clockOr returns c, or the registry's clock when c is nil.
func (r *Registry) clockOr(c sluice.Clock) sluice.Clock {
	if c == nil {
		return r.clock
	}
	return c
}

// Clock returns the registry's clock (nil means the system clock).
func (r *Registry) Clock() sluice.Clock { return r.clock }

// Breaker returns the breaker named name, building it from cfg (with
// cfg.Name set to name) on first use. Later calls return the same instance
// and ignore cfg; use SetBreaker to change a running breaker.
func (r *Registry) Breaker(name string, cfg breaker.Config) (*breaker.Breaker, error) {
	cfg.Name = name
	return r.breakers.get(name, cfg)
}

// SetBreaker builds the named breaker from cfg, or applies cfg to the
// running one, keeping its state (an open breaker stays open).
func (r *Registry) SetBreaker(name string, cfg breaker.Config) (*breaker.Breaker, error) {
	cfg.Name = name
	return r.breakers.set(name, cfg)
}

// Bulkhead returns the named bulkhead, building it from cfg on first use.
func (r *Registry) Bulkhead(name string, cfg bulkhead.Config) (*bulkhead.Bulkhead, error) {
	cfg.Name = name
	return r.bulkheads.get(name, cfg)
}

// SetBulkhead builds the named bulkhead or applies cfg to the running one,
// keeping its permits.
func (r *Registry) SetBulkhead(name string, cfg bulkhead.Config) (*bulkhead.Bulkhead, error) {
	cfg.Name = name
	return r.bulkheads.set(name, cfg)
}

// Limiter returns the named token-bucket limiter, building it from cfg on
// first use.
func (r *Registry) Limiter(name string, cfg ratelimit.Config) (*ratelimit.TokenBucket, error) {
	cfg.Name = name
	return r.limiters.get(name, cfg)
}

// SetLimiter builds the named limiter or applies cfg to the running one.
func (r *Registry) SetLimiter(name string, cfg ratelimit.Config) (*ratelimit.TokenBucket, error) {
	cfg.Name = name
	return r.limiters.set(name, cfg)
}

// Retry returns the named retry policy, building it from cfg on first use.
func (r *Registry) Retry(name string, cfg retry.Config) (*retry.Retry, error) {
	cfg.Name = name
	return r.retries.get(name, cfg)
}

// SetRetry builds the named retry policy or applies cfg to the running one,
// keeping its statistics.
func (r *Registry) SetRetry(name string, cfg retry.Config) (*retry.Retry, error) {
	cfg.Name = name
	return r.retries.set(name, cfg)
}

// Timeout returns the named timeout, building it from cfg on first use.
func (r *Registry) Timeout(name string, cfg timeout.Config) (*timeout.Timeout, error) {
	cfg.Name = name
	return r.timeouts.get(name, cfg)
}

// SetTimeout builds the named timeout from cfg, or returns the running one
// when its limit is unchanged. A Timeout holds no state but its counters, so
// a changed limit replaces the instance (pipelines built with the old one
// keep it until they are rebuilt).
func (r *Registry) SetTimeout(name string, cfg timeout.Config) (*timeout.Timeout, error) {
	cfg.Name = name
	if t, ok := r.timeouts.lookup(name); ok && t.Limit() == cfg.Timeout {
		return t, nil
	}
	return r.timeouts.set(name, cfg)
}

// AddBreaker registers a breaker built elsewhere under its own name.
func (r *Registry) AddBreaker(b *breaker.Breaker) error { return r.breakers.add(b.Name(), b) }

// AddBulkhead registers a bulkhead built elsewhere under its own name.
func (r *Registry) AddBulkhead(b *bulkhead.Bulkhead) error { return r.bulkheads.add(b.Name(), b) }

// AddLimiter registers a limiter built elsewhere under its own name.
func (r *Registry) AddLimiter(l *ratelimit.TokenBucket) error { return r.limiters.add(l.Name(), l) }

// AddRetry registers a retry policy built elsewhere under its own name.
func (r *Registry) AddRetry(x *retry.Retry) error { return r.retries.add(x.Name(), x) }

// AddTimeout registers a timeout built elsewhere under its own name.
func (r *Registry) AddTimeout(t *timeout.Timeout) error { return r.timeouts.add(t.Name(), t) }

// AddFallback registers a fallback (of any result type) for statistics.
func (r *Registry) AddFallback(f FallbackStats) error {
	return addNamed(&r.mu, r.fallbacks, f.Name(), f)
}

// AddCache registers a cache (of any value type) for statistics.
func (r *Registry) AddCache(c CacheStats) error {
	return addNamed(&r.mu, r.caches, c.Name(), c)
}

func addNamed[T any](mu *sync.Mutex, m map[string]T, name string, v T) error {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := m[name]; ok {
		return fmt.Errorf("%w: %q", ErrExists, name)
	}
	m[name] = v
	return nil
}

// LookupBreaker returns the named breaker, if registered.
func (r *Registry) LookupBreaker(name string) (*breaker.Breaker, bool) {
	return r.breakers.lookup(name)
}

// LookupBulkhead returns the named bulkhead, if registered.
func (r *Registry) LookupBulkhead(name string) (*bulkhead.Bulkhead, bool) {
	return r.bulkheads.lookup(name)
}

// LookupLimiter returns the named limiter, if registered.
func (r *Registry) LookupLimiter(name string) (*ratelimit.TokenBucket, bool) {
	return r.limiters.lookup(name)
}

// LookupRetry returns the named retry policy, if registered.
func (r *Registry) LookupRetry(name string) (*retry.Retry, bool) { return r.retries.lookup(name) }

// RemoveBreaker forgets the named breaker and stops its timer.
func (r *Registry) RemoveBreaker(name string) {
	if b, ok := r.breakers.remove(name); ok {
		b.Close()
	}
}

// RemoveBulkhead forgets the named bulkhead; calls holding its permits
// finish normally.
func (r *Registry) RemoveBulkhead(name string) { r.bulkheads.remove(name) }

// RemoveLimiter forgets the named limiter.
func (r *Registry) RemoveLimiter(name string) { r.limiters.remove(name) }

// RemoveRetry forgets the named retry policy.
func (r *Registry) RemoveRetry(name string) { r.retries.remove(name) }

// RemoveTimeout forgets the named timeout.
func (r *Registry) RemoveTimeout(name string) { r.timeouts.remove(name) }

// Close releases what the registry's instances hold (the breakers' timers).
// The instances keep working; only transitions that happen without traffic
// stop being announced.
func (r *Registry) Close() error {
	for _, b := range r.breakers.all() {
		b.Close()
	}
	r.mu.Lock()
	fams := make([]keyedFamily, 0, len(r.keyed))
	for _, k := range r.keyed {
		fams = append(fams, k)
	}
	r.mu.Unlock()
	for _, k := range fams {
		k.closeAll()
	}
	return nil
}

// family is a name → instance map with get-or-create and update-in-place.
type family[T any, C any] struct {
	kind   string
	mu     sync.Mutex
	m      map[string]T
	build  func(C) (T, error)
	update func(T, C) error
}

func newFamily[T any, C any](kind string, build func(C) (T, error), update func(T, C) error) family[T, C] {
	return family[T, C]{kind: kind, m: map[string]T{}, build: build, update: update}
}

func (f *family[T, C]) get(name string, cfg C) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.m[name]; ok {
		return v, nil
	}
	v, err := f.build(cfg)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("registry: %s %q: %w", f.kind, name, err)
	}
	f.m[name] = v
	return v, nil
}

func (f *family[T, C]) set(name string, cfg C) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.m[name]; ok && f.update != nil {
		if err := f.update(v, cfg); err != nil {
			var zero T
			return zero, fmt.Errorf("registry: %s %q: %w", f.kind, name, err)
		}
		return v, nil
	}
	v, err := f.build(cfg)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("registry: %s %q: %w", f.kind, name, err)
	}
	f.m[name] = v
	return v, nil
}

func (f *family[T, C]) add(name string, v T) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[name]; ok {
		return fmt.Errorf("%w: %s %q", ErrExists, f.kind, name)
	}
	f.m[name] = v
	return nil
}

func (f *family[T, C]) lookup(name string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[name]
	return v, ok
}

func (f *family[T, C]) remove(name string) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[name]
	delete(f.m, name)
	return v, ok
}

// names returns the sorted names.
func (f *family[T, C]) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.m))
	for k := range f.m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// all returns the instances sorted by name.
func (f *family[T, C]) all() []T {
	names := f.names()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]T, 0, len(names))
	for _, n := range names {
		if v, ok := f.m[n]; ok {
			out = append(out, v)
		}
	}
	return out
}
