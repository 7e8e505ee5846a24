package hedge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
	"github.com/sluice-go/sluice/retry"
)

// A call whose first attempt has not answered within the delay gets a
// second one, which hedge.Attempt lets the work send to another replica.
// The first good answer is taken; the slow attempt is cancelled, with the
// cause ErrSuperseded, and waited for before the call returns.
func ExampleHedge() {
	h := hedge.MustNew(hedge.Config{Name: "catalog", Delay: 10 * time.Millisecond})
	p := sluice.NewPipeline(h)
	replicas := []string{"replica-a", "replica-b"}

	answer, err := sluice.Get(context.Background(), p, func(ctx context.Context) (string, error) {
		replica := replicas[hedge.Attempt(ctx)%len(replicas)]
		if replica == "replica-a" {
			<-ctx.Done() // a stalled connection
			fmt.Println(replica, "stopped:", context.Cause(ctx))
			return "", ctx.Err()
		}
		return "answer from " + replica, nil
	})
	fmt.Println(answer, err)
	fmt.Printf("%+v\n", h.Stats())
	// Output:
	// replica-a stopped: hedge: another attempt answered first
	// answer from replica-b <nil>
	// {Calls:1 NotIdempotent:0 Hedges:1 Won:1 Refused:0}
}

// Hedges and retries share one budget of extra attempts when the Hedge is
// given the Retry's: the hedge below is counted by the budget as a retry.
func ExampleConfig_budget() {
	rt := retry.MustNew(retry.Config{})
	h := hedge.MustNew(hedge.Config{Delay: time.Millisecond, Budget: rt.Budget()})
	p := sluice.NewPipeline(rt, h)

	err := p.Do(context.Background(), func(ctx context.Context) error {
		if hedge.Attempt(ctx) == 0 {
			<-ctx.Done() // stalled until the hedge answers
			return ctx.Err()
		}
		return nil
	})
	_, retries := rt.Budget().(*retry.RatioBudget).CountsAt(time.Now())
	fmt.Println(err, "| hedges:", h.Stats().Hedges, "| retries the budget counted:", retries)
	// Output: <nil> | hedges: 1 | retries the budget counted: 1
}

// The delay can follow the policy's own latency: here the 95th percentile
// of recent first attempts, 50 ms until there are 100 of them, and never
// below 5 ms or above one second.
func ExampleConfig_percentile() {
	h := hedge.MustNew(hedge.Config{
		Delay:      50 * time.Millisecond,
		Percentile: 0.95,
		MinDelay:   5 * time.Millisecond,
		MaxDelay:   time.Second,
	})
	now := time.Now()
	fmt.Println("before:", h.DelayAt(now))
	for i := range 100 {
		h.ObserveAt(now, time.Duration(1+i)*time.Millisecond) // 1 ms to 100 ms
	}
	d := h.DelayAt(now)
	fmt.Println("after: 95 ms within 1/32:", d >= 92*time.Millisecond && d <= 98*time.Millisecond)
	// Output:
	// before: 50ms
	// after: 95 ms within 1/32: true
}
