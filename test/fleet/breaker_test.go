package fleet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// Shared breakers' settings in these tests: the documented delay bound is
// check_interval + 2 × timeout.
const (
	breakerCheck   = 200 * time.Millisecond
	breakerTimeout = 500 * time.Millisecond
	breakerBound   = breakerCheck + 2*breakerTimeout
	// breakerMargin allows for a shared 2-core machine's scheduling and
	// the request that observes the rejection.
	breakerMargin = time.Second
)

// failingUpstream fails every request but GET /ok, so that a sidecar that
// watches for the fleet's breaker with /ok does not trip it itself.
func failingUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/ok" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// breakerFleetConfig is one route to up whose breaker opens on one
// failure, shared on rds with the extra storage.breakers keys.
func breakerFleetConfig(rds *redistest.Server, id, up, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
shutdown_grace: 1s
instance_id: %s
storage:
  breakers: {url: "%s", timeout: %v, check_interval: %v%s}
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 1m}}
routes:
  - {name: api, upstreams: [%s], policy: p}
`, id, rds.URL(), breakerTimeout, breakerCheck, extra, up)
}

// circuitOpen reports whether in answers GET /ok with 503 circuit-open.
func circuitOpen(c *http.Client, in *instance) bool {
	resp, err := c.Get(in.proxy + "/ok")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Sluice-Reject") == "circuit-open"
}

// startBreakerFleet starts sidecars a, b and c on one Redis.
func startBreakerFleet(t *testing.T, rds *redistest.Server, up, extra string) []*instance {
	var fleet []*instance
	for _, id := range []string{"a", "b", "c"} {
		fleet = append(fleet, startInstance(t, "sidecar-"+id, breakerFleetConfig(rds, "sidecar-"+id, up, extra)))
	}
	return fleet
}

// trip sends one failing request through in and checks that its own
// breaker opened.
func tripThrough(t *testing.T, c *http.Client, in *instance) time.Time {
	t.Helper()
	if code := get(c, in.proxy+"/fail"); code != http.StatusInternalServerError {
		t.Fatalf("%s: failing call = %d, want the upstream's 500", in.name, code)
	}
	at := time.Now()
	if !circuitOpen(c, in) {
		t.Fatalf("%s: its own breaker did not open on the failure", in.name)
	}
	return at
}

// TestFleetSharedBreaker: the upstream fails only through sidecar a; b and
// c, which sent it nothing but successes, reject with 503 circuit-open
// within the documented delay, and their health reports name a as the
// opener.
func TestFleetSharedBreaker(t *testing.T) {
	rds := redistest.Start(t)
	up := failingUpstream(t)
	fleet := startBreakerFleet(t, rds, up.URL, "")
	c := newClient(5 * time.Second)
	defer c.CloseIdleConnections()
	for _, in := range fleet {
		if code := get(c, in.proxy+"/ok"); code != http.StatusOK {
			t.Fatalf("%s before the failure: %d", in.name, code)
		}
	}
	at := tripThrough(t, c, fleet[0])
	for _, in := range fleet[1:] {
		waitFor(t, in.name+" rejecting circuit-open", breakerBound+breakerMargin, func() bool { return circuitOpen(c, in) })
		t.Logf("%s rejects %v after a's trip (bound %v)", in.name, time.Since(at).Round(time.Millisecond), breakerBound)
	}
	report := healthText(t, c, fleet[2])
	if !strings.Contains(report, "Instance: sidecar-c") || !strings.Contains(report, "opened by sidecar-a") || !strings.Contains(report, "local open") {
		t.Errorf("c's health report does not show the fleet's record beside its own state:\n%s", report)
	}
}

// TestFleetBreakerQuorum: with quorum 2, a's failures open only a; b and c
// go on calling for the whole documented delay after a's vote is on
// Redis; once b trips too, c rejects within the delay.
func TestFleetBreakerQuorum(t *testing.T) {
	rds := redistest.Start(t)
	up := failingUpstream(t)
	fleet := startBreakerFleet(t, rds, up.URL, ", mode: quorum, quorum: 2")
	c := newClient(5 * time.Second)
	defer c.CloseIdleConnections()
	tripThrough(t, c, fleet[0])
	votes := sluiceredis.BreakerKey("api/"+strings.TrimPrefix(up.URL, "http://")) + ":v"
	waitFor(t, "a's vote on Redis", 5*time.Second, func() bool { return rds.Client().Exists(context.Background(), votes).Val() == 1 })
	for end := time.Now().Add(breakerBound + breakerMargin); time.Now().Before(end); {
		for _, in := range fleet[1:] {
			if code := get(c, in.proxy+"/ok"); code != http.StatusOK {
				t.Fatalf("%s answers %d after one trip of a quorum of 2, want 200", in.name, code)
			}
		}
		time.Sleep(100 * time.Millisecond) // sampling that nothing changes, bounded by end
	}
	at := tripThrough(t, c, fleet[1])
	waitFor(t, "c rejecting once two have tripped", breakerBound+breakerMargin, func() bool { return circuitOpen(c, fleet[2]) })
	t.Logf("c rejects %v after the second trip (bound %v)", time.Since(at).Round(time.Millisecond), breakerBound)
}

// healthText returns GET /health/report of in.
func healthText(t *testing.T, c *http.Client, in *instance) string {
	t.Helper()
	resp, err := c.Get(in.admin + "/health/report")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
