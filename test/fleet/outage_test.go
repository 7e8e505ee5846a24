package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// result is one request of the outage test.
type result struct {
	route   string // "api" or "orders"
	code    int    // 0: the request failed (the client's timeout included)
	queued  string // Sluice-Queued of a 202
	end     time.Time
	latency time.Duration
}

// TestFleetRedisOutage kills Redis (SIGKILL, appendfsync always) under
// load on three sidecars and restarts it: the limits decide by their fail
// mode (open, a third of the limit each), no request waits much past the
// Redis timeouts, the DLQ goes on answering 202 from each sidecar's
// fallback file, every request answered 202 (those of the outage counted)
// is in Redis afterwards, and each sidecar goes back to the shared limit
// and the shared DLQ by itself.
func TestFleetRedisOutage(t *testing.T) {
	const (
		dlqTimeout = 200 * time.Millisecond
		margin     = time.Second // a shared 2-core machine's scheduling
	)
	rds := redistest.Start(t)
	api := okServer(t)
	orders := newOrdersUpstream(t) // down: every order is queued
	// The limits get 500 ms rather than the 50 ms default: on a loaded
	// machine a 50 ms round trip can time out while Redis is up, and the
	// limit would then log its fail mode before the kill this test watches.
	cfg := fleetConfig(rds, api.URL, orders.URL, 100, 10, ", on_failure: open, fallback_share: 0.34, timeout: 500ms", ", timeout: 200ms")
	var fleet []*instance
	for i := range 3 {
		fleet = append(fleet, startInstance(t, fmt.Sprintf("sidecar%d", i), cfg))
	}
	client := newClient(5 * time.Second)
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	var results []result
	record := func(r result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for d := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := fleet[d%3]
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				begin := time.Now()
				if d < 3 {
					code := get(client, in.proxy+"/api/x")
					record(result{route: "api", code: code, end: time.Now(), latency: time.Since(begin)})
					continue
				}
				code, qid := post(client, in.proxy+"/orders", fmt.Sprintf("d%d-%d", d, i))
				record(result{route: "orders", code: code, queued: qid, end: time.Now(), latency: time.Since(begin)})
			}
		}()
	}
	loadFor := func(d time.Duration) { <-time.After(d) } // the load runs meanwhile
	loadFor(2 * time.Second)
	marks := make([]int, len(fleet))
	for i, in := range fleet {
		marks[i] = in.mark()
	}
	killed := time.Now()
	rds.Kill()
	for i, in := range fleet {
		if !in.waitLogSince(marks[i], "rate limit lost Redis", 5*time.Second) {
			t.Errorf("%s did not log its limit's fail mode:\n%s", in.name, in.logs())
		}
	}
	loadFor(2 * time.Second)
	for i, in := range fleet {
		marks[i] = in.mark()
	}
	rds.Restart()
	restarted := time.Now()
	for i, in := range fleet {
		if !in.waitLogSince(marks[i], "shared mode again", 10*time.Second) {
			t.Errorf("%s did not go back to the shared limit:\n%s", in.name, in.logs())
		}
	}
	back := time.Since(restarted)
	// While the load lasts the limit's key holds its state (it expires
	// once the bucket would be full again).
	keyBack := rds.Client().Exists(context.Background(), sluiceredis.LimiterKey("api/route", "")).Val() == 1
	loadFor(time.Second)
	close(stop)
	wg.Wait()

	var maxLatency time.Duration
	var failed, acked, ackedOutage, notQueued, apiOK, apiOutage int
	var apiOther []int
	for _, r := range results {
		maxLatency = max(maxLatency, r.latency)
		switch {
		case r.code == 0:
			failed++
		case r.route == "orders" && r.code == http.StatusAccepted:
			acked++
			if r.end.After(killed) && r.end.Before(restarted) {
				ackedOutage++
			}
		case r.route == "orders":
			notQueued++
		case r.code == http.StatusOK:
			apiOK++
			if r.end.After(killed) && r.end.Before(restarted) {
				apiOutage++
			}
		case r.code != http.StatusTooManyRequests:
			apiOther = append(apiOther, r.code)
		}
	}
	outage := restarted.Sub(killed)
	t.Logf("%d requests; Redis down %v; slowest answer %v; api: %d admitted (%d while Redis was down: %.0f/s, the fail-open bound is 3 × 34/s plus bursts); orders: %d answered 202 (%d while Redis was down, into the fallback files), %d refused; shared mode again %v after the restart",
		len(results), outage.Round(time.Millisecond), maxLatency.Round(time.Millisecond), apiOK, apiOutage,
		float64(apiOutage)/outage.Seconds(), acked, ackedOutage, notQueued, back.Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d requests got no answer within the client's 5 s", failed)
	}
	if bound := dlqTimeout + margin; maxLatency > bound {
		t.Errorf("slowest answer %v, want at most the DLQ timeout %v + %v", maxLatency, dlqTimeout, margin)
	}
	if len(apiOther) > 0 {
		t.Errorf("api answered %d requests with neither 200 nor 429 (fail open admits or limits): %v", len(apiOther), apiOther[:min(len(apiOther), 10)])
	}
	if apiOutage == 0 {
		t.Error("no api request was admitted while Redis was down: the limits did not fail open")
	}
	if rate := float64(apiOutage) / outage.Seconds(); rate > 3*34*1.3+30 {
		t.Errorf("%.0f/s admitted while Redis was down, above the fleet's fail-open share", rate)
	}
	if ackedOutage == 0 || notQueued > 0 {
		t.Errorf("%d orders answered 202 and %d refused while Redis was down: want every order queued in the fallback file", ackedOutage, notQueued)
	}
	checkAcked(t, rds, results)
	for _, in := range fleet {
		waitFor(t, in.name+"'s DLQ shared again", 10*time.Second, func() bool {
			return !strings.Contains(healthText(t, client, in), "dlq: DEGRADED")
		})
	}
	if !keyBack {
		t.Error("the shared limit's key is not back on Redis")
	}
}

// checkAcked checks that every order answered 202 is in the DLQ on
// Redis, waiting (at most 10 s) for the sidecars to move the ones their
// fallback files took.
func checkAcked(t *testing.T, rds *redistest.Server, results []result) {
	t.Helper()
	st := storeOn(t, rds)
	missing := func(report bool) int {
		lost := 0
		for _, r := range results {
			if r.queued == "" {
				continue
			}
			id, err := dlq.ParseID(r.queued)
			if err != nil {
				t.Fatalf("Sluice-Queued %q: %v", r.queued, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = st.Get(ctx, id)
			cancel()
			if err != nil {
				lost++
				if report {
					t.Errorf("acknowledged message %s: %v", r.queued, err)
				}
			}
		}
		return lost
	}
	deadline := time.Now().Add(10 * time.Second)
	for missing(false) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // the migrators run meanwhile; bounded by deadline
	}
	if lost := missing(true); lost > 0 {
		t.Errorf("%d acknowledged (202) messages not on Redis", lost)
	}
}
