package stripe_test

import (
	"fmt"
	"sync"

	"github.com/sluice-go/sluice/internal/stripe"
)

// Many goroutines count into one Counter; a reader sums it afterwards.
func ExampleCounter() {
	var served stripe.Counter
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				served.Inc()
			}
		})
	}
	wg.Wait()
	served.Add(-1000)
	served.Add(42)
	fmt.Println(served.Load())
	// Output: 42
}
