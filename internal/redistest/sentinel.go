package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/testenv"
)

// MasterName is the name the Sentinel of StartSentinel monitors its
// primary by.
const MasterName = "mymaster"

// Sentinel is a replicated pair watched by one Sentinel (quorum 1): what a
// redis-sentinel:// URL points at. Primary and Replica are the roles at
// start; a failover swaps them, which Master reports.
type Sentinel struct {
	t        testing.TB
	Primary  *Server
	Replica  *Server
	Sentinel *Server

	sc *redis.SentinelClient // of Sentinel, for the helpers' own commands
}

// StartSentinel starts a primary, a replica of it and a Sentinel that
// monitors the primary as MasterName with quorum 1, and returns once the
// Sentinel knows the replica and the replica is in sync, so that a
// failover can promote it at once. Everything listens on loopback at free
// ports, keeps its files in the test's temporary directories and is killed
// when t ends; t is skipped as by Start when redis-server is absent.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	testenv.RequireTool(t, "redis-server", InstallHint)
	// Without a delay, the primary sends its snapshot at once instead of
	// waiting 5 s for more replicas; either may be the primary later.
	nodelay := Args("--repl-diskless-sync-delay", "0")
	primary := Start(t, nodelay)
	replica := Start(t, nodelay, Args("--replicaof", "127.0.0.1", strconv.Itoa(primary.port)))
	s := &Sentinel{t: t, Primary: primary, Replica: replica}
	s.Sentinel = startSentinelProcess(t, primary)
	s.sc = redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = s.sc.Close() })
	rc := replica.admin()
	s.waitFor("the replica in sync and known to the Sentinel", func(ctx context.Context) (bool, error) {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false, err
		}
		reps, err := s.sc.Replicas(ctx, MasterName).Result()
		if err != nil {
			return false, err
		}
		for _, r := range reps {
			if r["port"] == strconv.Itoa(replica.port) && !strings.Contains(r["flags"], "down") &&
				r["master-link-status"] == "ok" {
				return true, nil
			}
		}
		return false, nil
	})
	return s
}

// startSentinelProcess runs redis-server --sentinel with a config file
// (which the Sentinel rewrites) monitoring primary. The failure timings
// are short, so that a test's failover takes about a second.
func startSentinelProcess(t testing.TB, primary *Server) *Server {
	t.Helper()
	path := testenv.RequireTool(t, "redis-server", InstallHint)
	s := &Server{t: t, path: path, dir: t.TempDir()}
	s.conf = filepath.Join(s.dir, "sentinel.conf")
	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 3000\n"+
		"sentinel parallel-syncs %[1]s 1\n", MasterName, primary.port)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return s.launch()
}

// URL is the redis-sentinel:// URL of the pair: the Sentinel's address and
// MasterName.
func (s *Sentinel) URL() string { return "redis-sentinel://" + s.Sentinel.addr() + "/" + MasterName }

// Master asks the Sentinel for the current primary's address.
func (s *Sentinel) Master() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hp, err := s.sc.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil || len(hp) != 2 {
		s.t.Fatalf("redistest: SENTINEL GET-MASTER-ADDR-BY-NAME: %v, %v", hp, err)
	}
	return net.JoinHostPort(hp[0], hp[1])
}

// Failover has the Sentinel promote the replica (SENTINEL FAILOVER) and
// returns once the Sentinel names it as the primary and it answers as one.
// The old primary is turned into a replica only later (the Sentinel
// notices it still acts as a primary on its next INFO, up to 10 s later):
// until then it takes the writes of clients that have not followed the
// switch, and its resync throws them away.
// It fails the test if that takes longer than startTimeout.
func (s *Sentinel) Failover() {
	s.t.Helper()
	old := s.Master()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.sc.Failover(ctx, MasterName).Err(); err != nil {
		s.t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	s.waitFor("the failover", func(ctx context.Context) (bool, error) {
		hp, err := s.sc.GetMasterAddrByName(ctx, MasterName).Result()
		if err != nil || len(hp) != 2 || net.JoinHostPort(hp[0], hp[1]) == old {
			return false, err
		}
		c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(hp[0], hp[1]), DisableIdentity: true})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:master"), err
	})
}

// waitFor polls cond every 20ms until it holds, failing the test with what
// and cond's last error after startTimeout.
func (s *Sentinel) waitFor(what string, cond func(context.Context) (bool, error)) {
	s.t.Helper()
	if err := poll(cond); err != nil {
		s.t.Fatalf("redistest: waiting for %s: %v", what, err)
	}
}

// poll calls cond every 20ms, each call bounded by a second, until it
// reports true or startTimeout has passed.
func poll(cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, err := cond(ctx)
		cancel()
		if ok {
			return nil
		}
		last = err
		<-time.After(20 * time.Millisecond)
	}
	return fmt.Errorf("not within %v (last error: %v)", startTimeout, last)
}

// admin returns a client of s for the helpers' own commands, closed when
// the test ends.
func (s *Server) admin() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), DisableIdentity: true})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}
