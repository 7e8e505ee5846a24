package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

// lockCheckClock is a FakeClock that counts its readings and notes those
// made while the shard it watches is locked: a Clock is user code, which
// must not run under the cache's locks.
type lockCheckClock struct {
	*sluicetest.FakeClock
	shard        *shard[string]
	reads, under atomic.Int64
}

func (c *lockCheckClock) Now() time.Time {
	c.reads.Add(1)
	if s := c.shard; s != nil {
		if s.TryLock() {
			s.Unlock()
		} else {
			c.under.Add(1)
		}
	}
	return c.FakeClock.Now()
}

// TestClockReadOutsideLocks drives hits and misses through Get and Policy on
// a user Clock: every lookup reads it, never under a shard lock, and a hit's
// age is measured by it.
func TestClockReadOutsideLocks(t *testing.T) {
	clock := &lockCheckClock{FakeClock: sluicetest.NewFakeClock(time.Time{})}
	c, _ := New[string](Config{TTL: 10 * time.Second, Clock: clock})
	clock.shard = c.shardFor("k")
	ctx := context.Background()
	fn := func(context.Context) (string, error) { return "v", nil }
	if _, info, err := c.Get(ctx, "k", fn); err != nil || info.Outcome != Miss {
		t.Fatalf("first Get: %+v %v, want a miss", info, err)
	}
	clock.Advance(3 * time.Second)
	before := clock.reads.Load()
	if v, info, err := c.Get(ctx, "k", fn); err != nil || v != "v" || info != (Info{Outcome: Hit, Age: 3 * time.Second}) {
		t.Fatalf("Get after 3s: %q %+v %v, want a hit aged 3s", v, info, err)
	}
	if n := clock.reads.Load() - before; n != 1 {
		t.Fatalf("a hit read the clock %d times, want 1", n)
	}
	p := sluice.NewPipeline(c.Policy(func(context.Context) string { return "k" }))
	var info Info
	if _, err := sluice.Get(WithInfo(ctx, &info), p, fn); err != nil || info != (Info{Outcome: Hit, Age: 3 * time.Second}) {
		t.Fatalf("Policy hit: %+v %v", info, err)
	}
	clock.Advance(10 * time.Second)
	if _, err := sluice.Get(WithInfo(ctx, &info), p, fn); err != nil || info.Outcome != Miss {
		t.Fatalf("Policy after the TTL: %+v %v, want a miss", info, err)
	}
	if n := clock.under.Load(); n != 0 {
		t.Fatalf("the clock was read %d times under the shard lock", n)
	}
}

// TestSystemClockHitAge: on the system clock a hit's age comes from
// time.Since, with no current time passed in.
func TestSystemClockHitAge(t *testing.T) {
	c, _ := New[string](Config{TTL: time.Hour})
	c.putAt("k", "v", time.Now().Add(-2*time.Second))
	_, info, err := c.Get(context.Background(), "k", func(context.Context) (string, error) { return "new", nil })
	if err != nil || info.Outcome != Hit || info.Age < 2*time.Second || info.Age > time.Minute {
		t.Fatalf("got %+v %v, want a hit aged about 2s", info, err)
	}
}
