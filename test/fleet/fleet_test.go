package fleet_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/redistest"
)

// fleetConfig is a sidecar configuration on rds: a route "api" limited to
// rate per second (burst) for the whole fleet, and a route "orders" that
// queues failed POSTs in the shared DLQ. extra is added to
// storage.ratelimit's mapping, dlqExtra to storage.dlq's.
func fleetConfig(rds *redistest.Server, api, orders string, rate, burst int, extra, dlqExtra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
shutdown_grace: 1s
storage:
  dlq: {url: "%[1]s", replay_lease: 3s%[7]s}
  ratelimit: {url: "%[1]s"%[6]s}
routes:
  - name: api
    match: {path_prefix: /api/}
    upstreams: [%[2]s]
    rate_limit: {rate: %[4]d, per: 1s, burst: %[5]d}
  - name: orders
    match: {path_prefix: /orders}
    upstreams: [%[3]s]
    on_exhausted: queue
`, rds.URL(), api, orders, rate, burst, extra, dlqExtra)
}

// okServer answers 200 to everything.
func okServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestFleetSharedRateLimit runs three sidecars on one Redis with a route
// limited to 100/s for the fleet, drives them concurrently at three times
// that for 10 s, and checks that the fleet admitted the limit's worth
// within 5 %.
func TestFleetSharedRateLimit(t *testing.T) {
	const (
		rate     = 100
		burst    = 10
		duration = 10 * time.Second
		drivers  = 6  // two per instance
		perSec   = 50 // each driver's offered rate: 300/s in all
	)
	rds := redistest.Start(t)
	up := okServer(t)
	var fleet []*instance
	for i := range 3 {
		// A generous Redis timeout: this test measures the shared limit,
		// not the fail mode a slow answer on a busy machine would cause.
		fleet = append(fleet, startInstance(t, fmt.Sprintf("sidecar%d", i), fleetConfig(rds, up.URL, up.URL, rate, burst, ", timeout: 1s, on_failure: closed", "")))
	}
	client := newClient(2 * time.Second)
	defer client.CloseIdleConnections()
	var admitted, limited, other atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := fleet[d%len(fleet)].proxy
			tick := time.NewTicker(time.Second / perSec)
			defer tick.Stop()
			for time.Since(start) < duration {
				<-tick.C
				switch code := get(client, base+"/api/x"); code {
				case http.StatusOK:
					admitted.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := rate*elapsed.Seconds() + burst
	got := float64(admitted.Load())
	relErr := (got - want) / want
	t.Logf("3 sidecars, limit %d/s burst %d, %v: admitted %v, refused %d, other %d; expected %.0f; error %+.2f %%",
		rate, burst, elapsed.Round(time.Millisecond), got, limited.Load(), other.Load(), want, 100*relErr)
	for _, in := range fleet {
		if strings.Contains(in.logs(), "rate limit lost Redis") {
			t.Errorf("%s lost Redis during the test; the count is not the shared limit's:\n%s", in.name, in.logs())
		}
	}
	if other.Load() > 0 {
		t.Errorf("%d answers were neither 200 nor 429", other.Load())
	}
	if math.Abs(relErr) > 0.05 {
		t.Errorf("admitted %v, want %.0f ± 5 %%", got, want)
	}
	if limited.Load() == 0 {
		t.Error("nothing was refused: the offered load did not reach the limit")
	}
}

// get sends a GET and returns its status, or 0 if it failed.
func get(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// post sends a POST with a request ID and returns its status and the
// Sluice-Queued ID of a 202, or status 0 if it failed.
func post(c *http.Client, url, id string) (int, string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("order "+id))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("X-Request-Id", id)
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Sluice-Queued")
}
