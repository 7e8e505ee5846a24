// Package ttlstore is the one keyed store of values with an age that the
// policies keep: cache's entries and fallback's last good results. Keys are
// spread over up to 16 shards, each behind its own lock, so callers of
// different keys rarely meet; a shard holds a bounded number of entries and,
// when full, evicts with a CLOCK sweep: the first entry that is expired or
// has not been read since the hand last passed it.
//
// The store knows one rule of time, the lifetime past which an entry is
// expired; what a younger entry means (fresh, stale, last good) is its
// user's. A shard carries one more value of the user's type X, kept under
// the shard's lock, so that state that must change atomically with the
// entries (cache's calls in flight) needs no second lock.
package ttlstore

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// maxShards bounds the number of shards; a power of two.
const maxShards = 16

// Store is a sharded, bounded map from string keys to values of type V with
// the time each was stored. The zero Store is not usable: make one with New.
type Store[V, X any] struct {
	seed   maphash.Seed
	mask   uint64
	shards []Shard[V, X]
}

// New returns a Store that holds at most maxEntries (at least 1) entries,
// as many shards as fit, up to 16, with the capacity split exactly so that
// the shards together never hold more than maxEntries. An entry whose age
// reaches life is expired: the sweep takes it first.
func New[V, X any](maxEntries int, life time.Duration) *Store[V, X] {
	maxEntries = max(maxEntries, 1)
	n := maxShards
	for n > maxEntries {
		n >>= 1
	}
	st := &Store[V, X]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]Shard[V, X], n)}
	for i := range st.shards {
		capacity := maxEntries / n
		if i < maxEntries%n {
			capacity++
		}
		st.shards[i] = Shard[V, X]{m: make(map[string]*Entry[V]), capacity: capacity, life: life}
	}
	return st
}

// Shard returns the shard that holds key.
func (st *Store[V, X]) Shard(key string) *Shard[V, X] {
	return &st.shards[maphash.String(st.seed, key)&st.mask]
}

// Each calls fn with every shard, one at a time, holding no lock.
func (st *Store[V, X]) Each(fn func(*Shard[V, X])) {
	for i := range st.shards {
		fn(&st.shards[i])
	}
}

// Len returns the number of entries held, expired ones included until they
// are removed.
func (st *Store[V, X]) Len() int {
	n := 0
	for i := range st.shards {
		s := &st.shards[i]
		s.RLock()
		n += len(s.m)
		s.RUnlock()
	}
	return n
}

// Entry is one stored value. Its fields change only under the shard's write
// lock, except the read bit, which Touch sets under the read lock.
type Entry[V any] struct {
	// Value is the stored value.
	Value V
	// Stored is when it was stored.
	Stored time.Time

	key string
	idx int         // position in the shard's ring
	ref atomic.Bool // read since the clock hand last passed
}

// Touch marks the entry as recently read, so the sweep spares it once. It
// writes only when the bit is clear, so a hot entry's cache line is written
// once per sweep, not per read. It may be called under the read lock.
func (e *Entry[V]) Touch() {
	if !e.ref.Load() {
		e.ref.Store(true)
	}
}

// Shard is one lock's worth of a Store: a map from key to entry, the entries
// in a ring for the CLOCK sweep, and the user's X. The methods named Locked
// need the lock (Get the read lock at least, the others the write lock).
type Shard[V, X any] struct {
	sync.RWMutex
	// Extra is the user's state kept under the shard's lock.
	Extra X

	m        map[string]*Entry[V]
	ring     []*Entry[V]
	hand     int
	capacity int
	life     time.Duration
	// Padding keeps one shard's lock off the cache line of the next shard's.
	_ [64]byte
}

// GetLocked returns key's entry, nil if there is none. The entry may be
// expired; the caller judges its age.
func (s *Shard[V, X]) GetLocked(key string) *Entry[V] { return s.m[key] }

// PutAtLocked stores v under key as of now, evicting an entry when the shard
// is full, and reports whether it evicted one. Storing a key that is held
// replaces its value and time and marks it read.
func (s *Shard[V, X]) PutAtLocked(key string, v V, now time.Time) (evicted bool) {
	if e := s.m[key]; e != nil {
		e.Value, e.Stored = v, now
		e.ref.Store(true)
		return false
	}
	e := &Entry[V]{key: key, Value: v, Stored: now}
	if len(s.ring) < s.capacity {
		e.idx = len(s.ring)
		s.ring = append(s.ring, e)
		s.m[key] = e
		return false
	}
	i := s.victimLocked(now)
	delete(s.m, s.ring[i].key)
	e.idx = i
	s.ring[i] = e
	s.m[key] = e
	return true
}

// ExpiredAt reports whether an entry stored at stored is expired at now. An
// entry from the future (the clock stepped back) is young, not expired.
func (s *Shard[V, X]) ExpiredAt(stored, now time.Time) bool {
	return now.Sub(stored) >= s.life
}

// victimLocked runs the clock hand to the first entry that is expired or not
// read since the hand last passed it, clearing the bits it passes over. After
// one full turn every bit is clear, so it stops within len(ring)+1 steps.
func (s *Shard[V, X]) victimLocked(now time.Time) int {
	for {
		i := s.hand
		e := s.ring[i]
		s.hand++
		if s.hand == len(s.ring) {
			s.hand = 0
		}
		if !e.ref.Load() || s.ExpiredAt(e.Stored, now) {
			return i
		}
		e.ref.Store(false)
	}
}

// RemoveLocked removes e, moving the ring's last entry into its slot.
func (s *Shard[V, X]) RemoveLocked(e *Entry[V]) {
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

// DeleteLocked removes key's entry and reports whether there was one.
func (s *Shard[V, X]) DeleteLocked(key string) bool {
	e := s.m[key]
	if e == nil {
		return false
	}
	s.RemoveLocked(e)
	return true
}

// ResetLocked removes every entry; Extra is the caller's to reset.
func (s *Shard[V, X]) ResetLocked() {
	clear(s.m)
	clear(s.ring)
	s.ring = s.ring[:0]
	s.hand = 0
}

// CheckLocked reports the first broken invariant of the shard's bookkeeping
// (every entry in the map at its place in the ring, no more entries than
// the capacity), or nil. It is for tests of the store's users.
func (s *Shard[V, X]) CheckLocked() error {
	if len(s.m) != len(s.ring) || len(s.ring) > s.capacity {
		return fmt.Errorf("ttlstore: %d in the map, %d in the ring, capacity %d", len(s.m), len(s.ring), s.capacity)
	}
	for k, e := range s.m {
		if e.idx >= len(s.ring) || s.ring[e.idx] != e || e.key != k {
			return fmt.Errorf("ttlstore: ring index out of sync for %q", k)
		}
	}
	return nil
}
