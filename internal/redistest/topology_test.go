package redistest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/redistest"
)

// The Sentinel names the primary, which replicates to the replica; after
// Failover it names the former replica, which now takes writes.
func TestSentinelFailover(t *testing.T) {
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("primary, replica and Sentinel up in %v", time.Since(start))
	if got := s.Master(); got != s.Primary.Addr() {
		t.Fatalf("Sentinel names %s as primary, want %s", got, s.Primary.Addr())
	}
	if !strings.HasPrefix(s.URL(), "redis-sentinel://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/"+redistest.MasterName) {
		t.Fatalf("URL %q", s.URL())
	}
	if err := s.Replica.Client().Set(bg, "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("SET on the replica before failover: %v, want READONLY", err)
	}
	start = time.Now()
	s.Failover()
	t.Logf("failover in %v", time.Since(start))
	if got := s.Master(); got != s.Replica.Addr() {
		t.Fatalf("after Failover the Sentinel names %s, want %s", got, s.Replica.Addr())
	}
	if err := s.Replica.Client().Set(bg, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on the promoted replica: %v", err)
	}
}

// Every node of the cluster serves its third of the slots, and a cluster
// client reaches the node NodeFor names for a key.
func TestClusterServesAllSlots(t *testing.T) {
	start := time.Now()
	c := redistest.StartCluster(t)
	t.Logf("3-node cluster ok in %v", time.Since(start))
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	info, err := c.Nodes[2].Client().ClusterInfo(bg).Result()
	if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO: %v\n%s", err, info)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(c.URL(), "redis-cluster://"), ","), DisableIdentity: true})
	defer cc.Close()
	seen := map[string]bool{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if err := cc.Set(bg, key, key, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		node := c.NodeFor(t, key)
		seen[node.Addr()] = true
		if got, err := node.Client().Get(bg, key).Result(); err != nil || got != key {
			t.Fatalf("GET %s on %s (NodeFor) = %q, %v", key, node.Addr(), got, err)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("8 keys landed on %d nodes, want all 3", len(seen))
	}
}
