package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

// sidecarConfig is the example policy (retry with budget, breaker, bulkhead,
// a limiter high enough never to reject) in front of one upstream.
const sidecarConfig = `
storage: {dlq: "bolt://%s"}
policies:
  network:
    retry: {max_attempts: 5, backoff: exponential, base_delay: 1s, max_delay: 30s, jitter: full, budget: {ratio: 0.1}}
    circuit_breaker: {failure_rate: 0.5, window: 300s, minimum_calls: 10, open_for: 30s, half_open_calls: 2}
    bulkhead: {max_concurrent: 1000, max_queue: 100, max_wait: 1s}
    rate_limit: {rate: 1000000, per: 1s, burst: 100000}
    timeout: 30s
routes:
  - name: api
    match: {path_prefix: /}
    upstreams: [%s]
    policy: network
`

// BenchmarkSidecar measures requests through a proxy on loopback: the sluice
// sidecar with the example policy, and a bare httputil.ReverseProxy, both in
// front of the same trivial upstream, driven by the same client. ns/op is
// the inverse of throughput; p99-us is each request's latency at the 99th
// percentile.
//
//	go test -run '^$' -bench Sidecar -benchmem -count 6 -cpu 2 .
func BenchmarkSidecar(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	b.Run("sluice", func(b *testing.B) {
		dir := b.TempDir()
		cfg, err := config.Parse("bench.yaml", fmt.Appendf(nil, sidecarConfig, filepath.Join(dir, "dlq.db"), upstream.URL))
		if err != nil {
			b.Fatal(err)
		}
		srv, err := proxy.New(cfg, proxy.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		front := httptest.NewServer(srv.Handler())
		defer front.Close()
		drive(b, front.URL)
	})
	b.Run("bare", func(b *testing.B) {
		// The same upstream transport settings as the sidecar's, so that the
		// comparison is of the proxies, not of connection pooling.
		rp := httputil.NewSingleHostReverseProxy(target)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.DisableCompression = true
		tr.MaxIdleConns = 1024
		tr.MaxIdleConnsPerHost = 256
		defer tr.CloseIdleConnections()
		rp.Transport = tr
		front := httptest.NewServer(rp)
		defer front.Close()
		drive(b, front.URL)
	})
}

// drive sends GETs to base from 16 goroutines per CPU and reports p99.
func drive(b *testing.B, base string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			resp, err := client.Get(base + "/api/items")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			lat = append(lat, time.Since(start))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-us")
	}
}
