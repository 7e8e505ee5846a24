package retry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/sluicetest"
)

// countingClock is a FakeClock that counts how often Now is read.
type countingClock struct {
	*sluicetest.FakeClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.FakeClock.Now()
}

// TestClockFormsFollowTheClock drives calls with Begin, Failed, Succeeded
// and Canceled only: the call's start, its MaxElapsed check and the
// durations in the histogram all come from Config.Clock.
func TestClockFormsFollowTheClock(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	r := mustNew(t, Config{MaxAttempts: 4, Backoff: Constant(time.Second), Jitter: NoJitter,
		MaxElapsed: 3 * time.Second, Budget: NoBudget{}, Clock: clock})
	ctx := context.Background()

	c := r.Begin(nil)
	clock.Advance(100 * time.Millisecond)
	if wait, final := c.Failed(ctx, errFlaky); wait != time.Second || final != nil {
		t.Fatalf("Failed: wait %v, final %v; want 1s, nil", wait, final)
	}
	clock.Advance(1400 * time.Millisecond)
	c.Succeeded()

	c = r.Begin(nil)
	clock.Advance(500 * time.Millisecond)
	if _, final := c.Failed(ctx, errFlaky); final != nil {
		t.Fatalf("Failed at 0.5s: %v", final)
	}
	clock.Advance(time.Second)
	if err := c.Canceled(context.Canceled); !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) {
		t.Fatalf("Canceled = %v, want the cause wrapping the last error", err)
	}

	c = r.Begin(nil)
	clock.Advance(2500 * time.Millisecond) // the wait of 1s would end past MaxElapsed
	var ee *ExhaustedError
	if _, final := c.Failed(ctx, errFlaky); !errors.As(final, &ee) || !ee.OutOfTime {
		t.Fatalf("Failed at 2.5s: %v, want out of time", final)
	}

	st := r.Stats()
	if st.Calls != 3 || st.Successes != 1 || st.Attempts != 4 || st.Duration.Count != 3 {
		t.Fatalf("stats %+v", st)
	}
	if want := 1.5 + 1.5 + 2.5; st.Duration.Sum != want {
		t.Fatalf("duration sum %vs, want %vs", st.Duration.Sum, want)
	}
}

// TestUntimedCallReadsNoClock: a call that is not timed (as most of
// Execute's are) ends with Succeeded or Canceled without reading the clock;
// its success still reaches a budget that must hear of it, through
// Budget.Attempt. A timed call (Begin) reads it once to end.
func TestUntimedCallReadsNoClock(t *testing.T) {
	clock := &countingClock{FakeClock: sluicetest.NewFakeClock(t0)}
	tb, err := NewTokenBudget(TokenBudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		tb.Attempt(true, Retryable)
	}
	r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(time.Second), Budget: tb, Clock: clock})
	untimed := func() Call { return Call{r: r, s: r.s.Load(), attempt: 1} } // as Execute makes one

	c := untimed()
	c.Succeeded()
	if n := clock.reads.Load(); n != 0 {
		t.Fatalf("an untimed success read the clock %d times", n)
	}
	if got := tb.Tokens(); got != 7.1 {
		t.Fatalf("tokens after the success: %v, want 7.1", got)
	}

	c = untimed()
	if _, final := c.FailedAt(context.Background(), t0, errFlaky); final != nil {
		t.Fatal(final)
	}
	_ = c.Canceled(context.Canceled)
	if n := clock.reads.Load(); n != 0 {
		t.Fatalf("an untimed cancellation read the clock %d times", n)
	}

	c = r.Begin(nil)
	c.Succeeded()
	if n := clock.reads.Load(); n != 2 {
		t.Fatalf("Begin and a timed success read the clock %d times, want 2", n)
	}
	if st := r.Stats(); st.Calls != 3 || st.Successes != 2 || st.Duration.Count != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBudgetAttemptFilesWithTheLatestTime: Attempt counts a first attempt in
// the bucket of the latest time the budget was given, AttemptAt in now's.
func TestBudgetAttemptFilesWithTheLatestTime(t *testing.T) {
	b := mustBudget(t, BudgetConfig{Window: 10 * time.Second, MinRetriesPerSecond: -1})
	b.AttemptAt(t0, true, Succeeded)
	b.Attempt(true, Succeeded)
	b.Attempt(false, Retryable) // not a first attempt: not counted
	if req, _ := b.CountsAt(t0); req != 2 {
		t.Fatalf("first attempts at t0: %d, want 2", req)
	}
	b.AttemptAt(t0.Add(5*time.Second), true, Succeeded)
	b.Attempt(true, Succeeded) // filed at t0+5s, the latest time seen
	if req, _ := b.CountsAt(t0.Add(10 * time.Second)); req != 2 {
		t.Fatalf("first attempts 10s on: %d, want the 2 filed at 5s", req)
	}
	var nb NoBudget
	nb.Attempt(true, Retryable)
	if ok, _ := nb.AllowRetryAt(t0); !ok {
		t.Fatal("NoBudget refused a retry")
	}
}
