package pool_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice/proxy/pool"
	"github.com/sluice-go/sluice/sluicetest"
)

// A replica that fails five times in a row is ejected; a retry goes to
// another replica; a passing health check puts the ejected one on trial at
// once, and three trial successes return it.
func Example() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := pool.New(pool.Config{
		Name:     "orders",
		Balancer: pool.RoundRobin,
		Replicas: []pool.Endpoint{{Addr: "http://a:8080"}, {Addr: "http://b:8080"}, {Addr: "http://c:8080"}},
		Health:   pool.Health{Interval: 200 * time.Millisecond},
		Clock:    sluicetest.NewFakeClock(start), // virtual time throughout
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	a := p.Replicas()[0]

	now := start
	for a.Breaker().StateAt(now).String() == "closed" {
		at, _ := p.PickAt(now)
		o := pool.Success
		if at.Replica() == a {
			o = pool.Failure
			retry, _ := p.PickAt(now, a)
			fmt.Println("retry on", retry.Replica().Addr())
			retry.DoneAt(now, 10*time.Millisecond, pool.Success)
		}
		at.DoneAt(now, 10*time.Millisecond, o)
		now = now.Add(time.Millisecond)
	}
	fmt.Println(a.Addr(), a.Breaker().StateAt(now), a.Breaker().StatsAt(now).LastTrip.Reason)

	p.CheckResultAt(now, a, errors.New("connection refused")) // one failed check: not down yet
	p.CheckResultAt(now.Add(200*time.Millisecond), a, nil)
	now = now.Add(200 * time.Millisecond)
	fmt.Println("after a passing check:", a.Breaker().StateAt(now))

	for trials := 0; trials < 3; {
		at, _ := p.PickAt(now)
		if at.Trial() {
			trials++
		}
		at.DoneAt(now, 10*time.Millisecond, pool.Success)
	}
	fmt.Println("after three trials:", a.Breaker().StateAt(now))
	// Output:
	// retry on http://b:8080
	// retry on http://b:8080
	// retry on http://b:8080
	// retry on http://b:8080
	// retry on http://b:8080
	// http://a:8080 open consecutive-failures
	// after a passing check: half-open
	// after three trials: closed
}
