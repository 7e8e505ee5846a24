package redistest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func TestStartServes(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	if err := c.Set(bg, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(bg, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v", got, err)
	}
	cfg, err := c.ConfigGet(bg, "appendfsync").Result()
	if err != nil || cfg["appendfsync"] != "always" {
		t.Fatalf("appendfsync = %v, %v; want always", cfg, err)
	}
	if host, _, _ := net.SplitHostPort(srv.Addr()); host != "127.0.0.1" {
		t.Fatalf("Addr %q is not on loopback", srv.Addr())
	}
}

func TestOptions(t *testing.T) {
	srv := redistest.Start(t, redistest.AppendFsync("everysec"), redistest.Args("--maxmemory", "7mb"))
	c := srv.Client()
	cfg, err := c.ConfigGet(bg, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["appendfsync"] != "everysec" || cfg["maxmemory"] != "7340032" {
		t.Fatalf("appendfsync %q, maxmemory %q; want everysec, 7340032", cfg["appendfsync"], cfg["maxmemory"])
	}
}

// A write acknowledged under appendfsync always survives a SIGKILL, and the
// restarted server answers on the same address.
func TestKillRestartKeepsAcknowledgedWrites(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	for i := range 100 {
		if err := c.RPush(bg, "list", i).Err(); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	if srv.Running() {
		t.Fatal("Running after Kill")
	}
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	srv.Kill() // a second Kill does nothing
	srv.Restart()
	if !srv.Running() {
		t.Fatal("not Running after Restart")
	}
	if n, err := c.LLen(bg, "list").Result(); err != nil || n != 100 {
		t.Fatalf("LLEN after restart = %d, %v; want 100", n, err)
	}
}

func TestFlush(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	if err := c.Set(bg, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Flush()
	if n, err := c.DBSize(bg).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after Flush = %d, %v", n, err)
	}
}

// Two servers started by one test are independent.
func TestTwoServers(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() || a.Dir() == b.Dir() {
		t.Fatalf("servers share %s / %s", a.Addr(), a.Dir())
	}
	if err := a.Client().Set(bg, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client().Exists(bg, "k").Result(); err != nil || n != 0 {
		t.Fatalf("key set on a exists on b: %d, %v", n, err)
	}
}

// A paused server does not answer until it is resumed.
func TestPauseResume(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	srv.Pause()
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a paused server answered PING")
	}
	srv.Resume()
	if err := c.Ping(bg).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}
