package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/sluicetest"
)

type keyCtx struct{}

func keyFromCtx(ctx context.Context) string {
	k, _ := ctx.Value(keyCtx{}).(string)
	return k
}

func withKey(k string) context.Context {
	return context.WithValue(context.Background(), keyCtx{}, k)
}

func TestPolicySteps(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	c, _ := cache.New[string](cache.Config{TTL: 10 * time.Second, StaleIfError: time.Minute, Clock: clock})
	// An outer policy that counts runs of the rest of the pipeline would
	// not see hits; count at the bottom instead.
	calls := 0
	p := sluice.NewPipeline(c.Policy(keyFromCtx))
	call := func(v string, err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { calls++; return v, err }
	}
	steps := []struct {
		advance time.Duration
		fn      func(context.Context) (string, error)
		want    string
		wantErr error
		info    cache.Info
		calls   int
	}{
		{0, call("a", nil), "a", nil, cache.Info{Outcome: cache.Miss}, 1},
		{5 * time.Second, call("b", nil), "a", nil, cache.Info{Outcome: cache.Hit, Age: 5 * time.Second}, 1},
		{5 * time.Second, call("", err503), "a", nil, cache.Info{Outcome: cache.Stale, Age: 10 * time.Second}, 2},
		{time.Minute, call("", err503), "", err503, cache.Info{Outcome: cache.Miss}, 3},
		{0, call("c", nil), "c", nil, cache.Info{Outcome: cache.Miss}, 4},
		{0, call("d", nil), "c", nil, cache.Info{Outcome: cache.Hit}, 4},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		var info cache.Info
		v, err := sluice.Get(cache.WithInfo(withKey("k"), &info), p, st.fn)
		if v != st.want || err != st.wantErr || info != st.info || calls != st.calls {
			t.Errorf("step %d: got %q %v %+v calls=%d; want %q %v %+v calls=%d", i, v, err, info, calls, st.want, st.wantErr, st.info, st.calls)
		}
	}
	want := cache.Stats{Hits: 2, Misses: 4, Stale: 1, Entries: 1}
	if st := c.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestPolicyPassThrough(t *testing.T) {
	c, _ := cache.New[string](cache.Config{})
	c.Put("k", "cached")
	p := sluice.NewPipeline(c.Policy(keyFromCtx))
	calls := 0

	// Under Do there is no typed result to fill.
	if err := p.Do(withKey("k"), func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("Do: %v calls=%d", err, calls)
	}
	// Under Get of another type neither.
	if v, err := sluice.Get(withKey("k"), p, func(context.Context) (int, error) { calls++; return 5, nil }); v != 5 || err != nil || calls != 2 {
		t.Fatalf("Get[int]: %v %v calls=%d", v, err, calls)
	}
	// An empty key bypasses the cache and stores nothing.
	if v, err := sluice.Get(withKey(""), p, func(context.Context) (string, error) { calls++; return "fresh", nil }); v != "fresh" || err != nil || calls != 3 {
		t.Fatalf("empty key: %v %v calls=%d", v, err, calls)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d after bypassed calls", c.Len())
	}
	defer func() {
		if recover() == nil {
			t.Error("Policy(nil) did not panic")
		}
	}()
	c.Policy(nil)
}

func TestPolicyCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[int](cache.Config{TTL: time.Minute})
		p := sluice.NewPipeline(c.Policy(keyFromCtx))
		var calls atomic.Int32
		release := make(chan struct{})
		fn := func(context.Context) (int, error) {
			calls.Add(1)
			<-release
			return 9, nil
		}
		const n = 20
		infos := make([]cache.Info, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, err := sluice.Get(cache.WithInfo(withKey("k"), &infos[i]), p, fn)
				if v != 9 || err != nil {
					t.Errorf("caller %d: %v %v", i, v, err)
				}
			})
		}
		synctest.Wait()
		if calls.Load() != 1 {
			t.Fatalf("pipeline ran %d times", calls.Load())
		}
		close(release)
		wg.Wait()
		coalesced := 0
		for _, info := range infos {
			if info.Coalesced {
				coalesced++
			}
		}
		if coalesced != n-1 {
			t.Fatalf("%d callers coalesced, want %d", coalesced, n-1)
		}
	})
}

// TestPolicyLeaderLeaves checks that when the caller running the pipeline is
// cancelled or panics, a waiting caller starts over instead of inheriting
// that outcome.
func TestPolicyLeaderLeaves(t *testing.T) {
	for _, mode := range []string{"cancel", "panic"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := cache.New[int](cache.Config{TTL: time.Minute, StaleIfError: time.Hour})
				p := sluice.NewPipeline(c.Policy(keyFromCtx))
				var calls atomic.Int32
				leaderFn := func(ctx context.Context) (int, error) {
					calls.Add(1)
					<-ctx.Done()
					if mode == "panic" {
						panic("leader boom")
					}
					return 0, ctx.Err()
				}
				ctx, cancel := context.WithCancel(withKey("k"))
				leaderDone := make(chan any, 1)
				go func() {
					defer func() { leaderDone <- recover() }()
					_, err := sluice.Get(ctx, p, leaderFn)
					leaderDone <- err
				}()
				synctest.Wait()
				waiter := make(chan int, 1)
				go func() {
					v, err := sluice.Get(withKey("k"), p, func(context.Context) (int, error) { calls.Add(1); return 5, nil })
					if err != nil {
						t.Errorf("waiter: %v", err)
					}
					waiter <- v
				}()
				synctest.Wait()
				cancel()
				r := <-leaderDone
				switch mode {
				case "cancel":
					if !errors.Is(r.(error), context.Canceled) {
						t.Fatalf("leader: %v", r)
					}
					<-leaderDone // the deferred recover's nil
				case "panic":
					if r != "leader boom" {
						t.Fatalf("leader recovered %#v, want the original panic value", r)
					}
				}
				if v := <-waiter; v != 5 || calls.Load() != 2 {
					t.Fatalf("waiter got %d after %d calls, want its own call's 5", v, calls.Load())
				}
				if st := c.Stats(); st.Misses != 2 || st.Coalesced != 1 || st.Entries != 1 {
					t.Fatalf("stats %+v", st)
				}
			})
		})
	}
}

// TestPolicyWaiterShares checks that waiters share the first caller's error,
// and get a stale value when there is one.
func TestPolicyWaiterShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[int](cache.Config{TTL: time.Second, StaleIfError: time.Hour})
		p := sluice.NewPipeline(c.Policy(keyFromCtx))
		release := make(chan struct{})
		failing := func(context.Context) (int, error) { <-release; return 0, err503 }
		c.Put("stale", 3)
		time.Sleep(2 * time.Second)
		var (
			wg    sync.WaitGroup
			vals  [4]int
			errs  [4]error
			infos [4]cache.Info
		)
		for i, k := range []string{"none", "none", "stale", "stale"} {
			wg.Go(func() { vals[i], errs[i] = sluice.Get(cache.WithInfo(withKey(k), &infos[i]), p, failing) })
			synctest.Wait()
		}
		close(release)
		wg.Wait()
		for i, want := range []struct {
			v    int
			err  error
			info cache.Info
		}{
			{0, err503, cache.Info{Outcome: cache.Miss}},
			{0, err503, cache.Info{Outcome: cache.Miss, Coalesced: true}},
			{3, nil, cache.Info{Outcome: cache.Stale, Age: 2 * time.Second}},
			{3, nil, cache.Info{Outcome: cache.Stale, Age: 2 * time.Second, Coalesced: true}},
		} {
			if vals[i] != want.v || errs[i] != want.err || infos[i] != want.info {
				t.Errorf("caller %d: %v %v %+v, want %+v", i, vals[i], errs[i], infos[i], want)
			}
		}
		if st := c.Stats(); st.Stale != 2 || st.Coalesced != 2 || st.Misses != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}
