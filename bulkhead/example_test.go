package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/bulkhead"
)

// A bulkhead in a pipeline: while one call runs, a second finds the only
// permit taken and no queue, and is rejected without running.
func Example() {
	b := bulkhead.MustNew(bulkhead.Config{Name: "agents", MaxConcurrent: 1})
	p := sluice.NewPipeline(b)
	ctx := context.Background()

	err := p.Do(ctx, func(ctx context.Context) error {
		return p.Do(ctx, func(context.Context) error {
			fmt.Println("never runs")
			return nil
		})
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, bulkhead.ErrFull), errors.Is(err, sluice.ErrRejected))
	st := b.Stats()
	fmt.Printf("active %d, admitted %d, rejected %d\n", st.Active, st.Admitted, st.Rejected)
	// Output:
	// bulkhead: "agents" full: every permit in use and no room in the queue
	// true true
	// active 0, admitted 1, rejected 1
}

// Holding permits by hand, as a proxy does around a request it streams.
func ExampleBulkhead_TryAcquire() {
	b := bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 2})
	fmt.Println(b.TryAcquire(), b.TryAcquire(), b.TryAcquire())
	b.Release()
	fmt.Println(b.TryAcquire())
	b.Release()
	b.Release()
	fmt.Println(b.Stats().Active)
	// Output:
	// true true false
	// true
	// 0
}

// A full queue and a wait that runs out are told apart by the error's
// Reason; both say when to come back.
func ExampleFullError() {
	b := bulkhead.MustNew(bulkhead.Config{Name: "db", MaxConcurrent: 1, MaxQueue: 1, MaxWait: 10 * time.Millisecond, RetryAfter: time.Second})
	b.TryAcquire()
	defer b.Release()

	err := b.Acquire(context.Background()) // queues, then gives up
	var fe *bulkhead.FullError
	if errors.As(err, &fe) {
		fmt.Println(fe.Reason(), fe.RetryAfter())
	}
	fmt.Println(err)
	// Output:
	// wait-expired 1s
	// bulkhead: "db" full: no permit came free within the max wait of 10ms
}

// A Shared bulkhead borrows from its group: "reports" may run 2 calls
// beyond its own 4 while "orders", its neighbour, is idle.
func ExampleGroup() {
	g := &bulkhead.Group{}
	reports := bulkhead.MustNew(bulkhead.Config{Name: "reports", MaxConcurrent: 4, Isolation: bulkhead.Shared, OverflowRatio: 0.5, Group: g})
	orders := bulkhead.MustNew(bulkhead.Config{Name: "orders", MaxConcurrent: 4, Group: g})

	n := 0
	for reports.TryAcquire() {
		n++
	}
	fmt.Printf("reports runs %d of the group's %d\n", n, g.Capacity())
	// orders always gets its own share, even now.
	m := 0
	for orders.TryAcquire() {
		m++
	}
	fmt.Printf("orders runs %d; the group holds %d\n", m, g.InUse())
	// Output:
	// reports runs 6 of the group's 8
	// orders runs 4; the group holds 10
}

// An Estimator is a state machine in virtual time: AIMD grows the limit
// while calls are fast and cuts it when one is slower than the threshold.
func ExampleNewEstimator() {
	est, _ := bulkhead.NewEstimator(bulkhead.AdaptiveConfig{
		Algorithm:        bulkhead.AIMD,
		InitialLimit:     10,
		LatencyThreshold: 100 * time.Millisecond,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, rtt := range []time.Duration{20, 20, 20, 250, 20} {
		now = now.Add(time.Second)
		limit := est.SampleAt(now, rtt*time.Millisecond, est.Limit(), false)
		fmt.Printf("%v → %d\n", rtt*time.Millisecond, limit)
	}
	// Output:
	// 20ms → 11
	// 20ms → 12
	// 20ms → 13
	// 250ms → 11
	// 20ms → 11
}

// Update changes the limit of a running bulkhead; calls already running
// keep their permits.
func ExampleBulkhead_Update() {
	b := bulkhead.MustNew(bulkhead.Config{Name: "api", MaxConcurrent: 2})
	b.TryAcquire()
	b.TryAcquire()

	cfg := b.Config()
	cfg.MaxConcurrent = 1
	if err := b.Update(cfg); err != nil {
		fmt.Println(err)
	}
	st := b.Stats()
	fmt.Printf("active %d, limit %d, utilization %.0f%%\n", st.Active, st.Limit, 100*st.Utilization)
	b.Release()
	b.Release()
	fmt.Println(b.TryAcquire())
	// Output:
	// active 2, limit 1, utilization 200%
	// true
}

// The explicit-time queue, for a caller that waits in virtual time instead
// of blocking a goroutine: EnqueueAt takes a permit or a place in line,
// ReleaseAt hands freed permits to tickets in FIFO order, and ExpireAt
// turns away those whose MaxWait has run out.
func ExampleBulkhead_EnqueueAt() {
	b := bulkhead.MustNew(bulkhead.Config{Name: "db", MaxConcurrent: 1, MaxQueue: 2, MaxWait: time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	_, admitted, _ := b.EnqueueAt(at(0))
	fmt.Println("first admitted:", admitted)
	second, _, _ := b.EnqueueAt(at(100))
	third, _, _ := b.EnqueueAt(at(200))
	_, _, err := b.EnqueueAt(at(300))
	fmt.Println("fourth:", err)

	granted := b.ReleaseAt(at(500)) // the first call ends
	fmt.Println("granted the second:", len(granted) == 1 && granted[0] == second)
	expired, err := b.ExpireAt(at(1200)) // the third has waited 1s
	fmt.Println("expired the third:", len(expired) == 1 && expired[0] == third, err)
	b.Release() // the second call ends

	st := b.Stats()
	fmt.Printf("admitted %d, rejected %d, waited %d\n", st.Admitted, st.Rejected, st.Waited)
	// Output:
	// first admitted: true
	// fourth: bulkhead: "db" full: every permit in use and no room in the queue
	// granted the second: true
	// expired the third: true bulkhead: "db" full: no permit came free within the max wait of 1s
	// admitted 2, rejected 2, waited 2
}
