package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/testenv"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of primaries without replicas, each node a
// Server: what a redis-cluster:// URL points at.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts a Cluster of three primaries (cluster-enabled), gives
// each a third of the slots (CLUSTER ADDSLOTSRANGE), joins them (CLUSTER
// MEET, every pair) and returns once every node reports cluster_state:ok and the same
// slot map: about 2 s, most of it the delay a restarted primary waits
// before it declares the cluster ok. The nodes listen on loopback at free ports, keep their files in
// the test's temporary directories and are killed when t ends; t is skipped
// as by Start when redis-server is absent.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	testenv.RequireTool(t, "redis-server", InstallHint)
	const n = 3
	c := &Cluster{}
	admins := make([]*redis.Client, n)
	for i := range n {
		c.Nodes = append(c.Nodes, Start(t, Args("--cluster-enabled", "yes", "--cluster-node-timeout", "2000")))
		admins[i] = c.Nodes[i].admin()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for i, a := range admins {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := a.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, c.Nodes[i].addr(), err)
		}
		for j := range i { // every pair meets: no waiting for gossip to introduce them
			if err := admins[i].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[j].port)).Err(); err != nil {
				t.Fatalf("redistest: CLUSTER MEET %s from %s: %v", c.Nodes[j].addr(), c.Nodes[i].addr(), err)
			}
		}
	}
	if err := poll(func(ctx context.Context) (bool, error) { return clusterReady(ctx, admins) }); err != nil {
		t.Fatalf("redistest: waiting for cluster_state:ok: %v", err)
	}
	return c
}

// clusterReady reports whether every node says cluster_state:ok and knows
// every node, so that a client may ask any of them for the slot map.
func clusterReady(ctx context.Context, admins []*redis.Client) (bool, error) {
	for _, a := range admins {
		info, err := a.ClusterInfo(ctx).Result()
		if err != nil {
			return false, err
		}
		if !strings.Contains(info, "cluster_state:ok") ||
			!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(admins))) {
			return false, fmt.Errorf("%s: %q", a.Options().Addr, firstLine(info))
		}
		slots, err := a.ClusterSlots(ctx).Result()
		if err != nil {
			return false, err
		}
		if len(slots) != len(admins) {
			return false, fmt.Errorf("%s: %d slot ranges", a.Options().Addr, len(slots))
		}
	}
	return true, nil
}

func firstLine(s string) string { line, _, _ := strings.Cut(s, "\n"); return strings.TrimSpace(line) }

// URL is the redis-cluster:// URL naming every node.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.addr()
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// NodeFor returns the node that serves key's slot (CLUSTER KEYSLOT and the
// ranges StartCluster assigned), so that a test can check where a key
// landed.
func (c *Cluster) NodeFor(t testing.TB, key string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	slot, err := c.Nodes[0].admin().ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("redistest: CLUSTER KEYSLOT %q: %v", key, err)
	}
	n := len(c.Nodes)
	for i := range n {
		if int(slot) <= (i+1)*clusterSlots/n-1 {
			return c.Nodes[i]
		}
	}
	return c.Nodes[n-1]
}
