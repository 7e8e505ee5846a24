package sluiceredis_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
	"github.com/sluice-go/sluice/sluicetest"
)

// trips counts the round trips in which a client runs scripts: single
// EVALSHA or EVAL commands, and pipelines with the scripts they carried.
// (A client's first script call is two: EVALSHA, refused while the server
// does not have the script, then EVAL.)
type trips struct{ single, pipelines, piped atomic.Int64 }

func (c *trips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			c.single.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.pipelines.Add(1)
		c.piped.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (c *trips) total() int64 { return c.single.Load() + c.pipelines.Load() }

// countedLimiter is newLimiter with a client whose round trips are
// counted.
func countedLimiter(t *testing.T, srv *redistest.Server, cfg sluiceredis.LimiterConfig) (*sluiceredis.Limiter, *trips) {
	t.Helper()
	c := srv.Client()
	tr := &trips{}
	c.AddHook(tr)
	cfg.Client = c
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Key == "" {
		cfg.Key = sluiceredis.LimiterKey("route", "")
	}
	l, err := sluiceredis.NewLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, tr
}

// hammer calls Take(1) calls times from workers goroutines on the limiters
// (round robin) and returns how many were admitted; any error fails t.
func hammer(t *testing.T, workers, calls int, ls ...*sluiceredis.Limiter) int64 {
	t.Helper()
	var admitted, next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[w%len(ls)]
			for next.Add(1) <= int64(calls) {
				d, err := l.Take(bg, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return admitted.Load()
}

// Concurrent calls on one limiter share pipelines: fewer round trips than
// calls, and still exactly the burst admitted, across two instances.
func TestLimiterBatchesConcurrentCalls(t *testing.T) {
	srv := redistest.Start(t)
	cfg := sluiceredis.LimiterConfig{Rate: 1, Per: time.Hour, Burst: 150}
	a, ta := countedLimiter(t, srv, cfg)
	b, tb := countedLimiter(t, srv, cfg)
	const calls = 600
	if got := hammer(t, 32, calls, a, b); got != 150 {
		t.Fatalf("admitted %d of %d concurrent calls, want exactly the burst of 150", got, calls)
	}
	trips := ta.total() + tb.total()
	piped := ta.piped.Load() + tb.piped.Load()
	if ta.pipelines.Load()+tb.pipelines.Load() == 0 || trips >= calls {
		t.Fatalf("%d calls took %d round trips (%d pipelines carrying %d scripts); want batching",
			calls, trips, ta.pipelines.Load()+tb.pipelines.Load(), piped)
	}
	t.Logf("%d calls in %d round trips (%d scripts in %d pipelines)", calls, trips, piped, ta.pipelines.Load()+tb.pipelines.Load())
}

// A server that lost its scripts (SCRIPT FLUSH) gets them again within the
// pipeline: concurrent calls still decide.
func TestLimiterBatchAfterScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	l, tr := countedLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 1, Per: time.Hour, Burst: 40})
	if err := srv.Client().ScriptFlush(bg).Err(); err != nil {
		t.Fatal(err)
	}
	if got := hammer(t, 16, 100, l); got != 40 {
		t.Fatalf("admitted %d after SCRIPT FLUSH, want 40", got)
	}
	if tr.pipelines.Load() == 0 {
		t.Skip("no call was batched on this run; the flush path was not exercised")
	}
}

// Callers queued behind a pipeline to a hung server give up at Timeout:
// every one returns ErrUnavailable within the timeout and a margin.
func TestLimiterQueuedCallsKeepTimeout(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 100, Burst: 10, Timeout: 50 * time.Millisecond})
	take(t, l, 1) // connected
	srv.Pause()
	defer srv.Resume()
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := l.Take(bg, 1)
			el := time.Since(start)
			for {
				old := slowest.Load()
				if int64(el) <= old || slowest.CompareAndSwap(old, int64(el)) {
					break
				}
			}
			if !errors.Is(err, sluiceredis.ErrUnavailable) {
				t.Errorf("Take on a hung server = %v, want ErrUnavailable", err)
			}
		}()
	}
	wg.Wait()
	if el := time.Duration(slowest.Load()); el > 250*time.Millisecond {
		t.Fatalf("the slowest of 32 queued calls took %v with a 50ms timeout", el)
	}
}

// The round trip a caller joins is not bound to its context: a caller
// whose context ends while queued gets its context's error, and the others
// in its batch are decided.
func TestLimiterQueuedCallerCancelled(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 1, Per: time.Hour, Burst: 100})
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := l.Take(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take with a done context = %v", err)
	}
	if got := hammer(t, 8, 50, l); got != 50 {
		t.Fatalf("admitted %d of 50 after a cancelled call, want 50", got)
	}
}

// With a lease, sequential calls on one instance mostly skip Redis: each
// round trip takes the caller's token and up to Lease more.
func TestLimiterLeaseFewerRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	l, tr := countedLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 1, Per: time.Hour, Burst: 1000, Lease: 9, LeaseTTL: time.Hour})
	take(t, l, 1)
	first := tr.total()
	for i := range 99 {
		if d := take(t, l, 1); !d.Allowed {
			t.Fatalf("call %d refused: %+v", i, d)
		}
	}
	if got := tr.total() - first; got != 9 {
		t.Fatalf("99 calls after the first with a lease of 9 took %d round trips, want 9", got)
	}
}

// Leased tokens are taken from the shared limit at once, and Close hands the
// unused ones back; another instance sees both.
func TestLimiterLeaseTakenAndHandedBack(t *testing.T) {
	srv := redistest.Start(t)
	cfg := sluiceredis.LimiterConfig{Key: sluiceredis.LimiterKey("lease", ""), Rate: 1, Per: time.Hour, Burst: 20}
	probe := newLimiter(t, srv, cfg)
	cfg.Lease, cfg.LeaseTTL = 10, time.Hour
	leased := newLimiter(t, srv, cfg)
	take(t, leased, 1) // 1 + 10 leased of 20
	admitted := func() int {
		n := 0
		for take(t, probe, 1).Allowed {
			n++
			if n > 20 {
				t.Fatal("the probe admits past the burst")
			}
		}
		return n
	}
	if got := admitted(); got != 9 {
		t.Fatalf("another instance got %d tokens beside a lease of 10 of 20, want 9", got)
	}
	for i := range 10 {
		if d := take(t, leased, 1); !d.Allowed {
			t.Fatalf("leased token %d refused: %+v", i, d)
		}
	}
	if d := take(t, leased, 1); d.Allowed {
		t.Fatalf("the leasing instance admitted past its lease and the burst: %+v", d)
	}
	// A fresh lease of 4 (the key's tokens after a give-back are what was
	// handed back), then Close returns the 3 unused.
	_ = srv.Client().Del(bg, cfg.Key)
	cfg.Lease = 4
	l2 := newLimiter(t, srv, cfg)
	take(t, l2, 1) // 1 + 4 of 20
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := admitted(); got != 19 {
		t.Fatalf("after Close handed back the lease the probe got %d, want 19", got)
	}
	if d := take(t, l2, 1); d.Allowed {
		t.Fatalf("a closed limiter used its handed-back lease: %+v", d)
	}
}

// A lease expires after LeaseTTL: the next call asks Redis and hands the
// expired tokens back with it.
func TestLimiterLeaseExpires(t *testing.T) {
	srv := redistest.Start(t)
	clock := sluicetest.NewFakeClock(time.Now())
	cfg := sluiceredis.LimiterConfig{Rate: 1, Per: time.Hour, Burst: 20, Lease: 10, LeaseTTL: 100 * time.Millisecond, Clock: clock}
	l, tr := countedLimiter(t, srv, cfg)
	take(t, l, 1)
	first := tr.total()
	take(t, l, 1) // from the lease
	if got := tr.total() - first; got != 0 {
		t.Fatalf("a call within the lease took %d round trips, want 0", got)
	}
	clock.Advance(100 * time.Millisecond)
	take(t, l, 1) // hands back 9, takes 1 + 10
	if got := tr.total() - first; got != 1 {
		t.Fatalf("a call after LeaseTTL took %d round trips, want 1", got)
	}
	cfg.Lease, cfg.Clock = 0, nil
	probe := newLimiter(t, srv, cfg)
	n := 0
	for take(t, probe, 1).Allowed && n <= 20 {
		n++
	}
	// 20 − 1 − 1 − 1 used − 10 leased now = 7.
	if n != 7 {
		t.Fatalf("beside the renewed lease another instance got %d tokens, want 7", n)
	}
}

// The error a lease allows in the global bound, at its worst: each of
// several instances leases while the limit is idle, the bucket refills
// (Redis drops the key once it is full), and then all of them call as fast
// as they go over a fixed window. Redis alone admits at most Burst +
// Rate·window in it; the leases add what the instances held when the window
// opened, at most Lease each. The same fleet without leases runs beside it.
func TestLimiterLeaseBoundError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about two seconds")
	}
	srv := redistest.Start(t, redistest.AppendFsync("everysec"))
	const (
		instances = 4
		rate      = 400.0 // per second
		burst     = 100
		lease     = 20
		window    = 300 * time.Millisecond
	)
	for _, l := range []int{0, lease} {
		key := sluiceredis.LimiterKey("bound", map[bool]string{false: "plain", true: "leased"}[l > 0])
		var ls []*sluiceredis.Limiter
		for range instances {
			x := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: key, Rate: rate, Burst: burst, Lease: l, LeaseTTL: 5 * time.Second})
			take(t, x, 1) // and lease, while the bucket has room
			ls = append(ls, x)
		}
		waitGone(t, srv, key)
		w := admittedInWindow(t, ls, window)
		bound := float64(burst) + rate*window.Seconds()
		documented := bound + float64(instances*l)
		// The window's edges are the test's clock; the limit runs on the
		// server's, a round trip away: allow 10ms of the rate.
		slack := rate * 0.010
		// What the fleet must at least have been admitted: Redis's rate runs
		// from the first call it received (at most one round trip after the
		// first call began), and the calls it admitted in the last round
		// trip of the window are answered after it and not counted. Both
		// edges are measured, as a loaded machine moves them.
		calling := window - w.late - 2*w.slowest
		floor := float64(burst) + rate*calling.Seconds()
		t.Logf("lease %d: %d instances admitted %d in %v; Redis alone allows %.0f, with leases at most %.0f; measured error %+.0f (first call %v late, slowest call %v)",
			l, instances, w.admitted, window, bound, documented, float64(w.admitted)-bound, w.late, w.slowest)
		if float64(w.admitted) > documented+slack {
			t.Fatalf("lease %d: admitted %d in the window, over the bound %.0f", l, w.admitted, documented)
		}
		if float64(w.admitted) < floor-slack-1 {
			t.Fatalf("lease %d: admitted only %d in the window, under what Redis allows in the %v the fleet was calling (%.0f): the test measured nothing",
				l, w.admitted, calling, floor)
		}
		for _, x := range ls {
			_ = x.Close()
		}
	}
}

// waitGone polls until key is gone: the limit's bucket is full again.
func waitGone(t *testing.T, srv *redistest.Server, key string) {
	t.Helper()
	c := srv.Client()
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, err := c.Exists(bg, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s still there after 5s", key)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's expiry, bounded above
	}
}

// storeMax raises v to x if x is larger. Each failed swap means another
// caller raised v, so the loop ends.
func storeMax(v *atomic.Int64, x int64) {
	for cur := v.Load(); x > cur && !v.CompareAndSwap(cur, x); cur = v.Load() {
	}
}

// windowRun is what admittedInWindow measured: the calls admitted and
// answered within the window, how long after the window opened the first
// call began, and the longest call.
type windowRun struct {
	admitted      int64
	late, slowest time.Duration
}

// admittedInWindow calls Take(1) in a loop from 4 goroutines per limiter
// for window and returns how many calls were admitted, with the edges it
// measured.
func admittedInWindow(t *testing.T, ls []*sluiceredis.Limiter, window time.Duration) windowRun {
	t.Helper()
	open := time.Now()
	shut := open.Add(window)
	var in, first, slowest atomic.Int64 // first: ns after open, +1 (0: none yet)
	var wg sync.WaitGroup
	for i := range 4 * len(ls) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[i%len(ls)]
			for start := time.Now(); start.Before(shut); start = time.Now() {
				first.CompareAndSwap(0, int64(start.Sub(open))+1)
				d, err := l.Take(bg, 1)
				end := time.Now()
				if err != nil {
					t.Error(err)
					return
				}
				storeMax(&slowest, int64(end.Sub(start)))
				if d.Allowed && !end.After(shut) {
					in.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return windowRun{admitted: in.Load(), late: time.Duration(first.Load() - 1), slowest: time.Duration(slowest.Load())}
}

// A lone caller's own deadline, shorter than Timeout, bounds its round
// trip to a hung server: it gets its context's error in time, and the
// limiter does not count that as a Redis failure.
func TestLimiterCallerDeadlineOnHungServer(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 100, Burst: 10, Timeout: 2 * time.Second})
	take(t, l, 1) // connected
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Take(ctx, 1)
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("Take with a 50ms deadline took %v on a hung server", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || l.Degraded() {
		t.Fatalf("Take = %v, degraded %v; want the context's deadline, not degraded", err, l.Degraded())
	}
}
