package sluicehttp_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/timeout"
)

// canned is a base transport that answers at once, so the benchmarks
// measure the Transport's own overhead.
type canned struct{ resp *http.Response }

func (c canned) RoundTrip(*http.Request) (*http.Response, error) { return c.resp, nil }

func benchTransport(b *testing.B, rt http.RoundTripper) {
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.internal:8080/status", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
				b.Fatal(resp, err)
			}
		}
	})
}

// BenchmarkTransport compares a bare base transport with the default
// Transport (retry with budget + a breaker per host) and with every policy.
func BenchmarkTransport(b *testing.B) {
	base := canned{&http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}}
	b.Run("base", func(b *testing.B) { benchTransport(b, base) })
	b.Run("default", func(b *testing.B) {
		tr, _ := sluicehttp.NewTransport(sluicehttp.Config{Base: base})
		defer tr.Close()
		benchTransport(b, tr)
	})
	b.Run("all-policies", func(b *testing.B) {
		tr, _ := sluicehttp.NewTransport(sluicehttp.Config{
			Base:     base,
			Limiter:  ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9}),
			Bulkhead: bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 1000}),
			Timeout:  timeout.After(time.Minute),
		})
		defer tr.Close()
		benchTransport(b, tr)
	})
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchHandler(b *testing.B, h http.Handler) {
	req, _ := http.NewRequest(http.MethodGet, "http://service.internal/items", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkMiddleware compares a bare handler with one behind a limiter and
// a bulkhead, and with a timeout too (which guards the writer).
func BenchmarkMiddleware(b *testing.B) {
	hello := []byte("hello")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hello) })
	b.Run("bare", func(b *testing.B) { benchHandler(b, h) })
	b.Run("limiter+bulkhead", func(b *testing.B) {
		benchHandler(b, sluicehttp.Middleware(sluicehttp.ServerConfig{
			Limiter:  ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9}),
			Bulkhead: bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 1000}),
		})(h))
	})
	b.Run("limiter+bulkhead+timeout", func(b *testing.B) {
		benchHandler(b, sluicehttp.Middleware(sluicehttp.ServerConfig{
			Limiter:  ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9}),
			Bulkhead: bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 1000}),
			Timeout:  timeout.After(time.Minute),
		})(h))
	})
}
