package sluiceredis_test

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
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// reportLatency reports throughput and the p50 and p99 of the latencies.
func reportLatency(b *testing.B, lat [][]time.Duration, elapsed time.Duration, unit string) {
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), unit)
	b.ReportMetric(float64(all[len(all)/2])/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)])/float64(time.Microsecond), "p99-µs")
}

// run calls op b.N times from n goroutines and reports ops/s and latency.
func run(b *testing.B, n int, unit string, op func() error) {
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
				if err := op(); err != nil {
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
	reportLatency(b, lat, elapsed, unit)
}

// BenchmarkLimiterTake measures shared-limiter decisions per second against
// one local redis-server (appendfsync everysec, as a limiter's server would
// run: its keys are worth no fsync) from N concurrent callers, beside a
// plain INCR through the same client as the client's own ceiling. The
// server's own ceiling is redis-benchmark -t incr (docs/benchmarks.md).
func BenchmarkLimiterTake(b *testing.B) {
	srv := redistest.Start(b, redistest.AppendFsync("everysec"))
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d/limiter", n), func(b *testing.B) {
			l, err := sluiceredis.NewLimiter(sluiceredis.LimiterConfig{
				Client: srv.Client(), Key: sluiceredis.LimiterKey("bench", ""),
				Rate: 1e9, Burst: 1e6, Timeout: time.Second,
			})
			if err != nil {
				b.Fatal(err)
			}
			run(b, n, "decisions/s", func() error {
				d, err := l.Take(context.Background(), 1)
				if err == nil && !d.Allowed {
					err = fmt.Errorf("refused: %+v", d)
				}
				return err
			})
		})
		b.Run(fmt.Sprintf("callers=%d/incr", n), func(b *testing.B) {
			c := srv.Client()
			run(b, n, "ops/s", func() error { return c.Incr(context.Background(), "bench:incr").Err() })
		})
	}
}

// BenchmarkStorePut measures acknowledged puts from N producers into the
// Redis store (appendfsync always: a put survives a crash of Redis) beside
// the bbolt store on the real disk (group commit, fsync before Put
// returns), with the same 256-byte message as dlq's BenchmarkPut.
func BenchmarkStorePut(b *testing.B) {
	srv := redistest.Start(b, redistest.AppendFsync("always"))
	msg := dlq.Message{Queue: "bench", Payload: make([]byte, 256), Headers: map[string]string{"Method": "POST"}}
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("producers=%d/redis", n), func(b *testing.B) {
			s, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: srv.Client(), Prefix: fmt.Sprintf("bench:{%d}", prefixes.Add(1)), MaxQueueMessages: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run(b, n, "msgs/s", func() error { _, err := s.Put(context.Background(), msg); return err })
		})
		b.Run(fmt.Sprintf("producers=%d/bolt", n), func(b *testing.B) {
			s, err := dlq.OpenBolt(filepath.Join(b.TempDir(), "bench.db"), dlq.Options{MaxQueueMessages: -1, MaxQueueBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run(b, n, "msgs/s", func() error { _, err := s.Put(context.Background(), msg); return err })
		})
	}
}
