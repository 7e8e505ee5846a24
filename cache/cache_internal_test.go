package cache

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStateOf checks the TTL rule at its boundaries, in exact durations.
func TestStateOf(t *testing.T) {
	const ns = time.Nanosecond
	tests := []struct {
		ttl, stale time.Duration
		age        time.Duration
		want       state
	}{
		{10 * time.Second, 0, 0, stateFresh},
		{10 * time.Second, 0, 10*time.Second - ns, stateFresh},
		{10 * time.Second, 0, 10 * time.Second, stateExpired},
		{10 * time.Second, 5 * time.Second, 10 * time.Second, stateStale},
		{10 * time.Second, 5 * time.Second, 15*time.Second - ns, stateStale},
		{10 * time.Second, 5 * time.Second, 15 * time.Second, stateExpired},
		{10 * time.Second, 5 * time.Second, -time.Second, stateFresh}, // clock stepped back
		{NeverFresh, time.Minute, 0, stateStale},
		{NeverFresh, time.Minute, -time.Second, stateStale},
		{NeverFresh, time.Minute, time.Minute - ns, stateStale},
		{NeverFresh, time.Minute, time.Minute, stateExpired},
		{NeverFresh, 0, 0, stateExpired},
		{time.Hour, math.MaxInt64, math.MaxInt64 - 1, stateStale}, // no overflow
	}
	for i, tt := range tests {
		c, err := New[int](Config{TTL: tt.ttl, StaleIfError: tt.stale})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.stateOf(tt.age); got != tt.want {
			t.Errorf("case %d: ttl=%v stale=%v age=%v: state %d, want %d", i, tt.ttl, tt.stale, tt.age, got, tt.want)
		}
	}
}

// TestGetAtExplicitTime drives the core with explicit lookup times.
func TestGetAtExplicitTime(t *testing.T) {
	c, _ := New[string](Config{TTL: time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.putAt("k", "v", t0)
	calls := 0
	fn := func(context.Context) (string, error) { calls++; return "new", nil }
	steps := []struct {
		at      time.Duration
		outcome Outcome
		age     time.Duration
	}{
		{0, Hit, 0},
		{999 * time.Millisecond, Hit, 999 * time.Millisecond},
		{-time.Hour, Hit, 0}, // negative ages read as zero
	}
	for i, st := range steps {
		v, info, err := c.getAt(context.Background(), t0.Add(st.at), "k", fn)
		if err != nil || v != "v" || info.Outcome != st.outcome || info.Age != st.age {
			t.Errorf("step %d: got %q %+v %v, want %q %v age %v", i, v, info, err, "v", st.outcome, st.age)
		}
	}
	if calls != 0 {
		t.Fatalf("fn called %d times on fresh hits", calls)
	}
	v, info, err := c.getAt(context.Background(), t0.Add(time.Second), "k", fn)
	if err != nil || v != "new" || info.Outcome != Miss || calls != 1 {
		t.Fatalf("at TTL: got %q %+v %v calls=%d, want a miss calling fn", v, info, err, calls)
	}
}

func keys[T any](s *shard[T]) map[string]bool {
	m := map[string]bool{}
	for k, e := range s.m {
		if s.ring[e.idx] != e {
			panic("ring index out of sync for " + k)
		}
		m[k] = true
	}
	return m
}

// TestClockSweep checks second-chance eviction on one shard.
func TestClockSweep(t *testing.T) {
	c, _ := New[int](Config{TTL: time.Minute, MaxEntries: 1})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s shard[int]
	s.init(3)
	for i, k := range []string{"a", "b", "c"} {
		if c.storeLocked(&s, k, i, t0) {
			t.Fatalf("evicted while filling")
		}
	}
	s.m["a"].touch()
	if !c.storeLocked(&s, "d", 3, t0) {
		t.Fatal("store into a full shard did not evict")
	}
	if got := keys(&s); !got["a"] || got["b"] || !got["c"] || !got["d"] {
		t.Fatalf("after d: keys %v, want a (second chance), c, d", got)
	}
	if s.m["a"].ref.Load() {
		t.Fatal("the hand passed a but left its bit set")
	}
	// The hand is now past b's slot, at c: unreferenced, so c goes next.
	c.storeLocked(&s, "e", 4, t0)
	if got := keys(&s); !got["a"] || got["c"] || !got["d"] || !got["e"] {
		t.Fatalf("after e: keys %v, want a, d, e", got)
	}
	// A referenced but expired entry is evicted at once.
	for _, k := range []string{"a", "d", "e"} {
		s.m[k].touch()
	}
	later := t0.Add(time.Minute)
	c.storeLocked(&s, "f", 5, later)
	if got := keys(&s); len(got) != 3 || !got["f"] {
		t.Fatalf("after f: keys %v", got)
	}
	// Updating a key in place neither grows nor evicts.
	if c.storeLocked(&s, "f", 6, later) || len(s.m) != 3 || s.m["f"].val != 6 {
		t.Fatalf("update in place: %v", keys(&s))
	}
	s.removeLocked(s.m["f"])
	s.removeLocked(s.m[firstKey(&s)])
	if len(s.m) != 1 || len(s.ring) != 1 {
		t.Fatalf("after removes: map %d ring %d", len(s.m), len(s.ring))
	}
	keys(&s)
}

func firstKey[T any](s *shard[T]) string {
	for k := range s.m {
		return k
	}
	return ""
}

// TestShardCapacities checks that the shards' capacities add up to
// MaxEntries exactly.
func TestShardCapacities(t *testing.T) {
	for _, max := range []int{1, 2, 3, 15, 16, 17, 100, 10_001} {
		c, _ := New[int](Config{MaxEntries: max})
		sum := 0
		for i := range c.shards {
			if c.shards[i].capacity < 1 {
				t.Errorf("MaxEntries %d: shard %d has capacity %d", max, i, c.shards[i].capacity)
			}
			sum += c.shards[i].capacity
		}
		if sum != max || len(c.shards) > maxShards {
			t.Errorf("MaxEntries %d: %d shards, capacities sum to %d", max, len(c.shards), sum)
		}
	}
}

// TestHitAllocs checks that a fresh hit allocates nothing.
func TestHitAllocs(t *testing.T) {
	c, _ := New[string](Config{TTL: time.Hour})
	c.Put("k", "v")
	ctx := context.Background()
	fn := func(context.Context) (string, error) { return "", nil }
	allocs := testing.AllocsPerRun(1000, func() {
		if _, info, _ := c.Get(ctx, "k", fn); info.Outcome != Hit {
			panic("not a hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("fresh hit allocates %v times per call", allocs)
	}
}

// TestConcurrentStress mixes every operation on a few keys from many
// goroutines, for the race detector, then checks the shards' bookkeeping.
func TestConcurrentStress(t *testing.T) {
	c, _ := New[int](Config{TTL: time.Millisecond, StaleIfError: time.Millisecond, MaxEntries: 8})
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			p := c.Policy(func(context.Context) string { return names[g] })
			for i := range 400 {
				k := names[(g*7+i)%len(names)]
				switch i % 10 {
				case 0:
					c.Put(k, i)
				case 1:
					c.Delete(k)
				case 2:
					if g == 0 {
						c.Purge()
					}
				case 3:
					sluice.Get(context.Background(), sluice.NewPipeline(p), func(context.Context) (int, error) { return i, nil })
				case 4:
					c.Get(context.Background(), k, func(context.Context) (int, error) { return 0, errors.New("down") })
				default:
					// A coalesced caller may share a failing call's error.
					if v, _, err := c.Get(context.Background(), k, func(context.Context) (int, error) { return i, nil }); (err != nil && err.Error() != "down") || v < 0 {
						t.Errorf("Get: %v %v", v, err)
					}
				}
				if c.Len() > 8 {
					t.Errorf("Len %d > MaxEntries", c.Len())
				}
			}
		})
	}
	wg.Wait()
	for i := range c.shards {
		s := &c.shards[i]
		if len(s.flights) != 0 || len(s.m) != len(s.ring) || len(s.ring) > s.capacity {
			t.Fatalf("shard %d: %d flights, %d map, %d ring, capacity %d", i, len(s.flights), len(s.m), len(s.ring), s.capacity)
		}
		keys(s)
	}
}
