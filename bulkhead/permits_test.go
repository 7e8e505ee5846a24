package bulkhead

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// stashed returns the permits sitting in b's stashes.
func stashed(b *Bulkhead) int64 {
	n, _ := b.p.stashTotals()
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
		if got := mustNew(t, tc.cfg).p.striped.Load(); got != tc.want {
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
			b.p.cells[c].w.Add(1)
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
		b.p.testHookJoin = func() {
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

// TestStripedEnqueueTakesStashedPermit: a ticket whose EnqueueAt raced with a
// stash deposit is admitted at once.
func TestStripedEnqueueTakesStashedPermit(t *testing.T) {
	const limit = stripeMin
	b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: 1})
	takeAll(t, b, limit)
	b.p.testHookJoin = func() {
		b.p.testHookJoin = nil
		b.Release()
	}
	tk, admitted, err := b.EnqueueAt(time.Unix(0, 0))
	if err != nil || !admitted || tk != (Ticket{}) {
		t.Fatalf("EnqueueAt = %v, %v, %v; want admitted", tk, admitted, err)
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
	if b.p.striped.Load() {
		t.Fatal("still striped with a limit of 100")
	}
	if n := stashed(b); n != 0 {
		t.Fatalf("stashed %d after Update, want 0", n)
	}
	takeAll(t, b, 100)
	if err := b.Update(Config{MaxConcurrent: stripeMin}); err != nil {
		t.Fatal(err)
	}
	if !b.p.striped.Load() {
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

// newPermits returns permits with limit n, stashes if striped, and a wake
// that counts its calls.
func newPermits(n int64, striped bool) (*permits, *atomic.Int64) {
	var wakes atomic.Int64
	p := &permits{wake: func() { wakes.Add(1) }}
	p.setLimit(n)
	p.setStriped(striped)
	return p, &wakes
}

// TestPermitsHotWordsShareOneLine: the state word, the limit, the striped
// flag and the salt, read by every call, sit on one cache line of their own,
// and each stash cell on one of its own after it.
func TestPermitsHotWordsShareOneLine(t *testing.T) {
	var p permits
	state := unsafe.Offsetof(p.state)
	if state != 64 {
		t.Errorf("state at offset %d, want 64 (after a line of padding)", state)
	}
	if got := unsafe.Offsetof(p.salt) + unsafe.Sizeof(p.salt) - state; got > 64 {
		t.Errorf("hot fields span %d bytes, want at most 64", got)
	}
	if got := unsafe.Offsetof(p.cells) - state; got != 64 {
		t.Errorf("cells start %d bytes after state, want 64", got)
	}
	if got := unsafe.Sizeof(p.cells[0]); got != 64 {
		t.Errorf("a stash cell is %d bytes, want 64", got)
	}
}

// TestPermitsWordCapsAtLimit: without stashes, tryAcquire grants exactly the
// limit, release frees one for the next caller, and inUse and admitted follow.
func TestPermitsWordCapsAtLimit(t *testing.T) {
	p, wakes := newPermits(3, false)
	for i := range 3 {
		if !p.tryAcquire(0) {
			t.Fatalf("tryAcquire %d refused", i+1)
		}
	}
	if p.tryAcquire(0) {
		t.Fatal("tryAcquire beyond the limit")
	}
	p.release(0)
	if !p.tryAcquire(0) {
		t.Fatal("tryAcquire refused after a release")
	}
	if p.inUse() != 3 || p.admitted() != 4 || p.waiting() != 0 {
		t.Fatalf("inUse %d admitted %d waiting %d, want 3 4 0", p.inUse(), p.admitted(), p.waiting())
	}
	if wakes.Load() != 0 {
		t.Fatalf("woke the queue %d times with nobody waiting", wakes.Load())
	}
}

// TestPermitsStashedCapIsExact: with stashes, permits taken through one cell
// and returned through others are conserved: the cap stays the limit, inUse
// counts the permits held, and all of them can be taken again.
func TestPermitsStashedCapIsExact(t *testing.T) {
	const limit = stripeMin
	p, _ := newPermits(limit, true)
	for i := range limit {
		if !p.tryAcquire(i % stashCells) {
			t.Fatalf("tryAcquire %d refused", i+1)
		}
	}
	for h := range stashCells {
		if p.tryAcquire(h) {
			t.Fatalf("tryAcquire through cell %d beyond the limit", h)
		}
	}
	for i := range limit / 2 {
		p.release((i * 3) % stashCells) // other cells than they were taken from
	}
	if got := p.inUse(); got != limit/2 {
		t.Fatalf("inUse %d, want %d", got, limit/2)
	}
	for i := range limit / 2 {
		if !p.tryAcquire(i % 2) {
			free, _ := p.stashTotals()
			t.Fatalf("retake %d refused with %d stashed", i+1, free)
		}
	}
	if p.tryAcquire(0) || p.inUse() != limit || p.admitted() != limit+limit/2 {
		t.Fatalf("inUse %d admitted %d, want %d %d and no more permits", p.inUse(), p.admitted(), limit, limit+limit/2)
	}
}

// TestPermitsPutWithoutPermitPanics: returning a permit that was not taken
// panics and leaves the word as it was.
func TestPermitsPutWithoutPermitPanics(t *testing.T) {
	p, _ := newPermits(2, false)
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "without a permit") {
				t.Fatalf("recovered %v, want a panic about a missing permit", r)
			}
		}()
		p.release(0)
	}()
	if p.state.Load() != 0 {
		t.Fatalf("state %#x after the panic, want 0", p.state.Load())
	}
	if !p.tryAcquire(0) || !p.tryAcquire(0) || p.tryAcquire(0) {
		t.Fatal("the limit is not 2 after the panic")
	}
}

// TestPermitsJoin is the way into the queue's count, step by step: a free
// permit is taken, a full word counts a waiter, a full queue refuses, a
// stashed permit is drained for the queue first, and a waiter's permit is
// taken in the same CAS that uncounts it.
func TestPermitsJoin(t *testing.T) {
	p, wakes := newPermits(stripeMin, true)
	if r := p.join(1); r != joinTook {
		t.Fatalf("join with permits free = %d, want joinTook", r)
	}
	for p.tryAcquire(0) {
	}
	if got := p.inUse(); got != stripeMin {
		t.Fatalf("inUse %d, want %d", got, stripeMin)
	}
	p.cells[3].w.Add(1) // a permit returned to a stash, the word not yet looked at
	if r := p.join(1); r != joinDrained {
		t.Fatalf("join with a permit stashed = %d, want joinDrained", r)
	}
	if free, _ := p.stashTotals(); free != 0 {
		t.Fatal("join did not drain the stash")
	}
	if r := p.join(1); r != joinTook {
		t.Fatalf("join after the drain = %d, want joinTook", r)
	}
	if r := p.join(1); r != joinQueued || p.waiting() != 1 {
		t.Fatalf("join on a full word = %d with %d waiting, want joinQueued and 1", r, p.waiting())
	}
	if r := p.join(1); r != joinFull {
		t.Fatalf("join on a full queue = %d, want joinFull", r)
	}
	if p.takeForWaiter() {
		t.Fatal("takeForWaiter with no permit free")
	}
	p.release(0) // into a stash, with a waiter: flushed to the word, queue woken
	if wakes.Load() != 1 {
		t.Fatalf("woke the queue %d times, want 1", wakes.Load())
	}
	if !p.takeForWaiter() || p.waiting() != 0 || p.inUse() != stripeMin {
		t.Fatalf("takeForWaiter: waiting %d inUse %d, want 0 and %d", p.waiting(), p.inUse(), stripeMin)
	}
	if r := p.join(1); r != joinQueued {
		t.Fatalf("join = %d, want joinQueued", r)
	}
	p.unwait()
	if p.waiting() != 0 {
		t.Fatalf("waiting %d after unwait, want 0", p.waiting())
	}
}

// TestPermitsStealWakesQueue: a caller that drains stashed permits while
// others wait hands them to the queue and takes none itself.
func TestPermitsStealWakesQueue(t *testing.T) {
	p, wakes := newPermits(stripeMin, true)
	for p.tryAcquire(0) {
	}
	if r := p.join(1); r != joinQueued {
		t.Fatalf("join = %d, want joinQueued", r)
	}
	p.cells[5].w.Add(1) // a permit stashed without looking at the word
	if p.tryAcquire(0) {
		t.Fatal("tryAcquire jumped the queue")
	}
	if wakes.Load() != 1 || !p.takeForWaiter() {
		t.Fatalf("woke %d times, and the waiter's permit is not in the word", wakes.Load())
	}
}

// TestPermitsSetStripedOffKeepsStashedUntilDrained: turning the stashes off
// leaves their permits counted as taken until a drain returns them.
func TestPermitsSetStripedOffKeepsStashedUntilDrained(t *testing.T) {
	p, _ := newPermits(stripeMin, true)
	for range 10 {
		if !p.tryAcquire(2) {
			t.Fatal("refused")
		}
	}
	for range 10 {
		p.release(2)
	}
	p.setStriped(false)
	p.setLimit(4)
	if got := p.drain(); got == 0 {
		t.Fatal("drain moved nothing: the test does not exercise the stashes")
	}
	if p.inUse() != 0 || p.drain() != 0 {
		t.Fatalf("inUse %d after the drain, want 0", p.inUse())
	}
	for i := range 4 {
		if !p.tryAcquire(i) {
			t.Fatalf("tryAcquire %d refused", i+1)
		}
	}
	if p.tryAcquire(0) {
		t.Fatal("tryAcquire beyond the lowered limit")
	}
}

// TestPermitsTakeBeyond: past its own limit a member takes up to overflow
// more, and only while idle says the lender has room.
func TestPermitsTakeBeyond(t *testing.T) {
	p, _ := newPermits(2, false)
	p.setOverflow(1)
	room := true
	idle := func() bool { return room }
	for range 2 {
		if !p.tryAcquire(0) {
			t.Fatal("own permit refused")
		}
	}
	room = false
	if p.takeBeyond(false, idle) {
		t.Fatal("overflow granted without room in the group")
	}
	room = true
	if !p.takeBeyond(false, idle) {
		t.Fatal("overflow refused with room in the group")
	}
	if p.takeBeyond(false, idle) {
		t.Fatal("overflow beyond its share")
	}
	if p.inUse() != 3 || p.admitted() != 3 {
		t.Fatalf("inUse %d admitted %d, want 3 3", p.inUse(), p.admitted())
	}
}

// TestPermitsExecuteReturnsThroughItsCell: Execute takes the cell hint
// once and returns its permit through the cell it took it from, so a call
// leaves every stashed permit in one cell; and the hint is a valid cell.
func TestPermitsExecuteReturnsThroughItsCell(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: stripeMin})
	if h := b.p.hint(); h < 0 || h >= stashCells {
		t.Fatalf("hint %d out of [0, %d)", h, stashCells)
	}
	if err := sluice.NewPipeline(b).Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var used []int
	for i := range b.p.cells {
		if b.p.cells[i].w.Load()&stashMask != 0 {
			used = append(used, i)
		}
	}
	if len(used) != 1 {
		t.Fatalf("permits stashed in cells %v after one call, want one cell", used)
	}
	if st := b.Stats(); st.Active != 0 || st.Admitted != 1 {
		t.Fatalf("stats %+v, want Active 0, Admitted 1", st)
	}
}
