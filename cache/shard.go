package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// entry is one stored value. Its fields other than ref change only under the
// shard's write lock; ref is set by readers holding the read lock.
type entry[T any] struct {
	key    string
	val    T
	stored time.Time
	idx    int         // position in the shard's ring
	ref    atomic.Bool // read since the clock hand last passed
}

// touch marks the entry as recently read. It writes only when the bit is
// clear, so a hot entry's cache line is written once per sweep, not per hit.
func (e *entry[T]) touch() {
	if !e.ref.Load() {
		e.ref.Store(true)
	}
}

// shard is one lock's worth of the cache: a map from key to entry, the
// entries in a ring for the CLOCK sweep, and the calls in flight.
type shard[T any] struct {
	mu       sync.RWMutex
	m        map[string]*entry[T]
	flights  map[string]*flight[T]
	ring     []*entry[T]
	hand     int
	capacity int
	// Padding keeps one shard's lock off the cache line of the next shard's.
	_ [64]byte
}

func (s *shard[T]) init(capacity int) {
	s.m = make(map[string]*entry[T])
	s.flights = make(map[string]*flight[T])
	s.capacity = capacity
}

// storeLocked stores v under key as of now, evicting an entry when the shard
// is full. It reports whether it evicted one.
func (c *Cache[T]) storeLocked(s *shard[T], key string, v T, now time.Time) bool {
	if e := s.m[key]; e != nil {
		e.val, e.stored = v, now
		e.ref.Store(true)
		return false
	}
	e := &entry[T]{key: key, val: v, stored: now}
	if len(s.ring) < s.capacity {
		e.idx = len(s.ring)
		s.ring = append(s.ring, e)
		s.m[key] = e
		return false
	}
	i := c.victimLocked(s, now)
	delete(s.m, s.ring[i].key)
	e.idx = i
	s.ring[i] = e
	s.m[key] = e
	return true
}

// victimLocked runs the clock hand to the first entry that is expired or not
// read since the hand last passed it, clearing the bits it passes over. After
// one full turn every bit is clear, so it stops within len(ring)+1 steps.
func (c *Cache[T]) victimLocked(s *shard[T], now time.Time) int {
	for {
		i := s.hand
		e := s.ring[i]
		s.hand++
		if s.hand == len(s.ring) {
			s.hand = 0
		}
		if !e.ref.Load() || c.stateOf(now.Sub(e.stored)) == stateExpired {
			return i
		}
		e.ref.Store(false)
	}
}

// removeLocked removes e, moving the ring's last entry into its slot.
func (s *shard[T]) removeLocked(e *entry[T]) {
	last := len(s.ring) - 1
	moved := s.ring[last]
	s.ring[e.idx] = moved
	moved.idx = e.idx
	s.ring[last] = nil
	s.ring = s.ring[:last]
	if s.hand >= len(s.ring) {
		s.hand = 0
	}
	delete(s.m, e.key)
}

// resetLocked removes every entry.
func (s *shard[T]) resetLocked() {
	clear(s.m)
	clear(s.ring)
	s.ring = s.ring[:0]
	s.hand = 0
}
