package window_test

import (
	"fmt"
	"time"

	"github.com/sluice-go/sluice/internal/window"
)

// A breaker's time window: outcomes of the last minute, leaving it ten
// seconds at a time.
func ExampleBuckets() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := window.NewBuckets(time.Minute, 6)
	w.RecordAt(start, window.Failure)
	w.RecordAt(start.Add(15*time.Second), 0)
	w.RecordAt(start.Add(30*time.Second), window.Failure|window.Slow)

	for _, at := range []time.Duration{30 * time.Second, 60 * time.Second, 70 * time.Second, 90 * time.Second} {
		c := w.CountsAt(start.Add(at))
		fmt.Printf("at %v: %d calls, failure rate %.2f, slow rate %.2f\n", at, c.Calls, c.FailureRate(), c.SlowRate())
	}
	// Output:
	// at 30s: 3 calls, failure rate 0.67, slow rate 0.33
	// at 1m0s: 2 calls, failure rate 0.50, slow rate 0.50
	// at 1m10s: 1 calls, failure rate 1.00, slow rate 1.00
	// at 1m30s: 0 calls, failure rate 0.00, slow rate 0.00
}

// A count window: the last three outcomes.
func ExampleRing() {
	r := window.NewRing(3)
	for _, f := range []uint8{window.Failure, 0, 0, 0} {
		r.Record(f)
		fmt.Println(r.Counts())
	}
	// Output:
	// {1 1 0}
	// {2 1 0}
	// {3 1 0}
	// {3 0 0}
}
