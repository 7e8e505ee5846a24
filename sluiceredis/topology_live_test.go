package sluiceredis_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluiceredis"
)

// The tests of this file run the clients Open builds for
// redis-sentinel:// and redis-cluster:// URLs against a live Sentinel and
// a live Cluster (internal/redistest).

// openURL returns the client Open builds for url, closed when the test
// ends.
func openURL(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := sluiceredis.Open(url, sluiceredis.OpenOptions{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// burstLimiter is a limiter of a burst of 3 that refills one token a
// minute on client, so that a fourth Take is denied for the whole test.
func burstLimiter(t *testing.T, c redis.UniversalClient, key string, lease int) *sluiceredis.Limiter {
	t.Helper()
	l, err := sluiceredis.NewLimiter(sluiceredis.LimiterConfig{
		Client: c, Key: key, Rate: 1, Per: time.Minute, Burst: 3, Timeout: time.Second, Lease: lease,
		RetryInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// takeBurst takes the limiter's three tokens one by one and checks that a
// fourth is denied.
func takeBurst(t *testing.T, l *sluiceredis.Limiter) {
	t.Helper()
	for i := range 3 {
		if d := take(t, l, 1); !d.Allowed {
			t.Fatalf("take %d of a burst of 3 denied: %+v", i+1, d)
		}
	}
	if d := take(t, l, 1); d.Allowed {
		t.Fatalf("a fourth take of a burst of 3 allowed: %+v", d)
	}
}

// Through a redis-sentinel:// URL, the limiter and the store reach the
// primary the Sentinel names; after a failover (SENTINEL FAILOVER) the same
// limiter goes on with the state it had, now on the promoted replica.
func TestLiveSentinelLimiterAndStoreSurviveFailover(t *testing.T) {
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("primary, replica and Sentinel up in %v", time.Since(start))
	c := openURL(t, s.URL())
	key := sluiceredis.LimiterKey("sentinel", "")
	l := burstLimiter(t, c, key, 0)
	takeBurst(t, l)
	if n, err := s.Primary.Client().Exists(bg, key).Result(); err != nil || n != 1 {
		t.Fatalf("the limiter's key on the primary: EXISTS = %d, %v", n, err)
	}

	st, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: c, Prefix: "sluice:{sentinel-dlq}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	id, err := st.Put(bg, dlq.Message{Queue: "q", Payload: []byte("before")})
	if err != nil {
		t.Fatalf("Put through the Sentinel: %v", err)
	}

	// Every write so far reaches the replica before it is promoted.
	if n, err := s.Primary.Client().Do(bg, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}
	start = time.Now()
	s.Failover()
	t.Logf("failover in %v", time.Since(start))
	if s.Master() != s.Replica.Addr() {
		t.Fatalf("the Sentinel names %s, want the former replica %s", s.Master(), s.Replica.Addr())
	}

	// The client may still hold connections to the demoted primary; the
	// first calls may fail until it has followed the switch.
	var d, lastErr = takeUntilAnswered(t, l, 10*time.Second)
	if lastErr != nil {
		t.Fatalf("the limiter after the failover: %v", lastErr)
	}
	t.Logf("limiter answering %v after the failover", time.Since(start))
	if d.Allowed {
		t.Fatalf("after the failover a take of the spent burst was allowed: %+v; the state did not carry over", d)
	}
	if n, err := s.Replica.Client().Exists(bg, key).Result(); err != nil || n != 1 {
		t.Fatalf("the limiter's key on the promoted replica: EXISTS = %d, %v", n, err)
	}
	// Writes reach the promoted replica once the client has followed the
	// switch (the Sentinel's +switch-master message); until then they may
	// reach the old primary, which still takes them (docs/redis.md).
	followed := time.Now().Add(10 * time.Second)
	for port := ""; port != s.Replica.Addr()[strings.LastIndex(s.Replica.Addr(), ":")+1:]; {
		if time.Now().After(followed) {
			t.Fatalf("the client still talks to port %s 10s after the failover", port)
		}
		<-time.After(20 * time.Millisecond)
		cfg, _ := c.ConfigGet(bg, "port").Result()
		port = cfg["port"]
	}
	t.Logf("client on the promoted replica %v after the failover", time.Since(start))
	if m, err := st.Get(bg, id); err != nil || string(m.Payload) != "before" {
		t.Fatalf("Get after the failover = %q, %v", m.Payload, err)
	}
	if _, err := st.Put(bg, dlq.Message{Queue: "q", Payload: []byte("after")}); err != nil {
		t.Fatalf("Put after the failover: %v", err)
	}
	if n, err := s.Replica.Client().ZCard(bg, "sluice:{sentinel-dlq}:all").Result(); err != nil || n != 2 {
		t.Fatalf("messages on the promoted replica = %d, %v; want 2", n, err)
	}
}

// takeUntilAnswered calls Take until Redis answers (a decision without an
// error) or d has passed, and returns that decision or the last error.
func takeUntilAnswered(t *testing.T, l *sluiceredis.Limiter, d time.Duration) (ratelimit.Decision, error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		dec, err := l.Take(bg, 1)
		if err == nil || time.Now().After(deadline) {
			return dec, err
		}
		<-time.After(20 * time.Millisecond) // the limiter's RetryInterval
	}
}

// keysOn returns the keys of each cluster node that start with prefix.
func keysOn(t *testing.T, c *redistest.Cluster, prefix string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, n := range c.Nodes {
		keys, err := n.Client().Keys(bg, prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS on %s: %v", n.Addr(), err)
		}
		if len(keys) > 0 {
			out[n.Addr()] = keys
		}
	}
	return out
}

// onOneNode checks that every key starting with prefix is on the node
// that serves the slot of want, and that there is at least one.
func onOneNode(t *testing.T, c *redistest.Cluster, prefix, want string) {
	t.Helper()
	node := c.NodeFor(t, want)
	got := keysOn(t, c, prefix)
	if len(got) != 1 || len(got[node.Addr()]) == 0 {
		t.Fatalf("keys %s* by node: %v; want all on %s (the slot of %s)", prefix, got, node.Addr(), want)
	}
}

// Through a redis-cluster:// URL, limiters of three routes (one per node's
// share of the slots, as the hash tags fall) decide as on one server, with
// and without a lease and per tenant, each route's keys on its one slot:
// a script over keys of several slots would fail with CROSSSLOT.
func TestLiveClusterLimiter(t *testing.T) {
	start := time.Now()
	cl := redistest.StartCluster(t)
	t.Logf("3-node cluster ok in %v", time.Since(start))
	c := openURL(t, cl.URL())
	nodes := map[string]bool{}
	for _, route := range []string{"a", "b", "c", "d", "e"} {
		key := sluiceredis.LimiterKey(route, "")
		nodes[cl.NodeFor(t, key).Addr()] = true
		takeBurst(t, burstLimiter(t, c, key, 0))
		takeBurst(t, burstLimiter(t, c, sluiceredis.LimiterKey(route, "tenant"), 0))
		leased := burstLimiter(t, c, sluiceredis.LimiterKey(route, "leased"), 2)
		takeBurst(t, leased)
		if err := leased.Close(); err != nil {
			t.Fatalf("Close of the leasing limiter of %s: %v", route, err)
		}
		onOneNode(t, cl, "sluice:{"+route+"}", key)
	}
	if len(nodes) < 2 {
		t.Fatalf("the routes' keys fell on %d node(s); the test wants several", len(nodes))
	}
}

// The Store on a Cluster passes the conformance suite, and keeps all its
// keys on the slot of its prefix's hash tag.
func TestLiveClusterStore(t *testing.T) {
	cl := redistest.StartCluster(t)
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		st, err := sluiceredis.NewStore(sluiceredis.StoreOptions{
			Client: openURL(t, cl.URL()), Prefix: fmt.Sprintf("sluice:{cl-%d}", prefixes.Add(1)), Clock: clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
	if t.Failed() {
		return
	}
	const prefix = "sluice:{cluster-dlq}"
	st, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: openURL(t, cl.URL()), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 3 {
		if _, err := st.Put(bg, dlq.Message{Queue: fmt.Sprintf("q%d", i), Payload: []byte("x")}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	onOneNode(t, cl, prefix, prefix+":all")
}

// Breakers of two instances, each with its own cluster client, share a
// trip through the Cluster: the record's scripts, its pub/sub channel
// (PUBLISH from a script on one node, SUBSCRIBE on any) and its periodic
// read, with all the record's keys on the route's slot.
func TestLiveClusterBreakerSync(t *testing.T) {
	cl := redistest.StartCluster(t)
	key := sluiceredis.BreakerKey("cluster-route")
	var in []*instance
	for i := range 2 {
		sc := testSync
		sc.Client, sc.Key, sc.Instance = openURL(t, cl.URL()), key, fmt.Sprintf("i%d", i)
		in = append(in, join(t, nil, sc, fleetCfg))
	}
	if rejects(in[1]) {
		t.Fatal("instance 1 rejects before any failure")
	}
	at := trip(t, in[0], 2)
	within(t, at, bound(testSync), "instance 1 rejects: "+knows(in[1]), func() bool { return rejects(in[1]) })
	var remote *sluiceredis.RemoteTripError
	if err := in[1].p.Do(bg, fine); !errors.As(err, &remote) || remote.Instance != "i0" {
		t.Fatalf("rejection %v carries %+v, want the record's trip by i0", err, remote)
	}
	for i, x := range in {
		if x.sync.Degraded() {
			t.Fatalf("instance %d degraded: %v", i, x.sync.LastError())
		}
	}
	onOneNode(t, cl, strings.TrimSuffix(key, ":cb"), key)
}
