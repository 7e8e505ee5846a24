package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
)

// Inside a synctest bubble the system clock is virtual, so these limiters
// use the default clock and time.Since measures exactly what they slept.

func TestWaitSleepsForTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 1})
		ctx := context.Background()
		start := time.Now()
		for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
			if err := l.Wait(ctx); err != nil {
				t.Fatalf("Wait %d: %v", i, err)
			}
			if got := time.Since(start); got != want {
				t.Errorf("Wait %d returned at %v, want %v", i, got, want)
			}
		}
		s := l.Stats()
		if s.Allowed != 3 || s.Waited != 2 || s.WaitTime != 200*time.Millisecond {
			t.Errorf("Stats = %+v, want 3 allowed, 2 waited for 200ms", s)
		}
	})
}

func TestWaitSmoothQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 3, Smooth: true})
		start := time.Now()
		done := make(chan time.Duration, 4)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				if err := l.Wait(context.Background()); err != nil {
					errs <- err
					return
				}
				done <- time.Since(start)
			}()
		}
		synctest.Wait()
		// Burst 3: three slots (now, +100ms, +200ms); the fourth is refused
		// at once.
		if err := <-errs; !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("fourth waiter: %v, want ErrLimited", err)
		}
		var got []time.Duration
		for range 3 {
			got = append(got, <-done)
		}
		for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
			if got[i] != want {
				t.Errorf("waiter %d ran at %v, want %v", i, got[i], want)
			}
		}
	})
}

func TestWaitFailsFastPastMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 1, MaxWait: 50 * time.Millisecond})
		l.Allow()
		start := time.Now()
		err := l.Wait(context.Background())
		if !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, sluice.ErrRejected) {
			t.Fatalf("Wait = %v, want ErrLimited", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait slept %v before failing", d)
		}
		if ra, _ := sluice.RetryAfter(err); ra != 100*time.Millisecond {
			t.Errorf("RetryAfter = %v, want 100ms", ra)
		}
		// The refused wait took nothing.
		time.Sleep(100 * time.Millisecond)
		if !l.Allow() {
			t.Error("token missing after a refused Wait")
		}
		if s := l.Stats(); s.Rejected != 1 || s.Allowed != 2 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestWaitFailsFastPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 1})
		l.Allow()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := l.Wait(ctx); !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("Wait = %v, want ErrLimited", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait slept %v before failing", d)
		}
		// A deadline exactly at the token leaves no time to run: refused.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		if err := l.Wait(ctx2); !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("Wait with the deadline at the token = %v, want ErrLimited", err)
		}
		ctx3, cancel3 := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel3()
		if err := l.Wait(ctx3); err != nil {
			t.Fatalf("Wait with time to spare = %v", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("Wait returned after %v, want 100ms", d)
		}
	})
}

func TestWaitCancelledReturnsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 1})
		l.Allow()
		ctx, cancel := context.WithCancelCause(context.Background())
		stop := errors.New("caller gave up")
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(ctx) }()
		time.Sleep(30 * time.Millisecond)
		synctest.Wait()
		cancel(stop)
		if err := <-errc; !errors.Is(err, stop) {
			t.Fatalf("Wait = %v, want the context's cause", err)
		}
		// Without the token back the next one would be at 200ms.
		start := time.Now()
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 70*time.Millisecond {
			t.Errorf("next Wait took %v, want 70ms", d)
		}
		if s := l.Stats(); s.Allowed != 2 || s.Rejected != 0 || s.Waited != 1 {
			t.Errorf("Stats = %+v, want the cancelled wait uncounted", s)
		}
	})
}

func TestExecuteWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			maxWait time.Duration
			timeout time.Duration // 0: no deadline
			wantErr bool
		}{
			{"reject at once", 0, 0, true},
			{"within MaxWait", 250 * time.Millisecond, 0, false},
			{"past MaxWait", 150 * time.Millisecond, 0, true},
			{"unbounded", -1, 0, false},
			{"unbounded, past deadline", -1, 150 * time.Millisecond, true},
			{"within deadline", -1, 250 * time.Millisecond, false},
		} {
			l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 2, MaxWait: tc.maxWait})
			l.AllowAt(time.Now(), 2)
			l.ReserveAt(time.Now(), 1) // the next token is at 200ms
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			ran := false
			start := time.Now()
			err := sluice.NewPipeline(l).Do(ctx, func(context.Context) error { ran = true; return nil })
			d := time.Since(start)
			if tc.wantErr {
				if !errors.Is(err, ratelimit.ErrLimited) || ran || d != 0 {
					t.Errorf("%s: err %v, ran %v, after %v; want ErrLimited at once", tc.name, err, ran, d)
				}
				continue
			}
			if err != nil || !ran || d != 200*time.Millisecond {
				t.Errorf("%s: err %v, ran %v, after %v; want a run after 200ms", tc.name, err, ran, d)
			}
		}
	})
}

func TestTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 2, MaxWait: 100 * time.Millisecond})
		want := []ratelimit.Decision{
			{Allowed: true},
			{Allowed: true},
			{Allowed: true, Waited: 100 * time.Millisecond},
			{Allowed: true, Waited: 100 * time.Millisecond}, // each Take leaves the next 100ms to wait
		}
		for i, w := range want {
			d, err := l.Take(ctx, 1)
			if err != nil || d != w {
				t.Errorf("Take %d = %+v, %v; want %+v", i, d, err, w)
			}
		}
		// Two tokens would take 200ms, past MaxWait: refused at once.
		start := time.Now()
		if d, err := l.Take(ctx, 2); err != nil || d.Allowed || d.RetryAfter != 200*time.Millisecond || time.Since(start) != 0 {
			t.Errorf("Take(2) = %+v, %v after %v; want refused at once, retry after 200ms", d, err, time.Since(start))
		}
		if _, err := l.Take(ctx, 3); err == nil || errors.Is(err, ratelimit.ErrLimited) {
			t.Errorf("Take(3) above Burst = %v, want a plain error", err)
		}
		// MaxWait zero: refused at once, one token's retry-after.
		l0 := ratelimit.MustNew(ratelimit.Config{Rate: 10, Burst: 1})
		l0.Allow()
		if d, err := l0.Take(ctx, 1); err != nil || d != (ratelimit.Decision{RetryAfter: 100 * time.Millisecond}) {
			t.Errorf("Take on an empty bucket = %+v, %v; want refused, retry after 100ms", d, err)
		}
		if d, err := l.Take(ctx, 0); err != nil || !d.Allowed {
			t.Errorf("Take(0) = %+v, %v", d, err)
		}
	})
}

// fakeLimiter is a Limiter that answers from a script, as a Redis
// backend would.
type fakeLimiter struct {
	d   ratelimit.Decision
	err error
}

func (f fakeLimiter) Take(context.Context, int) (ratelimit.Decision, error) { return f.d, f.err }

func TestNewPolicy(t *testing.T) {
	down := errors.New("redis: connection refused")
	for _, tc := range []struct {
		lim     fakeLimiter
		wantRun bool
		check   func(error) bool
	}{
		{fakeLimiter{d: ratelimit.Decision{Allowed: true}}, true, func(err error) bool { return err == nil }},
		{fakeLimiter{d: ratelimit.Decision{RetryAfter: time.Second}}, false, func(err error) bool {
			ra, _ := sluice.RetryAfter(err)
			return errors.Is(err, ratelimit.ErrLimited) && errors.Is(err, sluice.ErrRejected) && ra == time.Second
		}},
		{fakeLimiter{err: down}, false, func(err error) bool { return errors.Is(err, down) && !errors.Is(err, sluice.ErrRejected) }},
	} {
		ran := false
		err := sluice.NewPipeline(ratelimit.NewPolicy(tc.lim)).Do(context.Background(), func(context.Context) error { ran = true; return nil })
		if ran != tc.wantRun || !tc.check(err) {
			t.Errorf("limiter %+v: ran %v, err %v", tc.lim, ran, err)
		}
	}
	if err := (ratelimit.Decision{RetryAfter: 2 * time.Second}).Err(); err.Error() != "ratelimit: rate limited, retry after 2s" {
		t.Errorf("Decision.Err() = %q", err)
	}
}
