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
	c.store.Each(func(s *shard[int]) {
		s.RLock()
		defer s.RUnlock()
		if len(s.Extra) != 0 {
			t.Fatalf("%d flights left", len(s.Extra))
		}
		if err := s.CheckLocked(); err != nil {
			t.Fatal(err)
		}
	})
}
