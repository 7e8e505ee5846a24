package bulkhead

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestSharedOverflowRules steps a Shared member (cap 10, overflow 5) and a
// Strict member (cap 10) of one group through the overflow rule.
func TestSharedOverflowRules(t *testing.T) {
	g := &Group{}
	a := mustNew(t, Config{Name: "a", MaxConcurrent: 10, Isolation: Shared, OverflowRatio: 0.5, Group: g})
	s := mustNew(t, Config{Name: "s", MaxConcurrent: 10, Group: g})
	if g.Capacity() != 20 || !slices.Equal(g.Members(), []string{"a", "s"}) {
		t.Fatalf("capacity %d members %v", g.Capacity(), g.Members())
	}
	take := func(b *Bulkhead, n int) int {
		got := 0
		for range n {
			if b.TryAcquire() {
				got++
			}
		}
		return got
	}
	release := func(b *Bulkhead, n int) int {
		for range n {
			b.Release()
		}
		return n
	}
	for i, step := range []struct {
		what         string
		do           func() int
		want         int
		aActive, use int
	}{
		{"a takes its own 10", func() int { return take(a, 10) }, 10, 10, 10},
		{"a overflows by 5 while s is idle", func() int { return take(a, 6) }, 5, 15, 15},
		{"s takes 5: the group is at capacity", func() int { return take(s, 5) }, 5, 15, 20},
		{"a releases 1, takes 1 back (group at 19)", func() int { release(a, 1); return take(a, 2) }, 1, 15, 20},
		{"a releases 3", func() int { return release(a, 3) }, 3, 12, 17},
		{"s takes its full share regardless", func() int { return take(s, 5) }, 5, 12, 22},
		{"a, over its cap, gets nothing while the group is over", func() int { return take(a, 1) }, 0, 12, 22},
		{"a releases 2: back at its own cap", func() int { return release(a, 2) }, 2, 10, 20},
		{"a still gets nothing: the group is at capacity", func() int { return take(a, 1) }, 0, 10, 20},
		{"s releases 4", func() int { return release(s, 4) }, 4, 10, 16},
		{"a overflows into the idle share again", func() int { return take(a, 5) }, 4, 14, 20},
	} {
		if got := step.do(); got != step.want {
			t.Fatalf("step %d (%s): got %d, want %d", i, step.what, got, step.want)
		}
		if st := a.Stats(); st.Active != step.aActive || g.InUse() != step.use {
			t.Fatalf("step %d (%s): a active %d, group in use %d; want %d, %d", i, step.what, st.Active, g.InUse(), step.aActive, step.use)
		}
	}
	if st := a.Stats(); st.Overflow != 5 || st.Limit != 10 || st.Utilization != 1.4 {
		t.Fatalf("stats = %+v", st)
	}
	// The strict member never overflows, even with the group idle.
	release(a, 14)
	if got := take(s, 5); got != 4 {
		t.Fatalf("strict member took %d beyond its remaining 4", got)
	}
}

func TestSharedWaiterAdmittedIntoOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &Group{}
		a := mustNew(t, Config{MaxConcurrent: 2, Isolation: Shared, OverflowRatio: 0.5, MaxQueue: 2, Group: g})
		_ = mustNew(t, Config{MaxConcurrent: 2, Group: g}) // idle: lends 2
		for range 3 {
			mustAcquire(t, a) // 2 own + 1 overflow
		}
		w1 := acquireAsync(context.Background(), a)
		w2 := acquireAsync(context.Background(), a)
		pending(w1)
		pending(w2)
		a.Release() // 2 running: w1 gets an overflow permit
		synctest.Wait()
		if err := <-w1; err != nil {
			t.Fatal(err)
		}
		pending(w2)
		if st := a.Stats(); st.Active != 3 || st.Queued != 1 {
			t.Fatalf("stats = %+v", st)
		}
		for range 3 {
			a.Release()
		}
		if err := <-w2; err != nil {
			t.Fatal(err)
		}
		a.Release()
		if g.InUse() != 0 {
			t.Fatalf("in use %d", g.InUse())
		}
	})
}

// TestSharedOverflowConcurrent runs two Shared members flat out and checks
// that neither ever exceeds its cap plus overflow and that every permit
// comes back.
func TestSharedOverflowConcurrent(t *testing.T) {
	g := &Group{}
	members := []*Bulkhead{
		mustNew(t, Config{Name: "a", MaxConcurrent: 4, Isolation: Shared, OverflowRatio: 0.5, MaxQueue: 8, Group: g}),
		mustNew(t, Config{Name: "b", MaxConcurrent: 4, Isolation: Shared, OverflowRatio: 0.5, MaxQueue: 8, Group: g}),
	}
	var wg sync.WaitGroup
	var running [2]atomic.Int32
	var bad atomic.Int32
	for i := range 8 {
		m := i % 2
		b := members[m]
		wg.Go(func() {
			for range 500 {
				if err := b.Acquire(context.Background()); err != nil {
					continue
				}
				if n := running[m].Add(1); n > 6 {
					bad.Store(n)
				}
				running[m].Add(-1)
				b.Release()
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d calls ran in a member with cap 4 + overflow 2", n)
	}
	if g.InUse() != 0 {
		t.Fatalf("in use %d after the run", g.InUse())
	}
}
