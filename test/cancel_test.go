package test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/retry"
)

var errCallerGone = errors.New("caller went away")

// TestCancelMidBackoff cancels a call through the whole pipeline while the
// retry waits 10s between attempts. The call must return at the moment of
// cancellation with the caller's cause (the last attempt's error still
// reachable), the fallback must not answer for a caller who has gone, and
// nothing may be left running: synctest.Test fails if a goroutine of the
// bubble outlives it, and goleak checks the rest.
func TestCancelMidBackoff(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, func())
		after   time.Duration // when the caller gives up
		errIs   []error
		elapsed time.Duration
	}{
		{
			name: "cancel with cause",
			ctx: func(parent context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(parent)
				return ctx, func() { cancel(errCallerGone) }
			},
			after:   3 * time.Second,
			errIs:   []error{errCallerGone, errUnavailable},
			elapsed: 3 * time.Second,
		},
		{
			name: "deadline",
			ctx: func(parent context.Context) (context.Context, func()) {
				ctx, cancel := context.WithTimeout(parent, 5*time.Second)
				return ctx, cancel
			},
			errIs:   []error{context.DeadlineExceeded, errUnavailable},
			elapsed: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := defaultStack()
				cfg.retry.MaxAttempts = 5
				cfg.retry.Backoff = retry.Constant(10 * time.Second)
				s := newStack(t, cfg)
				up := &upstream{mode: failing}

				var o fallback.Outcome
				ctx, giveUp := tt.ctx(fallback.WithOutcome(withAgent(t.Context(), "a"), &o))
				defer giveUp()
				type result struct {
					v   Status
					err error
					at  time.Time
				}
				done := make(chan result, 1)
				start := time.Now()
				go func() {
					v, err := sluice.Get(ctx, s.p, up.fetch)
					done <- result{v, err, time.Now()}
				}()
				synctest.Wait() // the call is asleep in its first backoff wait
				if up.count() != 1 || s.retries.Load() != 1 {
					t.Fatalf("before giving up: %d attempts, %d retries announced; want 1, 1", up.count(), s.retries.Load())
				}
				if tt.after > 0 {
					time.Sleep(tt.after)
					giveUp()
				}
				r := <-done
				if el := r.at.Sub(start); el != tt.elapsed {
					t.Fatalf("call returned after %v, want %v: at once when the caller gave up", el, tt.elapsed)
				}
				if miss := matchesAll(r.err, tt.errIs...); miss != nil {
					t.Fatalf("error %v does not match %v", r.err, miss)
				}
				if r.v != (Status{}) || o.Branch != fallback.BranchPrimary {
					t.Fatalf("the fallback answered %+v from %v for a caller who had gone", r.v, o.Branch)
				}
				if up.count() != 1 {
					t.Fatalf("dependency called %d times, want 1", up.count())
				}
				if st := s.bh.Stats(); st.Active != 0 {
					t.Fatalf("bulkhead still has %d permits out", st.Active)
				}
				if bs := s.br.Stats(); bs.Failures != 1 || bs.State != breaker.StateClosed {
					t.Fatalf("breaker: %d failures, %v; want the one failed attempt, closed", bs.Failures, bs.State)
				}
				if rs := s.rt.Stats(); rs.Calls != 1 || rs.Failures != 1 {
					t.Fatalf("retry stats: %d calls, %d failures; want 1, 1", rs.Calls, rs.Failures)
				}
			})
		})
	}
}
