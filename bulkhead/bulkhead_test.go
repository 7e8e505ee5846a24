package bulkhead

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

func mustNew(t *testing.T, cfg Config) *Bulkhead {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAcquire(t *testing.T, b *Bulkhead) {
	t.Helper()
	if !b.TryAcquire() {
		t.Fatalf("TryAcquire failed: %+v", b.Stats())
	}
}

// acquireAsync starts Acquire on a goroutine and waits until it has either
// returned or blocked in the queue.
func acquireAsync(ctx context.Context, b *Bulkhead) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- b.Acquire(ctx) }()
	synctest.Wait()
	return ch
}

func pending(ch <-chan error) bool {
	select {
	case err := <-ch:
		panic("returned: " + errString(err))
	default:
		return true
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestConfigDefaults(t *testing.T) {
	b := mustNew(t, Config{})
	c := b.Config()
	if c.MaxConcurrent != 10 || c.MaxQueue != 0 || c.RetryAfter != 100*time.Millisecond || c.Isolation != Strict {
		t.Fatalf("defaults = %+v", c)
	}
	g := &Group{}
	c = mustNew(t, Config{Isolation: Shared, Group: g}).Config()
	if c.OverflowRatio != 0.2 {
		t.Fatalf("OverflowRatio default = %v", c.OverflowRatio)
	}
	c = mustNew(t, Config{Isolation: Adaptive, MaxConcurrent: 50}).Config()
	if c.Adaptive.MaxLimit != 50 || c.MaxConcurrent != 50 || c.Adaptive.MinLimit != 1 || c.Adaptive.InitialLimit != 20 || c.Adaptive.Algorithm != Gradient {
		t.Fatalf("adaptive defaults = %+v", c)
	}
	c = mustNew(t, Config{Isolation: Adaptive}).Config()
	if c.Adaptive.MaxLimit != 1000 || c.MaxConcurrent != 1000 {
		t.Fatalf("adaptive defaults = %+v", c)
	}
}

func TestConfigValidation(t *testing.T) {
	g := &Group{}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxConcurrent: -1}, "Config.MaxConcurrent must be in [0, 1000000], got -1"},
		{Config{MaxConcurrent: maxPermits + 1}, "Config.MaxConcurrent must be in"},
		{Config{MaxQueue: -1}, "Config.MaxQueue must be in [0, 1000000], got -1"},
		{Config{MaxWait: -time.Second}, "Config.MaxWait must not be negative, got -1s"},
		{Config{MaxWait: time.Second}, "Config.MaxWait (1s) needs Config.MaxQueue > 0: without a queue no call waits"},
		{Config{MaxConcurrent: 5, MaxQueue: 0, MaxWait: time.Millisecond}, "Config.MaxWait (1ms) needs Config.MaxQueue > 0"},
		{Config{RetryAfter: -1}, "Config.RetryAfter must not be negative"},
		{Config{Isolation: 7}, "Config.Isolation must be Strict, Shared or Adaptive, got 7"},
		{Config{OverflowRatio: 0.5}, "Config.OverflowRatio must be zero unless Isolation is Shared, got 0.5"},
		{Config{Adaptive: AdaptiveConfig{MaxLimit: 5}}, "Config.Adaptive must be zero unless Isolation is Adaptive"},
		{Config{Isolation: Shared}, "Config.Group must be set when Isolation is Shared"},
		{Config{Isolation: Shared, Group: g, OverflowRatio: 1.5}, "Config.OverflowRatio must be in [0, 1], got 1.5"},
		{Config{Isolation: Adaptive, Group: g}, "Config.Group must be nil when Isolation is Adaptive"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Algorithm: 9}}, "AdaptiveConfig.Algorithm must be Gradient or AIMD, got 9"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{MinLimit: -1}}, "AdaptiveConfig.MinLimit must not be negative"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{MaxLimit: maxPermits + 1}}, "AdaptiveConfig.MaxLimit must be in"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{MinLimit: 10, MaxLimit: 5}}, "AdaptiveConfig.MinLimit must be <= MaxLimit, got 10 > 5"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{MaxLimit: 5, InitialLimit: 6}}, "AdaptiveConfig.InitialLimit must be in [MinLimit, MaxLimit] = [1, 5], got 6"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Backoff: 1}}, "AdaptiveConfig.Backoff must be in (0, 1), got 1"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{LatencyThreshold: -1}}, "AdaptiveConfig.LatencyThreshold must not be negative"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Tolerance: 0.5}}, "AdaptiveConfig.Tolerance must be >= 1, got 0.5"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Smoothing: 2}}, "AdaptiveConfig.Smoothing must be in (0, 1], got 2"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{QueueSize: -1}}, "AdaptiveConfig.QueueSize must not be negative"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{Window: -1}}, "AdaptiveConfig.Window must not be negative"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{WindowSamples: -1}}, "AdaptiveConfig.WindowSamples must not be negative"},
		{Config{Isolation: Adaptive, Adaptive: AdaptiveConfig{LongWindow: -1}}, "AdaptiveConfig.LongWindow must not be negative"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
		if verr := tc.cfg.Validate(); verr == nil || err == nil || verr.Error() != err.Error() {
			t.Errorf("Validate(%+v) = %v, want New's error %v", tc.cfg, verr, err)
		}
	}
	for _, cfg := range []Config{{}, {Isolation: Shared, Group: g}, {Isolation: Adaptive}, {MaxQueue: 3, MaxWait: time.Second}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew did not panic on an invalid config")
		}
	}()
	MustNew(Config{MaxQueue: -1})
}

func TestTryAcquireRelease(t *testing.T) {
	b := mustNew(t, Config{Name: "db", MaxConcurrent: 2})
	mustAcquire(t, b)
	mustAcquire(t, b)
	if b.TryAcquire() {
		t.Fatal("third permit granted with MaxConcurrent 2")
	}
	st := b.Stats()
	if st.Active != 2 || st.Limit != 2 || st.Admitted != 2 || st.Rejected != 1 || st.Total != 3 || st.Utilization != 1 {
		t.Fatalf("stats = %+v", st)
	}
	b.Release()
	mustAcquire(t, b)
	b.Release()
	b.Release()
	if st := b.Stats(); st.Active != 0 || st.Admitted != 3 || st.Name != "db" {
		t.Fatalf("stats = %+v", st)
	}
}

func TestReleaseWithoutPermitPanics(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1})
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "without a permit") {
				t.Fatalf("recover() = %v", r)
			}
		}()
		b.Release()
	}()
	// The state is intact afterwards.
	mustAcquire(t, b)
	if b.TryAcquire() {
		t.Fatal("limit lost after the bad Release")
	}
	b.Release()
}

func TestRejectionError(t *testing.T) {
	b := mustNew(t, Config{Name: "agents", MaxConcurrent: 1, RetryAfter: 2 * time.Second})
	mustAcquire(t, b)
	err := b.Acquire(context.Background())
	if !errors.Is(err, ErrFull) || !errors.Is(err, sluice.ErrRejected) {
		t.Fatalf("err = %v, want ErrFull and sluice.ErrRejected", err)
	}
	var fe *FullError
	if !errors.As(err, &fe) || fe.Reason() != QueueFull || fe.Name() != "agents" {
		t.Fatalf("err = %#v", err)
	}
	if d, ok := sluice.RetryAfter(err); !ok || d != 2*time.Second {
		t.Fatalf("RetryAfter = %v, %v", d, ok)
	}
	if got, want := err.Error(), `bulkhead: "agents" full: every permit in use and no room in the queue`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("rejection matches context.Canceled")
	}
	if QueueFull.String() != "queue-full" || WaitExpired.String() != "wait-expired" || Reason(9).String() != "Reason(9)" {
		t.Fatal("Reason.String")
	}
	// Rejecting allocates nothing.
	if n := testing.AllocsPerRun(100, func() { _ = b.Acquire(context.Background()) }); n != 0 {
		t.Fatalf("rejection allocates %v times", n)
	}
	b.Release()
}

func TestFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 5})
		mustAcquire(t, b)
		order := make(chan int, 5)
		for i := range 5 {
			go func() {
				if err := b.Acquire(context.Background()); err != nil {
					t.Error(err)
					return
				}
				order <- i
				b.Release()
			}()
			synctest.Wait() // i queues before i+1 starts
		}
		if st := b.Stats(); st.Queued != 5 || st.Active != 1 {
			t.Fatalf("stats = %+v", st)
		}
		// A newcomer does not jump the queue, even with TryAcquire.
		if b.TryAcquire() {
			t.Fatal("TryAcquire jumped the queue")
		}
		b.Release()
		synctest.Wait()
		for want := range 5 {
			if got := <-order; got != want {
				t.Fatalf("admitted %d, want %d", got, want)
			}
		}
		if st := b.Stats(); st.Queued != 0 || st.Active != 0 || st.Admitted != 6 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 2})
		mustAcquire(t, b)
		w1 := acquireAsync(context.Background(), b)
		w2 := acquireAsync(context.Background(), b)
		pending(w1)
		pending(w2)
		start := time.Now()
		err := b.Acquire(context.Background())
		var fe *FullError
		if !errors.As(err, &fe) || fe.Reason() != QueueFull {
			t.Fatalf("third waiter: %v", err)
		}
		if time.Since(start) != 0 {
			t.Fatal("a rejection for a full queue waited")
		}
		b.Release()
		synctest.Wait()
		if err := <-w1; err != nil {
			t.Fatal(err)
		}
		b.Release()
		if err := <-w2; err != nil {
			t.Fatal(err)
		}
		b.Release()
		if st := b.Stats(); st.Active != 0 || st.Queued != 0 || st.Rejected != 1 || st.Admitted != 3 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestMaxWaitExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Name: "x", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
		mustAcquire(t, b)
		start := time.Now()
		err := b.Acquire(context.Background())
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("waited %v, want 1s", waited)
		}
		var fe *FullError
		if !errors.As(err, &fe) || fe.Reason() != WaitExpired || !errors.Is(err, sluice.ErrRejected) {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "no permit came free within the max wait of 1s") {
			t.Fatalf("message %q does not say the wait ran out", err)
		}
		if st := b.Stats(); st.Queued != 0 || st.Rejected != 1 || st.Active != 1 {
			t.Fatalf("stats = %+v", st)
		}
		b.Release()
		mustAcquire(t, b) // the queue slot and the permit are both back
		b.Release()
	})
}

func TestWaitEndsWithContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Minute})
		mustAcquire(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := b.Acquire(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrFull) {
			t.Fatalf("err = %v, want the context's DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Fatalf("waited %v past the context", waited)
		}
		if st := b.Stats(); st.Canceled != 1 || st.Rejected != 0 || st.Queued != 0 {
			t.Fatalf("stats = %+v", st)
		}
		b.Release()
	})
}

func TestCancelWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 3})
		mustAcquire(t, b)
		cause := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		w0 := acquireAsync(context.Background(), b)
		w1 := acquireAsync(ctx, b)
		w2 := acquireAsync(context.Background(), b)
		cancel(cause)
		synctest.Wait()
		if err := <-w1; err != cause {
			t.Fatalf("cancelled waiter got %v, want its context's cause", err)
		}
		pending(w0)
		pending(w2)
		if st := b.Stats(); st.Queued != 2 || st.Canceled != 1 {
			t.Fatalf("stats = %+v", st)
		}
		b.Release()
		synctest.Wait()
		if err := <-w0; err != nil {
			t.Fatal(err)
		}
		pending(w2)
		b.Release()
		synctest.Wait()
		if err := <-w2; err != nil {
			t.Fatal(err)
		}
		b.Release()
		// No permit was lost or leaked: exactly one is free again.
		mustAcquire(t, b)
		if b.TryAcquire() {
			t.Fatal("extra permit")
		}
		b.Release()
		if st := b.Stats(); st.Active != 0 || st.Queued != 0 || st.Admitted != 4 || st.Rejected != 1 || st.Canceled != 1 || st.Total != 6 {
			t.Fatalf("stats = %+v", st)
		}
	})
}

func TestCancelledContextWithFreePermit(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A free permit is taken without looking at the context, like
	// x/sync/semaphore: the work itself sees the cancelled context.
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// With none free, a done context does not wait.
	if err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	b.Release()
	if st := b.Stats(); st.Active != 0 || st.Queued != 0 || st.Canceled != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestUpdateRaisesLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Name: "x", MaxConcurrent: 1, MaxQueue: 5})
		mustAcquire(t, b)
		ws := []<-chan error{acquireAsync(context.Background(), b), acquireAsync(context.Background(), b), acquireAsync(context.Background(), b)}
		cfg := b.Config()
		cfg.MaxConcurrent = 3
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i, w := range ws[:2] {
			if err := <-w; err != nil {
				t.Fatalf("waiter %d: %v", i, err)
			}
		}
		pending(ws[2])
		if st := b.Stats(); st.Active != 3 || st.Queued != 1 || st.Limit != 3 {
			t.Fatalf("stats = %+v", st)
		}
		b.Release()
		synctest.Wait()
		if err := <-ws[2]; err != nil {
			t.Fatal(err)
		}
		for range 3 {
			b.Release()
		}
	})
}

func TestUpdateLowersLimitKeepingPermits(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 3})
	for range 3 {
		mustAcquire(t, b)
	}
	if err := b.Update(Config{MaxConcurrent: 1}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, false, true} {
		if st := b.Stats(); st.Active != 3-i || st.Limit != 1 {
			t.Fatalf("step %d: stats = %+v", i, st)
		}
		b.Release()
		if got := b.TryAcquire(); got != want {
			t.Fatalf("step %d: TryAcquire = %v with %d running and limit 1", i, got, 2-i)
		}
		if want {
			b.Release()
		}
	}
}

func TestUpdate(t *testing.T) {
	g := &Group{}
	b := mustNew(t, Config{Name: "x", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "y"}, `cannot change Config.Name from "x" to "y"`},
		{Config{Name: "x", MaxWait: time.Second}, "Config.MaxWait (1s) needs Config.MaxQueue > 0"},
		{Config{Name: "x", Isolation: Adaptive}, "cannot change Config.Isolation from strict to adaptive"},
		{Config{Name: "x", Group: g}, "cannot change Config.Group"},
		{Config{Name: "x", MaxQueue: -1}, "Config.MaxQueue must be in"},
	} {
		if err := b.Update(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Update(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if c := b.Config(); c.MaxWait != time.Second {
		t.Fatalf("a failed Update changed the config: %+v", c)
	}
	if err := b.Update(Config{Name: "x", MaxQueue: 1, MaxWait: 2 * time.Second, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if c := b.Config(); c.MaxWait != 2*time.Second || c.MaxQueue != 1 || c.MaxConcurrent != 10 {
		t.Fatalf("config = %+v", c)
	}
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Name: "x", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
		mustAcquire(t, b)
		if err := b.Update(Config{Name: "x", MaxConcurrent: 1, MaxQueue: 1, MaxWait: 2 * time.Second, RetryAfter: time.Second}); err != nil {
			t.Fatal(err)
		}
		err := b.Acquire(context.Background())
		if d, _ := sluice.RetryAfter(err); d != time.Second || !strings.Contains(err.Error(), "max wait of 2s") {
			t.Fatalf("error after Update: %v (retry after %v)", err, d)
		}
		b.Release()
	})
}

func TestExecute(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1})
	p := sluice.NewPipeline(b)
	var during Stats
	err := p.Do(context.Background(), func(ctx context.Context) error {
		during = b.Stats()
		// Nested call through the same full bulkhead: rejected, fn not run.
		return p.Do(ctx, func(context.Context) error {
			t.Error("ran with no permit")
			return nil
		})
	})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v", err)
	}
	if during.Active != 1 {
		t.Fatalf("active during the call = %d", during.Active)
	}
	if st := b.Stats(); st.Active != 0 || st.Admitted != 1 || st.Rejected != 1 {
		t.Fatalf("stats = %+v", st)
	}
	// The call's own error comes back unchanged.
	boom := errors.New("boom")
	if err := p.Do(context.Background(), func(context.Context) error { return boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
}

func TestExecutePanicReleases(t *testing.T) {
	for _, iso := range []Isolation{Strict, Adaptive} {
		b := mustNew(t, Config{MaxConcurrent: 1, Isolation: iso})
		p := sluice.NewPipeline(b)
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("%v: recover() = %v", iso, r)
				}
			}()
			_ = p.Do(context.Background(), func(context.Context) error { panic("boom") })
		}()
		if st := b.Stats(); st.Active != 0 {
			t.Fatalf("%v: permit kept after a panic: %+v", iso, st)
		}
	}
}

func TestExecuteWaitsInQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1})
		p := sluice.NewPipeline(b)
		var ran atomic.Int32
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				err := p.Do(context.Background(), func(context.Context) error {
					ran.Add(1)
					time.Sleep(time.Second)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if st := b.Stats(); st.Active != 1 || st.Queued != 1 || ran.Load() != 1 {
			t.Fatalf("stats = %+v, ran %d", st, ran.Load())
		}
		wg.Wait()
		if ran.Load() != 2 {
			t.Fatalf("ran %d", ran.Load())
		}
	})
}

func TestOnRejectOutsideLocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b *Bulkhead
		var got []Reason
		cfg := Config{Name: "x", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second}
		cfg.OnReject = func(e *FullError) {
			got = append(got, e.Reason())
			// Would deadlock if called under the queue or stats lock.
			_ = b.Stats()
			if err := b.Update(b.Config()); err != nil {
				t.Error(err)
			}
		}
		b = mustNew(t, cfg)
		mustAcquire(t, b)
		w := acquireAsync(context.Background(), b) // waits, then expires
		_ = b.TryAcquire()                         // queue-full (someone waits)
		_ = b.Acquire(context.Background())        // queue-full
		if err := <-w; !errors.Is(err, ErrFull) {
			t.Fatalf("err = %v", err)
		}
		if len(got) != 3 || got[0] != QueueFull || got[1] != QueueFull || got[2] != WaitExpired {
			t.Fatalf("listener saw %v", got)
		}
		b.Release()
	})
}

func TestStatsRecentRejectionRate(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{}) // on a 10s boundary
	b := mustNew(t, Config{MaxConcurrent: 1, Clock: clock})
	admit := func(n int) {
		for range n {
			mustAcquire(t, b)
			b.Release()
		}
	}
	reject := func(n int) { // admits one call to fill the bulkhead, then rejects n
		if n == 0 {
			return
		}
		mustAcquire(t, b)
		for range n {
			_ = b.TryAcquire()
		}
		b.Release()
	}
	for i, step := range []struct {
		advance          time.Duration
		admitted, reject int
		recent, lifetime float64
	}{
		{0, 9, 10, 0.5, 0.5},                           // from New's snapshot: 10 of 20
		{30 * time.Second, 20, 0, 0.25, 0.25},          // same base: 10 of 40
		{40 * time.Second, 0, 0, 0, 0.25},              // the base is the read at 30s
		{0, 9, 10, 0.5, 20.0 / 60},                     // 10 of 20 since the read at 30s
		{5 * time.Minute, 10, 0, 10.0 / 30, 20.0 / 70}, // no read in the window: from the first read at 70s
		{5 * time.Second, 9, 10, 0.5, 30.0 / 90},       // 10 of 20 since the read at 370s
	} {
		clock.Advance(step.advance)
		admit(step.admitted)
		reject(step.reject)
		st := b.Stats()
		if st.RecentRejectionRate != step.recent || st.RejectionRate != step.lifetime {
			t.Fatalf("step %d: recent %v lifetime %v, want %v %v (%+v)", i, st.RecentRejectionRate, st.RejectionRate, step.recent, step.lifetime, st)
		}
	}
}

func TestAdmittedCounterWraps(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 2})
	b.p.state.Store((1<<countBits - 1) << countShift) // one short of wrapping
	if got := b.Stats().Admitted; got != 1<<countBits-1 {
		t.Fatalf("admitted = %d", got)
	}
	mustAcquire(t, b) // wraps the field
	mustAcquire(t, b)
	b.Release()
	b.Release()
	if got := b.Stats().Admitted; got != 1<<countBits+1 {
		t.Fatalf("admitted after wrapping = %d, want %d", got, 1<<countBits+1)
	}
}

// TestNoLostWakeup returns the only permit at the worst moment: after a
// caller has seen the bulkhead full and decided to queue, before it joins
// the queue. Nothing else will ever release, so if the caller joined anyway
// it would wait until MaxWait; it must notice and take the permit at once.
func TestNoLostWakeup(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
	mustAcquire(t, b)
	released := false
	b.p.testHookJoin = func() {
		if !released {
			released = true
			b.Release()
		}
	}
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); !released || st.Active != 1 || st.Queued != 0 {
		t.Fatalf("released %v, stats %+v", released, st)
	}
	b.Release()
}

// TestNoLostWakeupRace races one Release against one Acquire on a full
// bulkhead of one permit, many times, on real goroutines. A waiter that
// missed the permit would get WaitExpired after MaxWait, as nothing else
// releases.
func TestNoLostWakeupRace(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1, MaxWait: 5 * time.Second})
	for i := range 5000 {
		mustAcquire(t, b)
		start := make(chan struct{})
		done := make(chan error, 1)
		go func() { <-start; b.Release() }()
		go func() { <-start; done <- b.Acquire(context.Background()) }()
		close(start)
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		b.Release()
	}
}

// TestStressNoLostWakeup hammers a small bulkhead with waiters that give up
// at random, checking that the limit holds, every waiter finishes and every
// permit comes back. A lost wakeup shows up as a waiter stuck until the test
// times out; a lost permit as a non-zero Active at the end.
func TestStressNoLostWakeup(t *testing.T) {
	const limit, workers, rounds = 3, 16, 2000
	b := mustNew(t, Config{MaxConcurrent: limit, MaxQueue: workers})
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if (w+i)%5 == 0 {
					ctx, cancel = context.WithCancel(ctx)
					go cancel() // races with the grant
				}
				var err error
				if (w+i)%3 == 0 {
					if !b.TryAcquire() {
						err = ErrFull
					}
				} else {
					err = b.Acquire(ctx)
				}
				cancel()
				if err != nil {
					continue
				}
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				running.Add(-1)
				b.Release()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d calls ran at once with limit %d", p, limit)
	}
	st := b.Stats()
	if st.Active != 0 || st.Queued != 0 {
		t.Fatalf("after the storm: %+v", st)
	}
	if st.Total != workers*rounds {
		t.Fatalf("total %d, want %d (%+v)", st.Total, workers*rounds, st)
	}
	for range limit {
		mustAcquire(t, b)
	}
	if b.TryAcquire() {
		t.Fatal("more permits than the limit after the storm")
	}
}

func TestIsolationString(t *testing.T) {
	for want, v := range map[string]interface{ String() string }{
		"strict": Strict, "shared": Shared, "adaptive": Adaptive, "Isolation(7)": Isolation(7),
		"gradient": Gradient, "aimd": AIMD, "Algorithm(5)": Algorithm(5),
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
