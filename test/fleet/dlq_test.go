package fleet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// Modes of the orders upstream.
const (
	modeDown = iota // 503 to everything: requests are queued
	modeSlow        // replays take slowFor
	modeUp          // replays are answered at once
)

const slowFor = 2 * time.Second

// ordersUpstream counts the replays it receives (requests carrying
// Sluice-Queued) by the client's X-Request-Id, counting each when it
// arrives: a replay that reached the upstream is a delivery, even if the
// sidecar that sent it dies before the answer.
type ordersUpstream struct {
	*httptest.Server
	mode     atomic.Int32
	inflight atomic.Int64
	mu       sync.Mutex
	byID     map[string]int
	arrivals []time.Time // when each queued delivery arrived
}

func newOrdersUpstream(t *testing.T) *ordersUpstream {
	u := &ordersUpstream{byID: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *ordersUpstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	mode := u.mode.Load()
	if mode == modeDown {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Sluice-Queued") != "" {
		u.mu.Lock()
		u.byID[r.Header.Get("X-Request-Id")]++
		u.arrivals = append(u.arrivals, time.Now())
		u.mu.Unlock()
	}
	if mode == modeSlow {
		u.inflight.Add(1)
		defer u.inflight.Add(-1)
		select {
		case <-time.After(slowFor):
		case <-r.Context().Done():
		}
	}
}

// arrivedBefore returns how many queued deliveries arrived before t.
func (u *ordersUpstream) arrivedBefore(t time.Time) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := int64(0)
	for _, at := range u.arrivals {
		if at.Before(t) {
			n++
		}
	}
	return n
}

// counts returns the deliveries of each ID so far.
func (u *ordersUpstream) counts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.byID))
	for k, v := range u.byID {
		out[k] = v
	}
	return out
}

// queueDepth returns the messages left in the fleet's DLQ on rds.
func queueDepth(t *testing.T, st *sluiceredis.Store) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatalf("DLQ stats: %v", err)
	}
	var n int64
	for _, q := range stats {
		n += q.Depth()
	}
	return n
}

func storeOn(t *testing.T, rds *redistest.Server) *sluiceredis.Store {
	st, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: rds.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// queueOrders posts n orders through in while the upstream is down and
// returns their request IDs; each must be answered 202.
func queueOrders(t *testing.T, in *instance, n int) []string {
	t.Helper()
	c := newClient(5 * time.Second)
	defer c.CloseIdleConnections()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("req-%03d", i)
		code, qid := post(c, in.proxy+"/orders", id)
		if code != http.StatusAccepted || qid == "" {
			t.Fatalf("POST %s with the upstream down = %d (queued %q), want 202", id, code, qid)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestFleetReplaysOnce queues a request through one of three sidecars
// while the upstream is down and checks that, once it is up, the fleet
// delivers it exactly once.
func TestFleetReplaysOnce(t *testing.T) {
	rds := redistest.Start(t)
	api := okServer(t)
	orders := newOrdersUpstream(t)
	var fleet []*instance
	for i := range 3 {
		fleet = append(fleet, startInstance(t, fmt.Sprintf("sidecar%d", i), fleetConfig(rds, api.URL, orders.URL, 100, 10, "", "")))
	}
	ids := queueOrders(t, fleet[1], 1)
	st := storeOn(t, rds)
	if d := queueDepth(t, st); d != 1 {
		t.Fatalf("DLQ depth after queueing = %d, want 1", d)
	}
	orders.mode.Store(modeUp)
	waitFor(t, "the fleet to replay the message", 30*time.Second, func() bool { return queueDepth(t, st) == 0 })
	got := orders.counts()
	t.Logf("deliveries of %s by a fleet of 3: %d", ids[0], got[ids[0]])
	if got[ids[0]] != 1 || len(got) != 1 {
		t.Errorf("deliveries = %v, want %s exactly once", got, ids[0])
	}
	replayed := func() (n int) {
		for _, in := range fleet {
			if strings.Contains(in.logs(), "outcome=replayed") {
				n++
			}
		}
		return n
	}
	waitFor(t, "a sidecar to log the replay", 5*time.Second, func() bool { return replayed() > 0 })
	replayers := replayed()
	if replayers != 1 {
		t.Errorf("%d sidecars logged a delivered replay, want 1", replayers)
	}
}

// TestFleetTakesOverAfterCrash kills the sidecar that holds claimed
// messages mid-replay and checks that the others finish them after the
// lease: none lost, duplicates only those the dead one had sent.
func TestFleetTakesOverAfterCrash(t *testing.T) {
	const n = 12
	rds := redistest.Start(t)
	api := okServer(t)
	orders := newOrdersUpstream(t)
	cfg := fleetConfig(rds, api.URL, orders.URL, 100, 10, "", "")
	a := startInstance(t, "sidecarA", cfg)
	ids := queueOrders(t, a, n)
	st := storeOn(t, rds)

	orders.mode.Store(modeSlow)
	waitFor(t, "sidecar A to start replaying", 30*time.Second, func() bool { return orders.inflight.Load() > 0 })
	a.kill()
	orders.mode.Store(modeUp)
	killed := time.Now()
	startInstance(t, "sidecarB", cfg)
	startInstance(t, "sidecarC", cfg)
	waitFor(t, "the survivors to finish the queue", 45*time.Second, func() bool { return queueDepth(t, st) == 0 })
	took := time.Since(killed)

	// What A sent: the deliveries that arrived before the survivors could
	// claim anything. A may start more replays between the first one seen
	// and the kill, and a request it wrote just before dying is read by the
	// upstream just after; the survivors claim only once A's lease (3 s)
	// has run out, so half a second after the kill separates the two.
	sent := orders.arrivedBefore(killed.Add(500 * time.Millisecond))
	got := orders.counts()
	lost, dups := 0, 0
	for _, id := range ids {
		switch c := got[id]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d messages; sidecar A killed with %d replays in flight; survivors emptied the queue %v later; lost %d, duplicates %d",
		n, sent, took.Round(time.Millisecond), lost, dups)
	if lost > 0 {
		t.Errorf("%d messages never delivered: %v", lost, got)
	}
	if int64(dups) > sent {
		t.Errorf("%d duplicates, more than the %d replays the killed sidecar had in flight (at least once allows only those)", dups, sent)
	}
	if len(got) != n {
		t.Errorf("deliveries of %d IDs, want %d: %v", len(got), n, got)
	}
}
