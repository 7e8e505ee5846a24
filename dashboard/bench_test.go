package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-go/sluice/dashboard"
)

// discard is a ResponseWriter that keeps nothing, so the benchmarks measure
// the handler and not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchmarkServe(b *testing.B, target string) {
	h := dashboard.Handler(dashboard.Options{})
	req := httptest.NewRequest("GET", target, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

func BenchmarkServePage(b *testing.B)  { benchmarkServe(b, "/dashboard/") }
func BenchmarkServeAsset(b *testing.B) { benchmarkServe(b, "/dashboard/app.js") }
