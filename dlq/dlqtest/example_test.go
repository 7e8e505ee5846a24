package dlqtest_test

import (
	"context"
	"fmt"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
)

// Memory stands in for a real store in tests of code that dead-letters work.
func ExampleNewMemory() {
	s := dlqtest.NewMemory(nil)
	defer s.Close()
	ctx := context.Background()
	_, _ = s.Put(ctx, dlq.Message{Queue: "agents", Payload: []byte("reboot a-17")})
	stats, _ := s.Stats(ctx)
	fmt.Println(stats[0].Queue, stats[0].Ready)
	// Output: agents 1
}
