package sluiceredis_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// run: its keys are worth no fsync) from N concurrent callers, on one key
// whose limit is never reached, so that every decision is a full script
// run. Beside it, in the same run and on the same server: a plain INCR
// through a go-redis client at the same concurrency (the client's
// ceiling), and redis-benchmark -t incr with N connections when it is
// installed (the server's). The variants: unbatched (one EVALSHA per
// round trip, as before batching), pipelined (the default: concurrent
// calls share a pipeline) and lease=100 (each round trip also leases up to
// 100 tokens). docs/benchmarks.md has the figures.
func BenchmarkLimiterTake(b *testing.B) {
	srv := redistest.Start(b, redistest.AppendFsync("everysec"))
	variants := []struct {
		name  string
		lease int
		plain bool
	}{{"unbatched", 0, true}, {"pipelined", 0, false}, {"lease=100", 100, false}}
	for _, n := range []int{1, 16, 64} {
		for _, v := range variants {
			b.Run(fmt.Sprintf("callers=%d/%s", n, v.name), func(b *testing.B) {
				l, err := sluiceredis.NewLimiter(sluiceredis.LimiterConfig{
					Client: srv.Client(), Key: sluiceredis.LimiterKey("bench", v.name),
					Rate: 1e9, Burst: 1e6, Timeout: time.Second, Lease: v.lease,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				if v.plain {
					sluiceredis.Unbatched(l)
				}
				run(b, n, "decisions/s", func() error {
					d, err := l.Take(context.Background(), 1)
					if err == nil && !d.Allowed {
						err = fmt.Errorf("refused: %+v", d)
					}
					return err
				})
			})
		}
		b.Run(fmt.Sprintf("callers=%d/incr", n), func(b *testing.B) {
			c := srv.Client()
			run(b, n, "ops/s", func() error { return c.Incr(context.Background(), "bench:incr").Err() })
		})
		b.Run(fmt.Sprintf("callers=%d/redis-benchmark", n), func(b *testing.B) {
			redisBenchmark(b, srv, n)
		})
	}
}

// redisBenchmark runs redis-benchmark -t incr with conns connections and
// b.N requests against srv and reports its requests per second and
// latency percentiles. It skips when redis-benchmark is not installed.
func redisBenchmark(b *testing.B, srv *redistest.Server, conns int) {
	path, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.Skip("redis-benchmark is not installed")
	}
	host, port, _ := net.SplitHostPort(srv.Addr())
	out, err := exec.Command(path, "-h", host, "-p", port, "-t", "incr", "-n", strconv.Itoa(max(b.N, 1000)),
		"-c", strconv.Itoa(conns), "--csv").Output()
	if err != nil {
		b.Fatalf("redis-benchmark: %v", err)
	}
	// "INCR","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.ReplaceAll(strings.TrimSpace(line), `"`, ""), ",")
		if len(f) < 7 || f[0] != "INCR" {
			continue
		}
		rps, _ := strconv.ParseFloat(f[1], 64)
		p50, _ := strconv.ParseFloat(f[4], 64)
		p99, _ := strconv.ParseFloat(f[6], 64)
		b.ReportMetric(rps, "ops/s")
		b.ReportMetric(p50*1e3, "p50-µs")
		b.ReportMetric(p99*1e3, "p99-µs")
		return
	}
	b.Fatalf("redis-benchmark printed no INCR line:\n%s", out)
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
