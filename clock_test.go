package sluice_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

func TestSystemClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := sluice.SystemClock()
		if !c.Now().Equal(time.Now()) {
			t.Error("SystemClock.Now differs from time.Now inside the bubble")
		}
		start := time.Now()
		tm := c.NewTimer(3 * time.Second)
		at := <-tm.C()
		if d := at.Sub(start); d != 3*time.Second {
			t.Errorf("timer fired after %v, want 3s", d)
		}
		if tm.Stop() {
			t.Error("Stop after firing reported true")
		}
		tm = c.NewTimer(time.Second)
		if !tm.Stop() {
			t.Error("Stop before firing reported false")
		}
	})
}

func TestClockOr(t *testing.T) {
	fake := sluicetest.NewFakeClock(time.Time{})
	if sluice.ClockOr(fake) != sluice.Clock(fake) {
		t.Error("ClockOr replaced a non-nil clock")
	}
	if sluice.ClockOr(nil) != sluice.SystemClock() {
		t.Error("ClockOr(nil) is not the system clock")
	}
}

func TestSleep(t *testing.T) {
	t.Run("system clock, full duration", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := sluice.Sleep(context.Background(), nil, 1500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 1500*time.Millisecond {
				t.Fatalf("slept %v", d)
			}
		})
	})
	t.Run("cancel wakes with the cause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			why := errors.New("shutting down")
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(200*time.Millisecond, func() { cancel(why) })
			start := time.Now()
			err := sluice.Sleep(ctx, nil, time.Hour)
			if err != why || time.Since(start) != 200*time.Millisecond {
				t.Fatalf("got %v after %v, want the cause after 200ms", err, time.Since(start))
			}
		})
	})
	t.Run("deadline wakes with DeadlineExceeded", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := sluice.Sleep(ctx, nil, time.Hour); err != context.DeadlineExceeded {
				t.Fatalf("got %v", err)
			}
		})
	})
	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, d := range []time.Duration{-time.Second, 0, time.Hour} {
			if err := sluice.Sleep(ctx, nil, d); err != context.Canceled {
				t.Errorf("d=%v: got %v, want context.Canceled at once", d, err)
			}
		}
		if err := sluice.Sleep(context.Background(), nil, -time.Second); err != nil {
			t.Errorf("negative d: %v", err)
		}
	})
	t.Run("fake clock", func(t *testing.T) {
		clock := sluicetest.NewFakeClock(time.Time{})
		done := make(chan error, 1)
		go func() { done <- sluice.Sleep(context.Background(), clock, 5*time.Second) }()
		clock.BlockUntil(1)
		clock.Advance(5*time.Second - time.Nanosecond)
		select {
		case err := <-done:
			t.Fatalf("woke 1ns early: %v", err)
		default:
		}
		clock.Advance(time.Nanosecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fake clock, cancel stops the timer", func(t *testing.T) {
		clock := sluicetest.NewFakeClock(time.Time{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sluice.Sleep(ctx, clock, time.Minute) }()
		clock.BlockUntil(1)
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("got %v", err)
		}
		if n := clock.Waiters(); n != 0 {
			t.Fatalf("%d timers left pending after cancel", n)
		}
	})
}
