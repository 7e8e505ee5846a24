package timeout_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/timeout"
)

// A call that outlives its limit is cancelled through its context; the
// error says so in every way callers test for.
func Example() {
	p := sluice.NewPipeline(timeout.After(20 * time.Millisecond))

	err := p.Do(context.Background(), func(ctx context.Context) error {
		select {
		case <-time.After(time.Minute): // a slow upstream
			return nil
		case <-ctx.Done():
			fmt.Println("work stopped because:", context.Cause(ctx))
			return ctx.Err()
		}
	})

	fmt.Println(err)
	fmt.Println("ErrExceeded:", errors.Is(err, timeout.ErrExceeded))
	var te interface{ Timeout() bool }
	fmt.Println("Timeout():", errors.As(err, &te) && te.Timeout())
	fmt.Println("class:", sluice.Classify(context.Background(), err).Type)
	// Output:
	// work stopped because: timeout: exceeded 20ms
	// timeout: exceeded 20ms: context deadline exceeded
	// ErrExceeded: true
	// Timeout(): true
	// class: timeout
}

// Placed inside a retry policy, a Timeout bounds each attempt; placed
// outside, it bounds the whole call, backoff sleeps included.
func Example_placement() {
	perAttempt := timeout.After(2 * time.Second)
	overall, err := timeout.New(timeout.Config{Name: "agents", Timeout: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	retry := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		var err error
		for range 3 {
			if err = next.Run(ctx); err == nil {
				return nil
			}
		}
		return err
	})
	p := sluice.NewPipeline(overall, retry, perAttempt)

	calls := 0
	err = p.Do(context.Background(), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("flaky")
		}
		return nil
	})
	fmt.Println(calls, err, overall.Stats(), perAttempt.Stats())
	// Output: 3 <nil> {1 0} {3 0}
}

// A limit read from configuration goes through New, which rejects negative
// values with an error naming the field.
func ExampleNew() {
	_, err := timeout.New(timeout.Config{Timeout: -5 * time.Second})
	fmt.Println(err)
	// Output: timeout: Config.Timeout must be >= 0, got -5s
}
