package fallback

import (
	"time"

	"github.com/sluice-go/sluice/internal/ttlstore"
)

// lastGood keeps the primary's last good value per key for a TTL, in the
// keyed TTL store cache keeps its entries in: sharded, bounded, and when a
// shard is full an expired result or one not read recently leaves first.
type lastGood[T any] struct {
	store *ttlstore.Store[T, struct{}]
}

func newLastGood[T any](ttl time.Duration, maxKeys int) *lastGood[T] {
	return &lastGood[T]{store: ttlstore.New[T, struct{}](maxKeys, ttl)}
}

// put records v as key's last good value at now.
func (lg *lastGood[T]) put(key string, v T, now time.Time) {
	s := lg.store.Shard(key)
	s.Lock()
	s.PutAtLocked(key, v, now)
	s.Unlock()
}

// get returns key's last good value and its age, if younger than the TTL.
// An expired value is dropped.
func (lg *lastGood[T]) get(key string, now time.Time) (v T, age time.Duration, ok bool) {
	s := lg.store.Shard(key)
	s.RLock()
	e := s.GetLocked(key)
	if e != nil && !s.ExpiredAt(e.Stored, now) {
		v, age = e.Value, max(now.Sub(e.Stored), 0) // a clock set back makes a value young, not negative
		e.Touch()
		s.RUnlock()
		return v, age, true
	}
	s.RUnlock()
	if e != nil {
		s.Lock()
		if e := s.GetLocked(key); e != nil && s.ExpiredAt(e.Stored, now) {
			s.RemoveLocked(e)
		}
		s.Unlock()
	}
	return v, 0, false
}

func (lg *lastGood[T]) forget(key string) {
	s := lg.store.Shard(key)
	s.Lock()
	s.DeleteLocked(key)
	s.Unlock()
}

func (lg *lastGood[T]) forgetAll() {
	lg.store.Each(func(s *ttlstore.Shard[T, struct{}]) {
		s.Lock()
		s.ResetLocked()
		s.Unlock()
	})
}

func (lg *lastGood[T]) len() int { return lg.store.Len() }
