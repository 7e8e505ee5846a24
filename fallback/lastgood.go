package fallback

import (
	"hash/maphash"
	"sync"
	"time"
)

const shards = 16 // a power of two

// lastGood keeps the primary's last good value per key for a TTL. Keys are
// spread over shards so that callers with different keys rarely share a
// lock; each shard keeps its entries in store order, oldest first, so that
// expired entries and, when full, the oldest entry leave from the front.
type lastGood[T any] struct {
	ttl    time.Duration
	per    int // entries per shard
	seed   maphash.Seed
	shards [shards]shard[T]
}

type shard[T any] struct {
	mu         sync.Mutex
	m          map[string]*entry[T]
	head, tail *entry[T]
	_          [32]byte // keep neighbouring shards' locks off one cache line
}

type entry[T any] struct {
	key        string
	v          T
	at         time.Time
	prev, next *entry[T]
}

func newLastGood[T any](ttl time.Duration, maxKeys int) *lastGood[T] {
	lg := &lastGood[T]{ttl: ttl, per: max(1, (maxKeys+shards-1)/shards), seed: maphash.MakeSeed()}
	for i := range lg.shards {
		lg.shards[i].m = make(map[string]*entry[T])
	}
	return lg
}

func (lg *lastGood[T]) shard(key string) *shard[T] {
	if key == "" {
		return &lg.shards[0]
	}
	return &lg.shards[maphash.String(lg.seed, key)&(shards-1)]
}

// put records v as key's last good value at now.
func (lg *lastGood[T]) put(key string, v T, now time.Time) {
	s := lg.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now, lg.ttl)
	e := s.m[key]
	if e == nil {
		if len(s.m) >= lg.per {
			s.removeLocked(s.head)
		}
		e = &entry[T]{key: key}
		s.m[key] = e
	} else {
		s.unlinkLocked(e)
	}
	e.v, e.at = v, now
	s.pushLocked(e)
}

// get returns key's last good value and its age, if younger than the TTL.
func (lg *lastGood[T]) get(key string, now time.Time) (v T, age time.Duration, ok bool) {
	s := lg.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		return v, 0, false
	}
	age = max(now.Sub(e.at), 0) // a clock set back makes a value young, not negative
	if age >= lg.ttl {
		s.removeLocked(e)
		return v, 0, false
	}
	return e.v, age, true
}

func (lg *lastGood[T]) forget(key string) {
	s := lg.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		s.removeLocked(e)
	}
}

func (lg *lastGood[T]) forgetAll() {
	for i := range lg.shards {
		s := &lg.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.head, s.tail = nil, nil
		s.mu.Unlock()
	}
}

func (lg *lastGood[T]) len() int {
	n := 0
	for i := range lg.shards {
		s := &lg.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// expireLocked drops entries from the front while they are expired.
func (s *shard[T]) expireLocked(now time.Time, ttl time.Duration) {
	for s.head != nil && now.Sub(s.head.at) >= ttl {
		s.removeLocked(s.head)
	}
}

func (s *shard[T]) removeLocked(e *entry[T]) {
	s.unlinkLocked(e)
	delete(s.m, e.key)
}

func (s *shard[T]) unlinkLocked(e *entry[T]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard[T]) pushLocked(e *entry[T]) {
	e.prev = s.tail
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
}
