package ttlstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func keys[V, X any](t *testing.T, s *Shard[V, X]) map[string]bool {
	t.Helper()
	if err := s.CheckLocked(); err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for k := range s.m {
		m[k] = true
	}
	return m
}

// oneShard returns a lone shard of the given capacity, built as New builds
// them.
func oneShard(capacity int, life time.Duration) *Shard[int, struct{}] {
	return &Shard[int, struct{}]{m: make(map[string]*Entry[int]), capacity: capacity, life: life}
}

// TestClockSweep checks second-chance eviction on one shard.
func TestClockSweep(t *testing.T) {
	s := oneShard(3, time.Minute)
	for i, k := range []string{"a", "b", "c"} {
		if s.PutAtLocked(k, i, t0) {
			t.Fatalf("evicted while filling")
		}
	}
	s.GetLocked("a").Touch()
	if !s.PutAtLocked("d", 3, t0) {
		t.Fatal("store into a full shard did not evict")
	}
	if got := keys(t, s); !got["a"] || got["b"] || !got["c"] || !got["d"] {
		t.Fatalf("after d: keys %v, want a (second chance), c, d", got)
	}
	if s.GetLocked("a").ref.Load() {
		t.Fatal("the hand passed a but left its bit set")
	}
	// The hand is now past b's slot, at c: unreferenced, so c goes next.
	s.PutAtLocked("e", 4, t0)
	if got := keys(t, s); !got["a"] || got["c"] || !got["d"] || !got["e"] {
		t.Fatalf("after e: keys %v, want a, d, e", got)
	}
	// A referenced but expired entry is evicted at once.
	for _, k := range []string{"a", "d", "e"} {
		s.GetLocked(k).Touch()
	}
	later := t0.Add(time.Minute)
	s.PutAtLocked("f", 5, later)
	if got := keys(t, s); len(got) != 3 || !got["f"] {
		t.Fatalf("after f: keys %v", got)
	}
	// Updating a key in place neither grows nor evicts.
	if s.PutAtLocked("f", 6, later) || len(s.m) != 3 || s.GetLocked("f").Value != 6 {
		t.Fatalf("update in place: %v", keys(t, s))
	}
	s.RemoveLocked(s.GetLocked("f"))
	if !s.DeleteLocked(firstKey(s)) || s.DeleteLocked("f") {
		t.Fatal("DeleteLocked reported wrongly")
	}
	if len(s.m) != 1 || len(s.ring) != 1 {
		t.Fatalf("after removes: map %d ring %d", len(s.m), len(s.ring))
	}
	keys(t, s)
	s.ResetLocked()
	if len(s.m) != 0 || len(s.ring) != 0 || s.hand != 0 {
		t.Fatalf("after reset: map %d ring %d hand %d", len(s.m), len(s.ring), s.hand)
	}
}

func firstKey[V, X any](s *Shard[V, X]) string {
	for k := range s.m {
		return k
	}
	return ""
}

// TestExpired checks the one rule of time at its boundary.
func TestExpired(t *testing.T) {
	s := oneShard(1, 10*time.Second)
	for _, tc := range []struct {
		age  time.Duration
		want bool
	}{
		{0, false}, {10*time.Second - 1, false}, {10 * time.Second, true}, {time.Hour, true},
		{-time.Hour, false}, // the clock stepped back: young, not expired
	} {
		if got := s.ExpiredAt(t0, t0.Add(tc.age)); got != tc.want {
			t.Errorf("age %v: expired %v, want %v", tc.age, got, tc.want)
		}
	}
}

// TestShardCapacities checks that the shards' capacities add up to
// maxEntries exactly.
func TestShardCapacities(t *testing.T) {
	for _, max := range []int{1, 2, 3, 15, 16, 17, 100, 10_001} {
		st := New[int, struct{}](max, time.Minute)
		sum := 0
		for i := range st.shards {
			if st.shards[i].capacity < 1 {
				t.Errorf("maxEntries %d: shard %d has capacity %d", max, i, st.shards[i].capacity)
			}
			sum += st.shards[i].capacity
		}
		if sum != max || len(st.shards) > maxShards {
			t.Errorf("maxEntries %d: %d shards, capacities sum to %d", max, len(st.shards), sum)
		}
	}
}

// TestStoreBounded fills a store with many keys from several goroutines and
// checks it never holds more than its bound and keeps its bookkeeping.
func TestStoreBounded(t *testing.T) {
	st := New[int, int](50, time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint(g, "/", i)
				s := st.Shard(k)
				s.Lock()
				s.PutAtLocked(k, i, t0)
				s.Extra++
				s.Unlock()
				if n := st.Len(); n > 50 {
					t.Errorf("Len %d > 50", n)
				}
			}
		})
	}
	wg.Wait()
	extra := 0
	st.Each(func(s *Shard[int, int]) {
		s.RLock()
		defer s.RUnlock()
		extra += s.Extra
		if err := s.CheckLocked(); err != nil {
			t.Error(err)
		}
	})
	if extra != 2000 || st.Len() != 50 {
		t.Errorf("Extra sums to %d, want 2000; Len %d, want 50", extra, st.Len())
	}
}

// TestGetLockedAllocs checks that a read allocates nothing.
func TestGetLockedAllocs(t *testing.T) {
	st := New[string, struct{}](10, time.Minute)
	s := st.Shard("k")
	s.Lock()
	s.PutAtLocked("k", "v", t0)
	s.Unlock()
	if a := testing.AllocsPerRun(1000, func() {
		s := st.Shard("k")
		s.RLock()
		e := s.GetLocked("k")
		e.Touch()
		s.RUnlock()
	}); a != 0 {
		t.Fatalf("a read allocates %v times", a)
	}
}
