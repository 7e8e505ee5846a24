package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

// The sidecar against a bare httputil.ReverseProxy in front of the same
// trivial upstream, on loopback: compare ns/op of the two (the load test in
// bench/ makes the same comparison with a load generator).

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	return up
}

func benchClient(b *testing.B, target string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	c := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkSidecar(b *testing.B) {
	up := benchUpstream(b)
	full := "storage: {dlq: \"bolt://" + b.TempDir() + "/dlq.db\"}\n" + `
policies:
  p:
    retry: {max_attempts: 3, backoff: exponential, base_delay: 100ms, max_delay: 1s}
    circuit_breaker: {failure_rate: 0.5, window: 60s, minimum_calls: 20, open_for: 30s}
    bulkhead: {max_concurrent: 1000}
    rate_limit: {rate: 10000000, per: 1s, burst: 100000}
    timeout: 10s
routes:
  - {name: r, upstreams: [` + up.URL + `], policy: p}
`
	cfg, err := parseB(full)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	front := httptest.NewServer(srv.Handler())
	b.Cleanup(front.Close)
	benchClient(b, front.URL+"/x")
}

func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	rp.Transport = tr
	b.Cleanup(tr.CloseIdleConnections)
	front := httptest.NewServer(rp)
	b.Cleanup(front.Close)
	benchClient(b, front.URL+"/x")
}

func parseB(src string) (*config.Config, error) { return config.Parse("bench.yaml", []byte(src)) }
