package registry

import (
	"slices"
	"strings"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// Snapshot is the statistics of every instance in a Registry at one moment,
// each list sorted by name. Keyed instances appear as family/key.
type Snapshot struct {
	Taken     time.Time
	Breakers  []Named[breaker.Stats]
	Bulkheads []Named[bulkhead.Stats]
	Limiters  []Named[ratelimit.Stats]
	Retries   []Named[retry.Stats]
	Timeouts  []Named[timeout.Stats]
	Fallbacks []Named[fallback.Stats]
	Caches    []Named[cache.Stats]
}

// Named pairs an instance's name with its statistics.
type Named[S any] struct {
	Name  string
	Stats S
}

// Snapshot reads the statistics of every registered instance. It takes each
// family's lock only long enough to list it; the instances' own Stats
// methods read their atomic counters.
func (r *Registry) Snapshot() Snapshot {
	s := Snapshot{Taken: clockNow(r)}
	for _, b := range r.breakers.all() {
		s.Breakers = append(s.Breakers, Named[breaker.Stats]{b.Name(), b.Stats()})
	}
	for _, b := range r.bulkheads.all() {
		s.Bulkheads = append(s.Bulkheads, Named[bulkhead.Stats]{b.Name(), b.Stats()})
	}
	for _, l := range r.limiters.all() {
		s.Limiters = append(s.Limiters, Named[ratelimit.Stats]{l.Name(), l.Stats()})
	}
	for _, x := range r.retries.all() {
		s.Retries = append(s.Retries, Named[retry.Stats]{x.Name(), x.Stats()})
	}
	for _, t := range r.timeouts.all() {
		s.Timeouts = append(s.Timeouts, Named[timeout.Stats]{t.Name(), t.Stats()})
	}

	r.mu.Lock()
	fbs := make([]FallbackStats, 0, len(r.fallbacks))
	for _, f := range r.fallbacks {
		fbs = append(fbs, f)
	}
	cs := make([]CacheStats, 0, len(r.caches))
	for _, c := range r.caches {
		cs = append(cs, c)
	}
	keyed := make([]keyedFamily, 0, len(r.keyed))
	for _, k := range r.keyed {
		keyed = append(keyed, k)
	}
	r.mu.Unlock()

	for _, f := range fbs {
		s.Fallbacks = append(s.Fallbacks, Named[fallback.Stats]{f.Name(), f.Stats()})
	}
	for _, c := range cs {
		s.Caches = append(s.Caches, Named[cache.Stats]{c.Name(), c.Stats()})
	}
	for _, k := range keyed {
		k.forEach(func(name string, v any) {
			switch x := v.(type) {
			case *breaker.Breaker:
				s.Breakers = append(s.Breakers, Named[breaker.Stats]{name, x.Stats()})
			case *bulkhead.Bulkhead:
				s.Bulkheads = append(s.Bulkheads, Named[bulkhead.Stats]{name, x.Stats()})
			case *ratelimit.TokenBucket:
				s.Limiters = append(s.Limiters, Named[ratelimit.Stats]{name, x.Stats()})
			}
		})
	}
	sortNamed(s.Breakers)
	sortNamed(s.Bulkheads)
	sortNamed(s.Limiters)
	sortNamed(s.Fallbacks)
	sortNamed(s.Caches)
	return s
}

func sortNamed[S any](xs []Named[S]) {
	slices.SortFunc(xs, func(a, b Named[S]) int { return strings.Compare(a.Name, b.Name) })
}

func clockNow(r *Registry) time.Time {
	if r.clock == nil {
		return time.Now()
	}
	return r.clock.Now()
}
