package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
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

// TestClockFormsFollowTheClock drives a breaker through its whole cycle with
// Allow, Permit.Done and State only: the times of the changes are the
// clock's.
func TestClockFormsFollowTheClock(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	var mu sync.Mutex
	var changes []string
	b := MustNew(Config{FailureThreshold: 2, OpenFor: 10 * sec, SuccessThreshold: 1, Clock: clock,
		OnStateChange: func(c StateChange) {
			mu.Lock()
			changes = append(changes, fmt.Sprintf("%v->%v@%v", c.From, c.To, c.At.Sub(t0)))
			mu.Unlock()
		}})
	for range 2 {
		p, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(sec)
		p.Done(Failure, 0)
	}
	if got := b.State(); got != StateOpen {
		t.Fatalf("State() after two failures = %v, want open", got)
	}
	clock.Advance(9 * sec)
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow() 1ns before the end of the open period: %v, want ErrOpen", err)
	} else if d, _ := sluice.RetryAfter(err); d != sec {
		t.Fatalf("RetryAfter = %v, want 1s", d)
	}
	clock.Advance(sec)
	if got := b.State(); got != StateHalfOpen {
		t.Fatalf("State() at the end of the open period = %v, want half-open", got)
	}
	p, err := b.Allow()
	if err != nil || !p.Probe() {
		t.Fatalf("Allow() half-open: probe %v, err %v", p.Probe(), err)
	}
	clock.Advance(sec)
	p.Done(Success, 0)
	if got := b.State(); got != StateClosed {
		t.Fatalf("State() after the probe succeeded = %v, want closed", got)
	}
	mu.Lock()
	got := fmt.Sprint(changes)
	mu.Unlock()
	if want := "[closed->open@2s open->half-open@12s half-open->closed@13s]"; got != want {
		t.Fatalf("changes %v, want %v", got, want)
	}
}

// TestDoneJudgesElapsedAgainstSlowCallDuration: Done takes the call's
// duration, not its end, and a slow probe reopens the breaker.
func TestDoneJudgesElapsedAgainstSlowCallDuration(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{WindowSize: 2, MinimumCalls: 2, SlowCallDuration: 100 * ms,
		SlowCallRateThreshold: 0.5, Clock: clock})
	for _, elapsed := range []time.Duration{100 * ms, 101 * ms} {
		p, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		p.Done(Success, elapsed)
	}
	s := b.Stats()
	if s.State != StateOpen || s.Slow != 1 || s.LastTrip.Reason != TripSlowRate {
		t.Fatalf("stats %+v, want open by the slow rate with one slow call", s)
	}
}

// TestClockFormsReadTheClockOnlyWhenTheyMust counts clock reads: a success
// through a clean closed breaker reads none, a failure one, and a rejection
// by an open breaker without a timer one (to see whether the period ended).
func TestClockFormsReadTheClockOnlyWhenTheyMust(t *testing.T) {
	clock := &countingClock{FakeClock: sluicetest.NewFakeClock(t0)}
	b := MustNew(Config{WindowSize: 3, FailureThreshold: 1, OpenFor: sec, Clock: clock})
	for range 3 {
		p, _ := b.Allow()
		p.Done(Success, 0)
	}
	clock.reads.Store(0)
	p, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	p.Done(Success, 0)
	if n := clock.reads.Load(); n != 0 {
		t.Fatalf("a clean success read the clock %d times, want 0", n)
	}
	p, _ = b.Allow()
	p.Done(Failure, 0)
	if n := clock.reads.Load(); n != 1 {
		t.Fatalf("a failure read the clock %d times, want 1", n)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow() after the trip: %v", err)
	}
	if n := clock.reads.Load(); n != 2 {
		t.Fatalf("a rejection read the clock %d times in all, want 2", n)
	}
	var zero Permit
	zero.Done(Failure, 0) // ignored, as a rejection's Permit must be
	if s := b.Stats(); s.Failures != 1 || s.Rejected != 1 || s.Successes != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// TestClockFormsArmTheTimer: unlike AllowAt and DoneAt, which may be given
// virtual times, Done and State read the system clock and so arm the timer
// that ends the open period without traffic.
func TestClockFormsArmTheTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := MustNew(Config{FailureThreshold: 1, OpenFor: sec})
		p, _ := b.Allow()
		p.Done(Failure, 0)
		if b.word.Load()&armedBit == 0 {
			t.Fatal("Done opened the breaker without arming the timer")
		}
		time.Sleep(sec)
		synctest.Wait()
		if b.word.Load()&stateMask != uint64(ruleHalfOpen) {
			t.Fatal("the timer did not turn the breaker half-open")
		}

		c := MustNew(Config{FailureThreshold: 1, OpenFor: sec})
		p, _ = c.AllowAt(time.Now())
		p.DoneAt(time.Now(), Failure, 0)
		if c.word.Load()&armedBit != 0 {
			t.Fatal("an explicit time armed the timer")
		}
		if got := c.State(); got != StateOpen {
			t.Fatalf("State() = %v, want open", got)
		}
		if c.word.Load()&armedBit == 0 {
			t.Fatal("State() did not arm the timer")
		}
		time.Sleep(sec)
		synctest.Wait()
		if c.word.Load()&stateMask != uint64(ruleHalfOpen) {
			t.Fatal("the timer armed by State() did not turn the breaker half-open")
		}
	})
}

// TestClockFormsAllocs: Allow and Done allocate nothing on a clean closed
// breaker, nor on rejection.
func TestClockFormsAllocs(t *testing.T) {
	b := MustNew(Config{})
	for range 200 {
		p, _ := b.Allow()
		p.Done(Success, 0)
	}
	if n := testing.AllocsPerRun(1000, func() {
		p, _ := b.Allow()
		p.Done(Success, 0)
	}); n != 0 {
		t.Errorf("Allow and Done: %v allocs", n)
	}
	o := MustNew(Config{FailureThreshold: 1, OpenFor: time.Hour})
	defer o.Close()
	_ = sluice.NewPipeline(o).Do(context.Background(), failCall)
	if n := testing.AllocsPerRun(1000, func() { _, _ = o.Allow() }); n != 0 {
		t.Errorf("rejected Allow: %v allocs", n)
	}
}
