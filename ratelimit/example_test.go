package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluicetest"
)

// A bursty limiter of 2 calls per second with a burst of 3: an idle limiter
// lets 3 calls through at once, then one every 500ms.
func ExampleTokenBucket_AllowAt() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.MustNew(ratelimit.Config{Rate: 2, Burst: 3, Clock: sluicetest.NewFakeClock(start)})
	for _, ms := range []int{0, 0, 0, 0, 400, 500, 600, 1000} {
		at := start.Add(time.Duration(ms) * time.Millisecond)
		fmt.Printf("%4dms %v\n", ms, l.AllowAt(at, 1))
	}
	// Output:
	//    0ms true
	//    0ms true
	//    0ms true
	//    0ms false
	//  400ms false
	//  500ms true
	//  600ms false
	// 1000ms true
}

// The same rate, smooth: calls are spaced 500ms apart however long the
// limiter was idle.
func ExampleConfig_smooth() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.MustNew(ratelimit.Config{Rate: 2, Burst: 3, Smooth: true, Clock: sluicetest.NewFakeClock(start)})
	for _, ms := range []int{0, 0, 400, 500, 600, 1000} {
		at := start.Add(time.Duration(ms) * time.Millisecond)
		fmt.Printf("%4dms %v\n", ms, l.AllowAt(at, 1))
	}
	// Output:
	//    0ms true
	//    0ms false
	//  400ms false
	//  500ms true
	//  600ms false
	// 1000ms true
}

// In a pipeline the limiter rejects a call it has no token for with an
// error that every layer above understands: it is a rejection, and it says
// when to come back.
func ExampleTokenBucket_Execute() {
	clock := sluicetest.NewFakeClock(time.Time{})
	limiter := ratelimit.MustNew(ratelimit.Config{Name: "api", Rate: 10, Burst: 1, Clock: clock})
	p := sluice.NewPipeline(limiter)
	call := func(context.Context) error { return nil }

	fmt.Println(p.Do(context.Background(), call))
	err := p.Do(context.Background(), call)
	retryAfter, _ := sluice.RetryAfter(err)
	fmt.Println(errors.Is(err, ratelimit.ErrLimited), errors.Is(err, sluice.ErrRejected), retryAfter)
	fmt.Println(err)
	s := limiter.Stats()
	fmt.Println(s.Allowed, "allowed,", s.Rejected, "rejected")
	// Output:
	// <nil>
	// true true 100ms
	// ratelimit: "api": rate limited, retry after 100ms
	// 1 allowed, 1 rejected
}

// ReserveAt takes tokens for later and says how long to wait; Cancel gives
// them back if the caller changes its mind.
func ExampleTokenBucket_ReserveAt() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.MustNew(ratelimit.Config{Rate: 4, Burst: 1, Clock: sluicetest.NewFakeClock(now)})
	a := l.ReserveAt(now, 1)
	b := l.ReserveAt(now, 1)
	c := l.ReserveAt(now, 1)
	fmt.Println(a.Delay(), b.Delay(), c.Delay())
	c.CancelAt(now)
	fmt.Println(l.ReserveAt(now, 1).Delay())
	// Output:
	// 0s 250ms 500ms
	// 500ms
}

// Wait sleeps on the limiter's clock until a token is there; here a fake
// clock is moved by hand.
func ExampleTokenBucket_Wait() {
	clock := sluicetest.NewFakeClock(time.Time{})
	l := ratelimit.MustNew(ratelimit.Config{Rate: 5, Burst: 1, Clock: clock})
	l.Allow()
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock.BlockUntil(1) // Wait is asleep
		clock.Advance(200 * time.Millisecond)
	}()
	start := clock.Now()
	err := l.Wait(context.Background())
	<-done
	fmt.Println(err, clock.Since(start))
	// Output:
	// <nil> 200ms
}

// Update changes a live limiter, keeping the tokens it holds.
func ExampleTokenBucket_Update() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.MustNew(ratelimit.Config{Rate: 1, Burst: 5, Clock: sluicetest.NewFakeClock(now)})
	l.AllowAt(now, 3)
	if err := l.Update(ratelimit.Config{Rate: 100, Burst: 10}); err != nil {
		fmt.Println(err)
	}
	s := l.Stats()
	fmt.Println(s.Tokens, s.Rate, s.Burst)
	fmt.Println(l.Update(ratelimit.Config{Rate: 100, Burst: -1}))
	// Output:
	// 2 100 10
	// ratelimit: Config.Burst must be >= 0, got -1
}
