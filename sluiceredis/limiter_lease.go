package sluiceredis

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// lease holds the tokens a Limiter took from Redis beyond its callers' own
// (LimiterConfig.Lease) and hands them out locally until they expire. At
// most one round trip at a time asks for a new lease, and it hands back
// whatever is left of the old one, so an instance never holds more than
// size tokens.
type lease struct {
	size int
	ttl  time.Duration

	mu        sync.Mutex
	tokens    int
	expires   time.Time
	refilling bool // a round trip asking for a lease is under way
	closed    bool // Close has handed the lease back: lease no more
}

// takeAt takes n leased tokens if the lease holds them and has not expired
// at now.
func (s *lease) takeAt(now time.Time, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens < n || !now.Before(s.expires) {
		return false
	}
	s.tokens -= n
	return true
}

// planAt is called before a round trip: it returns how many tokens to ask
// for beyond the caller's (none if another round trip is asking already)
// and how many to hand back (what is left of the lease, which the new one
// replaces).
func (s *lease) planAt(now time.Time) (ask, ret int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refilling || s.closed {
		return 0, 0
	}
	s.refilling = true
	ret, s.tokens = s.tokens, 0
	return s.size, ret
}

// refilledAt records the reply of a round trip that asked (or handed back):
// granted tokens, usable until now+ttl. A failed round trip grants none; the
// tokens it handed back may be lost, which only admits less.
func (s *lease) refilledAt(now time.Time, asked bool, granted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if asked {
		s.refilling = false
	}
	if granted > 0 && !s.closed {
		s.tokens += granted
		s.expires = now.Add(s.ttl)
	}
}

// close stops leasing and returns the tokens left to hand back.
func (s *lease) close() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	ret := s.tokens
	s.tokens = 0
	return ret
}

// Close hands the unused tokens of the lease back to Redis (one round trip,
// bounded by Timeout) and stops leasing: later calls decide one round trip
// each. Without a lease it does nothing. It does not close the client.
func (l *Limiter) Close() error {
	if l.lease == nil {
		return nil
	}
	ret := l.lease.close()
	if ret == 0 {
		return nil
	}
	if _, err := l.batch.do(context.Background(), &request{bound: -1, ret: ret}, l.cfg.Timeout); err != nil {
		return fmt.Errorf("%w: limiter %s: handing back %d leased tokens: %w", ErrUnavailable, l.cfg.Key, ret, err)
	}
	return nil
}
