package sluicetest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fired returns the fire time on tm's channel, if one is waiting.
func fired(tm sluice.Timer) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestNowAdvanceSet(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	if !c.Now().Equal(epoch) {
		t.Fatalf("zero start = %v, want %v", c.Now(), epoch)
	}
	start := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	c = sluicetest.NewFakeClock(start)
	c.Advance(90 * time.Second)
	if got := c.Since(start); got != 90*time.Second {
		t.Fatalf("Since = %v", got)
	}
	c.Set(start.Add(-time.Hour))
	if !c.Now().Equal(start.Add(-time.Hour)) {
		t.Fatalf("Set back: %v", c.Now())
	}
}

func TestTimersFireInOrder(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	t3, t1, t2 := c.NewTimer(3*time.Second), c.NewTimer(time.Second), c.NewTimer(2*time.Second)
	if n := c.Waiters(); n != 3 {
		t.Fatalf("Waiters = %d", n)
	}
	if d, ok := c.NextDeadline(); !ok || !d.Equal(epoch.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v, %v", d, ok)
	}
	steps := []struct {
		advance time.Duration
		due     sluice.Timer
		left    int
	}{
		{999 * time.Millisecond, nil, 3},
		{time.Millisecond, t1, 2},
		{time.Second, t2, 1},
		{time.Second, t3, 0},
	}
	all := []sluice.Timer{t1, t2, t3}
	for i, st := range steps {
		c.Advance(st.advance)
		for j, tm := range all {
			at, ok := fired(tm)
			if tm == st.due {
				if want := epoch.Add(time.Duration(j+1) * time.Second); !ok || !at.Equal(want) {
					t.Fatalf("step %d: timer %d fired=%v at %v, want at %v", i, j+1, ok, at, want)
				}
			} else if ok {
				t.Fatalf("step %d: timer %d fired early", i, j+1)
			}
		}
		if n := c.Waiters(); n != st.left {
			t.Fatalf("step %d: Waiters = %d, want %d", i, n, st.left)
		}
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("NextDeadline with no timers")
	}
}

func TestOneAdvanceFiresAllDueWithTheirDeadlines(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	var ts []sluice.Timer
	for _, d := range []time.Duration{5, 1, 4, 2, 3} {
		ts = append(ts, c.NewTimer(d*time.Second))
	}
	later := c.NewTimer(time.Minute)
	c.Advance(10 * time.Second)
	for i, d := range []time.Duration{5, 1, 4, 2, 3} {
		if at, ok := fired(ts[i]); !ok || !at.Equal(epoch.Add(d*time.Second)) {
			t.Errorf("timer %v: fired=%v at %v", d, ok, at)
		}
	}
	if _, ok := fired(later); ok || c.Waiters() != 1 {
		t.Errorf("later timer fired or lost (waiters %d)", c.Waiters())
	}
}

func TestNonPositiveTimerFiresAtOnce(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	for _, d := range []time.Duration{0, -time.Second} {
		tm := c.NewTimer(d)
		if at, ok := fired(tm); !ok || !at.Equal(epoch) {
			t.Errorf("NewTimer(%v): fired=%v at %v", d, ok, at)
		}
		if tm.Stop() {
			t.Errorf("NewTimer(%v): Stop after firing reported true", d)
		}
	}
	if c.Waiters() != 0 {
		t.Errorf("Waiters = %d", c.Waiters())
	}
}

func TestStop(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	a, b := c.NewTimer(time.Second), c.NewTimer(2*time.Second)
	if !a.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if a.Stop() {
		t.Fatal("second Stop reported true")
	}
	if c.Waiters() != 1 {
		t.Fatalf("Waiters = %d after Stop", c.Waiters())
	}
	c.Advance(time.Hour)
	if _, ok := fired(a); ok {
		t.Fatal("stopped timer fired")
	}
	if _, ok := fired(b); !ok {
		t.Fatal("other timer did not fire")
	}
	if b.Stop() {
		t.Fatal("Stop after firing reported true")
	}
}

func TestSetBackDelaysTimers(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	tm := c.NewTimer(time.Minute)
	c.Set(epoch.Add(-time.Hour))
	c.Advance(time.Hour)
	if _, ok := fired(tm); ok {
		t.Fatal("timer fired before its deadline after the clock went back")
	}
	c.Advance(time.Minute)
	if _, ok := fired(tm); !ok {
		t.Fatal("timer did not fire at its deadline")
	}
}

func TestBlockUntil(t *testing.T) {
	c := sluicetest.NewFakeClock(time.Time{})
	const sleepers = 8
	var wg sync.WaitGroup
	errs := make(chan error, sleepers)
	for i := range sleepers {
		wg.Go(func() {
			errs <- sluice.Sleep(context.Background(), c, time.Duration(i+1)*time.Second)
		})
	}
	c.BlockUntil(sleepers) // every goroutine is asleep on the clock
	if d, ok := c.NextDeadline(); !ok || !d.Equal(epoch.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v", d)
	}
	c.Advance(sleepers * time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c.Waiters() != 0 {
		t.Fatalf("Waiters = %d", c.Waiters())
	}
	c.BlockUntil(0) // returns at once
}
