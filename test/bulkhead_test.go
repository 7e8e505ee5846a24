package test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/fallback"
)

// TestBulkheadFullFallsBack fills a one-permit bulkhead with a call that
// waits on the dependency; the next call is shed by the bulkhead, is not
// retried, and the fallback's default answers at once, with the primary's
// failure matching sluice.ErrRejected.
func TestBulkheadFullFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := defaultStack()
		cfg.bulkhead.MaxConcurrent = 1
		s := newStack(t, cfg)
		gate := make(chan struct{})
		up := &upstream{version: 1, gate: gate}

		holder := make(chan Status, 1)
		go func() {
			v, _ := sluice.Get(withAgent(t.Context(), "a"), s.p, up.fetch)
			holder <- v
		}()
		synctest.Wait() // the holder has the permit and waits on the dependency
		if st := s.bh.Stats(); st.Active != 1 {
			t.Fatalf("bulkhead has %d permits out, want the holder's 1", st.Active)
		}

		v, o, elapsed := s.get(t, up, "b")
		if v != unknown || o.Branch != fallback.BranchDefault {
			t.Fatalf("shed call answered %+v from %v, want the default", v, o.Branch)
		}
		if miss := matchesAll(o.Err, sluice.ErrRejected, bulkhead.ErrFull); miss != nil {
			t.Fatalf("primary error %v does not match %v", o.Err, miss)
		}
		if ra, ok := sluice.RetryAfter(o.Err); !ok || ra != 100*time.Millisecond {
			t.Fatalf("RetryAfter(%v) = %v, %v; want the bulkhead's 100ms hint", o.Err, ra, ok)
		}
		var fe *bulkhead.FullError
		if !errors.As(o.Err, &fe) || fe.Reason() != bulkhead.QueueFull {
			t.Fatalf("primary error %v: want a *bulkhead.FullError for a full queue", o.Err)
		}
		if elapsed != 0 || s.retries.Load() != 0 || up.count() != 1 {
			t.Fatalf("shed call took %v, %d retries, dependency calls %d; want 0, 0, 1 (the holder's)",
				elapsed, s.retries.Load(), up.count())
		}

		close(gate)
		if v := <-holder; v != (Status{"a", 1}) {
			t.Fatalf("holder got %+v, want {a 1}", v)
		}
		if st := s.bh.Stats(); st.Active != 0 || st.Admitted != 1 || st.Rejected != 1 {
			t.Fatalf("bulkhead: %d active, %d admitted, %d rejected; want 0, 1, 1", st.Active, st.Admitted, st.Rejected)
		}
	})
}

// TestBulkheadRejectionsDoNotTripBreaker: in the canonical order the
// bulkhead sits inside the breaker, so the breaker sees the bulkhead's
// rejections. A full bulkhead is local load shedding, not a failure of the
// dependency; if the breaker counted it, a burst of concurrency against a
// healthy dependency would open the breaker and reject everyone for OpenFor.
func TestBulkheadRejectionsDoNotTripBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := defaultStack()
		cfg.bulkhead.MaxConcurrent = 1
		s := newStack(t, cfg)
		gate := make(chan struct{})
		up := &upstream{version: 1, gate: gate}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.p.Do(withAgent(t.Context(), "a"), up.do)
		}()
		synctest.Wait()
		for i := range 10 {
			if _, o, _ := s.get(t, up, "b"); !errors.Is(o.Err, bulkhead.ErrFull) {
				t.Fatalf("call %d: primary error %v, want bulkhead.ErrFull", i, o.Err)
			}
		}
		close(gate)
		<-done
		if st := s.br.StateAt(time.Now()); st != breaker.StateClosed {
			t.Fatalf("after 10 bulkhead rejections and 1 success the breaker is %v, want closed", st)
		}
		if f := s.br.Stats().Failures; f != 0 {
			t.Fatalf("breaker counted %d failures, want 0: the dependency never failed", f)
		}
	})
}
