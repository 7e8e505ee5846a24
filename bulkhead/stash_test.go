package bulkhead

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// stashed returns the permits sitting in b's stashes.
func stashed(b *Bulkhead) int64 {
	n, _ := b.stashTotals()
	return n
}

// takeAll takes every permit of b with TryAcquire, failing the test if
// fewer than n are free or more are.
func takeAll(t *testing.T, b *Bulkhead, n int) {
	t.Helper()
	for i := range n {
		if !b.TryAcquire() {
			t.Fatalf("TryAcquire %d of %d refused; stats %+v, stashed %d", i+1, n, b.Stats(), stashed(b))
		}
	}
	if b.TryAcquire() {
		t.Fatalf("TryAcquire %d admitted beyond the limit", n+1)
	}
}

func TestStripedOnlyForLargeStrictLimits(t *testing.T) {
	g := &Group{}
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, false},
		{Config{MaxConcurrent: stripeMin - 1}, false},
		{Config{MaxConcurrent: stripeMin}, true},
		{Config{MaxConcurrent: 1 << 16}, true},
		{Config{MaxConcurrent: 1 << 16, Group: g}, false},
		{Config{MaxConcurrent: 1 << 16, Isolation: Shared, Group: g}, false},
		{Config{MaxConcurrent: 1 << 16, Isolation: Adaptive}, false},
	} {
		if got := mustNew(t, tc.cfg).striped.Load(); got != tc.want {
			t.Errorf("%+v: striped %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

// TestStripedStealsFromOtherStashes: with every free permit in stashes of
// cells other than the caller's, TryAcquire and Acquire still take them all,
// and refuse only once none is left anywhere.
func TestStripedStealsFromOtherStashes(t *testing.T) {
	const limit = stripeMin
	b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: 4})
	takeAll(t, b, limit)
	// Hand every permit back into the stashes of the other cells, as
	// releases on other goroutines would.
	mine := stripe.Hint()
	for i, left := 0, limit; left > 0; i++ {
		if c := i % stashCells; c != mine {
			b.cells[c].w.Add(1)
			left--
		}
	}
	if got := stashed(b); got != limit {
		t.Fatalf("stashed %d, want %d", got, limit)
	}
	if st := b.Stats(); st.Active != 0 {
		t.Fatalf("Active %d with every permit stashed, want 0", st.Active)
	}
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatalf("Acquire with permits stashed elsewhere: %v", err)
	}
	takeAll(t, b, limit-1)
	st := b.Stats()
	if st.Active != limit || st.Waited != 0 || st.Admitted != 2*limit {
		t.Fatalf("stats %+v, want Active %d, Waited 0, Admitted %d", st, limit, 2*limit)
	}
}

// TestStripedReleaseWakesWaiter: a release that puts its permit in a stash
// while a caller waits hands it to the waiter.
func TestStripedReleaseWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = stripeMin
		b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: 1})
		takeAll(t, b, limit)
		done := make(chan error, 1)
		go func() { done <- b.Acquire(context.Background()) }()
		synctest.Wait()
		if st := b.Stats(); st.Queued != 1 {
			t.Fatalf("Queued %d, want 1", st.Queued)
		}
		b.Release()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("waiter: %v", err)
			}
		default:
			t.Fatal("waiter not woken by a release")
		}
		if n := stashed(b); n != 0 {
			t.Fatalf("stashed %d after handing the permit over, want 0", n)
		}
		b.Release()
	})
}

// TestStripedDepositWhileJoining: a permit put in a stash after the joining
// caller looked but before it was counted as a waiter (so the releaser saw
// no waiter) still reaches it.
func TestStripedDepositWhileJoining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = stripeMin
		b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: 1})
		takeAll(t, b, limit)
		released := false
		b.testHookEnqueue = func() {
			if !released {
				released = true
				b.Release() // into a stash: the state word is untouched
			}
		}
		done := make(chan error, 1)
		go func() { done <- b.Acquire(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
		default:
			t.Fatal("joining caller left waiting with a permit in a stash")
		}
		if !released {
			t.Fatal("hook did not run")
		}
		if st := b.Stats(); st.Active != limit || st.Queued != 0 {
			t.Fatalf("stats %+v, want Active %d, Queued 0", st, limit)
		}
	})
}

// TestStripedEnqueueTakesStashedPermit: a ticket whose Enqueue raced with a
// stash deposit is admitted at once.
func TestStripedEnqueueTakesStashedPermit(t *testing.T) {
	const limit = stripeMin
	b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: 1})
	takeAll(t, b, limit)
	b.testHookEnqueue = func() {
		b.testHookEnqueue = nil
		b.Release()
	}
	tk, admitted, err := b.Enqueue(time.Unix(0, 0))
	if err != nil || !admitted || tk != (Ticket{}) {
		t.Fatalf("Enqueue = %v, %v, %v; want admitted", tk, admitted, err)
	}
	if g := b.Granted(); len(g) != 0 {
		t.Fatalf("Granted %d tickets, want 0", len(g))
	}
}

// TestStripedUpdate: lowering the limit drains the stashes, so stashed
// permits taken under the old limit cannot be used beyond the new one, and
// raising it past the threshold turns stashes on.
func TestStripedUpdate(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 2 * stripeMin})
	for range 100 {
		if !b.TryAcquire() {
			t.Fatal("refused")
		}
	}
	for range 100 {
		b.Release()
	}
	if stashed(b) == 0 {
		t.Fatal("no permit stashed: the test does not exercise the stashes")
	}
	if err := b.Update(Config{MaxConcurrent: 100}); err != nil {
		t.Fatal(err)
	}
	if b.striped.Load() {
		t.Fatal("still striped with a limit of 100")
	}
	if n := stashed(b); n != 0 {
		t.Fatalf("stashed %d after Update, want 0", n)
	}
	takeAll(t, b, 100)
	if err := b.Update(Config{MaxConcurrent: stripeMin}); err != nil {
		t.Fatal(err)
	}
	if !b.striped.Load() {
		t.Fatal("not striped after raising the limit")
	}
	takeAll(t, b, stripeMin-100)
	for range stripeMin {
		b.Release()
	}
	if st := b.Stats(); st.Active != 0 || st.Admitted != stripeMin+100 {
		t.Fatalf("stats %+v, want Active 0, Admitted %d", st, stripeMin+100)
	}
}

// TestStripedCapStress: many more goroutines than permits take and return
// them through every path (TryAcquire, queued Acquire, Execute); the count
// in use, kept inside the critical section, never exceeds the limit, no
// waiter is left behind, and every permit comes back.
func TestStripedCapStress(t *testing.T) {
	const (
		limit   = stripeMin
		workers = limit + 200
	)
	iters := 200
	if testing.Short() {
		iters = 50
	}
	b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: workers})
	p := sluice.NewPipeline(b)
	var inUse, peak, admitted atomic.Int64
	enter := func() {
		n := inUse.Add(1)
		if n > limit {
			t.Errorf("%d permits in use, limit %d", n, limit)
		}
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		admitted.Add(1)
		runtime.Gosched()
		inUse.Add(-1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				switch (w + i) % 3 {
				case 0:
					if b.TryAcquire() {
						enter()
						b.Release()
					}
				case 1:
					if err := b.Acquire(ctx); err != nil {
						t.Errorf("Acquire: %v", err)
						return
					}
					enter()
					b.Release()
				case 2:
					if err := p.Do(ctx, func(context.Context) error { enter(); return nil }); err != nil {
						t.Errorf("Execute: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	if st.Active != 0 || st.Queued != 0 || st.Admitted != admitted.Load() {
		t.Fatalf("stats %+v, want Active 0, Queued 0, Admitted %d", st, admitted.Load())
	}
	if peak.Load() < limit/2 {
		t.Errorf("peak in use %d: the test never came near the limit %d", peak.Load(), limit)
	}
	takeAll(t, b, limit)
}
