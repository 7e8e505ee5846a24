package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

// A flaky call is retried with exponential backoff until it succeeds; the
// OnRetry hook shows each wait.
func ExampleNew() {
	r, err := retry.New(retry.Config{
		Name:        "send-command",
		MaxAttempts: 5,
		Backoff:     retry.Exponential(time.Millisecond, 2, 10*time.Millisecond),
		Jitter:      retry.NoJitter, // so that the output is stable
		OnRetry: func(e retry.Event) {
			fmt.Printf("attempt %d failed (%v); retrying in %v\n", e.Attempt, e.Err, e.Delay)
		},
	})
	if err != nil {
		panic(err)
	}
	p := sluice.NewPipeline(r)

	calls := 0
	err = p.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return &sluice.StatusError{Code: 503}
		}
		return nil
	})
	st := r.Stats()
	fmt.Printf("err=%v after %d attempts; %d call, success rate %.0f%%\n", err, calls, st.Calls, 100*st.SuccessRate)
	// Output:
	// attempt 1 failed (HTTP 503 Service Unavailable); retrying in 1ms
	// attempt 2 failed (HTTP 503 Service Unavailable); retrying in 2ms
	// err=<nil> after 3 attempts; 1 call, success rate 100%
}

// Errors say what happened: a non-retryable error comes back as it is, a
// call that runs out of attempts fails with ErrExhausted, which still leads to
// the last error.
func ExampleExhaustedError() {
	r, _ := retry.New(retry.Config{MaxAttempts: 2, Backoff: retry.Constant(0)})
	p := sluice.NewPipeline(r)

	err := p.Do(context.Background(), func(context.Context) error { return &sluice.StatusError{Code: 403} })
	fmt.Println("403:", err, "| exhausted:", errors.Is(err, retry.ErrExhausted))

	err = p.Do(context.Background(), func(context.Context) error { return &sluice.StatusError{Code: 502} })
	var status *sluice.StatusError
	fmt.Println("502:", err, "| exhausted:", errors.Is(err, retry.ErrExhausted), "| status:", errors.As(err, &status) && status.Code == 502)
	// Output:
	// 403: HTTP 403 Forbidden | exhausted: false
	// 502: retry: gave up after 2 attempts: HTTP 502 Bad Gateway | exhausted: true | status: true
}

// One budget shared by the policies that call one dependency caps their
// retries together. Here it allows retries up to 10 % of recent first
// attempts, with no reserve, so that the refusal shows at once.
func ExampleNewBudget() {
	budget, _ := retry.NewBudget(retry.BudgetConfig{Ratio: 0.1, MinRetriesPerSecond: -1})
	reads, _ := retry.New(retry.Config{Name: "reads", Backoff: retry.Constant(0), Budget: budget})
	writes, _ := retry.New(retry.Config{Name: "writes", Backoff: retry.Constant(0), Budget: budget})

	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection reset") }
	for range 9 {
		_ = sluice.NewPipeline(reads).Do(ctx, ok)
	}
	// 10 first attempts (9 reads and this write) allow one retry: the write
	// gets it, and is refused a second.
	err := sluice.NewPipeline(writes).Do(ctx, down)
	fmt.Println("first write:", errors.Is(err, retry.ErrExhausted), errors.Is(err, retry.ErrBudgetExhausted))
	err = sluice.NewPipeline(reads).Do(ctx, down)
	fmt.Println("then a read:", errors.Is(err, retry.ErrBudgetExhausted), errors.Is(err, sluice.ErrRejected))
	fmt.Println(err)
	// Output:
	// first write: false true
	// then a read: true true
	// retry: retry budget exhausted after 1 attempt: connection reset
}

// The ready-made policies carry the SysManage resilience document's numbers; adjust the
// returned Config before New.
func ExampleNetwork() {
	for _, cfg := range []retry.Config{retry.Network(), retry.Database(), retry.API()} {
		fmt.Printf("%-8s %d attempts, %v, jitter %v\n", cfg.Name, cfg.MaxAttempts, cfg.Backoff, cfg.Jitter)
	}
	cfg := retry.Network()
	cfg.MaxAttempts = 3
	r, _ := retry.New(cfg)
	fmt.Println(r.Name(), r.Config().MaxAttempts)
	// Output:
	// network  5 attempts, exponential(1s ×2 cap 30s), jitter ±10%
	// database 3 attempts, exponential(500ms ×2 cap 10s), jitter ±10%
	// api      4 attempts, exponential(2s ×1.5 cap 1m0s), jitter ±10%
	// network 3
}

// Config.Delay computes the executor's waits as a pure function, so a
// simulator can replay them; with no jitter they are exact.
func ExampleConfig_Delay() {
	cfg := retry.Config{Backoff: retry.Exponential(time.Second, 2, 30*time.Second), Jitter: retry.NoJitter}
	var prev time.Duration
	for n := 1; n <= 6; n++ {
		var wait time.Duration
		wait, prev = cfg.Delay(n, prev, nil)
		fmt.Print(wait, " ")
	}
	fmt.Println()
	// Output:
	// 1s 2s 4s 8s 16s 30s
}

// A Selector starts each operation type with the SysManage document's mapping and learns
// which strategy serves it best.
func ExampleSelector() {
	sel, _ := retry.NewSelector(retry.SelectorConfig{Seed: 1})
	for _, typ := range []string{"network", "database", "api"} {
		fmt.Println(typ, "→", sel.For(typ).Best())
	}

	// A dependency whose calls fail once, then succeed, is served better by
	// a second attempt than by the mapping's single one.
	sel, _ = retry.NewSelector(retry.SelectorConfig{
		Strategies: []retry.Strategy{
			{Name: "once", Config: retry.Config{MaxAttempts: 1}},
			{Name: "twice", Config: retry.Config{MaxAttempts: 2, Backoff: retry.Constant(0), Budget: retry.NoBudget{}}},
		},
		Mapping: map[string]string{"flaky": "once"},
		Seed:    1,
	})
	flaky := sel.For("flaky")
	fmt.Println("flaky →", flaky.Best())
	p := sluice.NewPipeline(flaky)
	for range 100 {
		failed := false
		_ = p.Do(context.Background(), func(context.Context) error {
			if !failed {
				failed = true
				return errors.New("connection reset")
			}
			return nil
		})
	}
	fmt.Println("flaky →", flaky.Best())
	for _, a := range flaky.Arms() {
		fmt.Printf("%s: %d calls, %d retries\n", a.Name, a.Retry.Calls, a.Retry.Retries)
	}
	// Output:
	// network → exponential
	// database → linear
	// api → adaptive
	// flaky → once
	// flaky → twice
	// once: 50 calls, 0 retries
	// twice: 50 calls, 50 retries
}

// ParseRetryAfter reads both forms of the HTTP header.
func ExampleParseRetryAfter() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"120", "Thu, 01 Jan 2026 12:00:30 GMT", "later"} {
		d, ok := retry.ParseRetryAfter(v, now)
		fmt.Println(d, ok)
	}
	// Output:
	// 2m0s true
	// 30s true
	// 0s false
}

// A Call drives the policy in explicit time, as a simulator does: each
// attempt's outcome is reported with the time it happened, and FailedAt
// answers with the wait before the next attempt or the error that ends the
// call. The decisions are Execute's own.
func ExampleRetry_BeginAt() {
	r, _ := retry.New(retry.Config{
		MaxAttempts: 3, Backoff: retry.Exponential(time.Second, 2, 10*time.Second), Jitter: retry.NoJitter,
		Budget: retry.NoBudget{},
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := r.BeginAt(now, nil)
	down := &sluice.StatusError{Code: 503}
	for {
		now = now.Add(100 * time.Millisecond) // the attempt takes 100ms and fails
		wait, final := c.FailedAt(context.Background(), now, down)
		if final != nil {
			fmt.Println("attempt", c.Attempts(), "ends the call:", final)
			break
		}
		fmt.Println("attempt", c.Attempts(), "failed; retry in", wait)
		now = now.Add(wait)
	}
	st := r.Stats()
	fmt.Println(st.Calls, "call,", st.Attempts, "attempts,", st.Exhausted, "exhausted")
	// Output:
	// attempt 1 failed; retry in 1s
	// attempt 2 failed; retry in 2s
	// attempt 3 ends the call: retry: gave up after 3 attempts: HTTP 503 Service Unavailable
	// 1 call, 3 attempts, 1 exhausted
}

// Begin, Failed and Succeeded are the same steps at the time of the policy's
// Clock, for a caller that runs its attempts itself (an event loop, a
// request it cannot wrap in a function) on real or fake time.
func ExampleRetry_Begin() {
	clock := sluicetest.NewFakeClock(time.Time{})
	r, _ := retry.New(retry.Config{
		MaxAttempts: 3, Backoff: retry.Constant(time.Second), Jitter: retry.NoJitter,
		Budget: retry.NoBudget{}, Clock: clock,
	})
	c := r.Begin(nil)
	for _, err := range []error{&sluice.StatusError{Code: 503}, nil} {
		clock.Advance(200 * time.Millisecond) // the attempt
		if err == nil {
			c.Succeeded()
			break
		}
		wait, _ := c.Failed(context.Background(), err)
		fmt.Println("attempt", c.Attempts(), "failed; retry in", wait)
		clock.Advance(wait)
	}
	st := r.Stats()
	fmt.Println(st.Successes, "success after", st.Attempts, "attempts, in", st.Duration.Sum, "s")
	// Output:
	// attempt 1 failed; retry in 1s
	// 1 success after 2 attempts, in 1.4 s
}
