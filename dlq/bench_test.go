package dlq_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
)

// BenchmarkPut measures durable puts (fsync before Put returns) from N
// concurrent producers into a file on the real disk: "grouped" is the store
// as shipped (group commit), "naive" the same store with MaxBatchSize 1,
// one transaction and fsync per message. It reports throughput (msgs/s) and
// the 99th-percentile latency of one Put (p99-ms).
func BenchmarkPut(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		for _, mode := range []string{"grouped", "naive"} {
			b.Run(fmt.Sprintf("producers=%d/%s", n, mode), func(b *testing.B) {
				opt := dlq.Options{MaxQueueMessages: -1, MaxQueueBytes: -1}
				if mode == "naive" {
					opt.MaxBatchSize = 1
				}
				s, err := dlq.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), opt)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				msg := dlq.Message{Queue: "bench", Payload: make([]byte, 256), Headers: map[string]string{"Method": "POST"}}
				lat := make([][]time.Duration, n)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for p := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							t0 := time.Now()
							if _, err := s.Put(context.Background(), msg); err != nil {
								b.Error(err)
								return
							}
							lat[p] = append(lat[p], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				p99 := all[min(len(all)-1, len(all)*99/100)]
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
				b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
			})
		}
	}
}
