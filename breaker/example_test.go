package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicetest"
)

var errDown = errors.New("connection refused")

// A breaker in a pipeline: three failures open it, callers are then turned
// away with ErrOpen and told when to come back, and after OpenFor a probe
// call closes it again.
func Example() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{
		Name:             "agents",
		FailureThreshold: 3,
		OpenFor:          30 * time.Second,
		SuccessThreshold: 1,
		Clock:            clock,
		OnStateChange: func(c breaker.StateChange) {
			fmt.Printf("%s: %v -> %v\n", c.Name, c.From, c.To)
		},
	})
	p := sluice.NewPipeline(b)
	ctx := context.Background()

	for range 3 {
		_ = p.Do(ctx, func(context.Context) error { return errDown })
	}
	err := p.Do(ctx, func(context.Context) error { return nil })
	fmt.Println(err, errors.Is(err, breaker.ErrOpen), errors.Is(err, sluice.ErrRejected))
	wait, _ := sluice.RetryAfter(err)
	fmt.Println("retry after", wait)

	clock.Advance(wait)
	fmt.Println(b.State())
	_ = p.Do(ctx, func(context.Context) error { return nil })
	// Output:
	// agents: closed -> open
	// breaker "agents": circuit open true true
	// retry after 30s
	// agents: open -> half-open
	// half-open
	// agents: half-open -> closed
}

// The state machine with time as an argument, as a simulator drives it: a
// failure rate of 50 % over the last 4 calls opens the breaker.
func ExampleBreaker_AllowAt() {
	b := breaker.MustNew(breaker.Config{FailureRateThreshold: 0.5, WindowSize: 4, MinimumCalls: 4, OpenFor: time.Minute})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, o := range []breaker.Outcome{breaker.Success, breaker.Failure, breaker.Success, breaker.Failure} {
		p, err := b.AllowAt(now)
		if err != nil {
			fmt.Println(err)
			return
		}
		now = now.Add(20 * time.Millisecond) // the call took 20ms
		p.DoneAt(now, o, 20*time.Millisecond)
		fmt.Println("call", i, o, b.StateAt(now))
	}
	_, err := b.AllowAt(now.Add(time.Second))
	fmt.Println(err)
	fmt.Println(b.StateAt(now.Add(time.Minute)))
	// Output:
	// call 0 success closed
	// call 1 failure closed
	// call 2 success closed
	// call 3 failure open
	// breaker: circuit open
	// half-open
}

// The two-step form for callers that cannot wrap the call in a function:
// Allow before the call, Done after it, with the breaker's clock.
func ExampleBreaker_Allow() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{FailureThreshold: 2, OpenFor: time.Minute, Clock: clock})
	for i := range 3 {
		p, err := b.Allow()
		if err != nil {
			fmt.Println("call", i, "rejected:", err)
			continue
		}
		start := clock.Now()
		clock.Advance(30 * time.Millisecond) // the call
		p.Done(b.Outcome(context.Background(), errDown), clock.Now().Sub(start))
		fmt.Println("call", i, "failed")
	}
	// Output:
	// call 0 failed
	// call 1 failed
	// call 2 rejected: breaker: circuit open
}

// Done reports the outcome and duration of a permitted call; a call slower
// than SlowCallDuration counts as slow.
func ExamplePermit_Done() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{SlowCallDuration: time.Second, Clock: clock})
	for _, elapsed := range []time.Duration{200 * time.Millisecond, 3 * time.Second} {
		p, _ := b.Allow()
		p.Done(breaker.Success, elapsed)
	}
	s := b.Stats()
	fmt.Println(s.Successes, "successes,", s.Slow, "slow")
	// Output:
	// 2 successes, 1 slow
}

// State reads the breaker's clock, so it sees an open period end without
// any call arriving.
func ExampleBreaker_State() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{FailureThreshold: 1, OpenFor: 10 * time.Second, Clock: clock})
	p, _ := b.Allow()
	p.Done(breaker.Failure, 0)
	fmt.Println(b.State())
	clock.Advance(10 * time.Second)
	fmt.Println(b.State())
	// Output:
	// open
	// half-open
}

// A metrics-only breaker is a dry run: it lets every call through while its
// rules decide what they would have done.
func ExampleBreaker_SetMetricsOnly() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{FailureThreshold: 2, Clock: clock})
	b.SetMetricsOnly()
	p := sluice.NewPipeline(b)
	for range 4 {
		err := p.Do(context.Background(), func(context.Context) error { return errDown })
		fmt.Println(err)
	}
	s := b.Stats()
	fmt.Println(s.State, s.Shadow, s.Failures, s.WouldReject)
	// Output:
	// connection refused
	// connection refused
	// connection refused
	// connection refused
	// metrics-only open 4 2
}

// Stats is the snapshot that health checks and metrics read.
func ExampleBreaker_Stats() {
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{Name: "db", FailureThreshold: 1, OpenFor: 10 * time.Second, Clock: clock})
	p := sluice.NewPipeline(b)
	_ = p.Do(context.Background(), func(context.Context) error { return errDown })
	_ = p.Do(context.Background(), func(context.Context) error { return nil })
	clock.Advance(4 * time.Second)
	s := b.Stats()
	fmt.Printf("%s %v calls=%d failures=%d rejected=%d in state %v, next probe in %v\n",
		s.Name, s.State, s.Calls, s.Failures, s.Rejected, s.InState, s.NextProbeIn)
	// Output:
	// db open calls=1 failures=1 rejected=1 in state 4s, next probe in 6s
}

// Outcome is how Execute counts an error; a caller that drives the breaker
// through AllowAt or Allow passes it to Permit.DoneAt or Permit.Done, so
// both count alike.
func ExampleBreaker_Outcome() {
	b := breaker.MustNew(breaker.Config{Name: "api"})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx context.Context
		err error
	}{
		{context.Background(), nil},
		{context.Background(), &sluice.StatusError{Code: 503}},
		{context.Background(), &sluice.StatusError{Code: 404}},
		{gone, context.Canceled},
	} {
		p, _ := b.AllowAt(now)
		o := b.Outcome(c.ctx, c.err)
		p.DoneAt(now, o, 0)
		fmt.Printf("%v: %v\n", c.err, o)
	}
	st := b.StatsAt(now)
	fmt.Println(st.Successes, "successes,", st.Failures, "failure,", st.Ignored, "ignored")
	// Output:
	// <nil>: success
	// HTTP 503 Service Unavailable: failure
	// HTTP 404 Not Found: success
	// context canceled: ignored
	// 2 successes, 1 failure, 1 ignored
}
