package cache_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/sluicetest"
)

var (
	err503 = &sluice.StatusError{Code: 503}
	err500 = &sluice.StatusError{Code: 500}
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		cfg  cache.Config
		want string // substring of the error, "" for valid
	}{
		{cache.Config{}, ""},
		{cache.Config{TTL: cache.NeverFresh, StaleIfError: time.Minute, MaxEntries: 1, CallTimeout: time.Second}, ""},
		{cache.Config{StaleIfError: -1}, "Config.StaleIfError must be >= 0, got -1ns"},
		{cache.Config{MaxEntries: -5}, "Config.MaxEntries must be >= 0, got -5"},
		{cache.Config{CallTimeout: -time.Second}, "Config.CallTimeout must be >= 0, got -1s"},
	}
	for i, tt := range tests {
		c, err := cache.New[int](tt.cfg)
		switch {
		case tt.want == "" && (err != nil || c == nil):
			t.Errorf("case %d: New(%+v) = %v, %v; want a cache", i, tt.cfg, c, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("case %d: New(%+v) error %v; want %q", i, tt.cfg, err, tt.want)
		}
	}
	if cache.MustNew[int](cache.Config{}) == nil {
		t.Error("MustNew(zero Config) = nil")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew with an invalid Config did not panic")
		}
	}()
	cache.MustNew[int](cache.Config{MaxEntries: -5})
}

// step is one Get at a virtual time, with what fn returns if called and
// what Get must answer.
type step struct {
	at      time.Duration // since the start
	val     string        // fn's value
	err     error         // fn's error
	want    string
	wantErr error
	outcome cache.Outcome
	age     time.Duration
	called  bool // fn must have been called
}

func runSteps(t *testing.T, cfg cache.Config, steps []step) {
	t.Helper()
	clock := sluicetest.NewFakeClock(time.Time{})
	start := clock.Now()
	cfg.Clock = clock
	c, err := cache.New[string](cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		clock.Set(start.Add(st.at))
		called := false
		v, info, err := c.Get(context.Background(), "k", func(context.Context) (string, error) {
			called = true
			return st.val, st.err
		})
		if v != st.want || !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) ||
			info.Outcome != st.outcome || info.Age != st.age || called != st.called {
			t.Errorf("step %d at %v: got %q, %v, %+v, called=%v; want %q, %v, {%v age %v}, called=%v",
				i, st.at, v, err, info, called, st.want, st.wantErr, st.outcome, st.age, st.called)
		}
	}
}

func TestTTLAndStaleWindows(t *testing.T) {
	const s, ns = time.Second, time.Nanosecond
	miss := func(at time.Duration, v string) step {
		return step{at: at, val: v, want: v, outcome: cache.Miss, called: true}
	}
	hit := func(at time.Duration, v string, age time.Duration) step {
		return step{at: at, val: "unused", want: v, outcome: cache.Hit, age: age}
	}
	stale := func(at time.Duration, fnErr error, v string, age time.Duration) step {
		return step{at: at, err: fnErr, want: v, outcome: cache.Stale, age: age, called: true}
	}
	fail := func(at time.Duration, fnErr error) step {
		return step{at: at, err: fnErr, wantErr: fnErr, outcome: cache.Miss, called: true}
	}
	tests := []struct {
		name  string
		cfg   cache.Config
		steps []step
	}{
		{"ttl only", cache.Config{TTL: 10 * s}, []step{
			miss(0, "a"), hit(5*s, "a", 5*s), hit(10*s-ns, "a", 10*s-ns),
			miss(10*s, "b"), hit(10*s, "b", 0), fail(20*s, err503), miss(21*s, "c"), hit(22*s, "c", s),
		}},
		{"stale window", cache.Config{TTL: 10 * s, StaleIfError: 5 * s}, []step{
			miss(0, "a"), stale(10*s, err503, "a", 10*s), stale(15*s-ns, err503, "a", 15*s-ns),
			fail(15*s, err503), miss(15*s, "b"), hit(16*s, "b", s),
		}},
		{"never fresh", cache.Config{TTL: cache.NeverFresh, StaleIfError: time.Minute}, []step{
			miss(0, "a"), stale(0, err503, "a", 0), miss(30*s, "b"),
			stale(89*s, err503, "b", 59*s), fail(90*s, err503),
		}},
		{"zero config", cache.Config{}, []step{
			miss(0, "a"), hit(59*s, "a", 59*s), fail(60*s, err503), miss(60*s, "b"),
		}},
		{"fn's own cancellation is not a failure", cache.Config{TTL: s, StaleIfError: time.Hour}, []step{
			miss(0, "a"), fail(2*s, context.Canceled), stale(2*s, err503, "a", 2*s),
		}},
		{"custom ServeStale", cache.Config{TTL: s, StaleIfError: time.Hour, ServeStale: func(_ context.Context, err error) bool {
			return errors.Is(err, err503)
		}}, []step{
			miss(0, "a"), fail(2*s, err500), stale(3*s, err503, "a", 3*s),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.cfg, tt.steps) })
	}
}

func TestPutPeekDeletePurge(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	c, _ := cache.New[int](cache.Config{Name: "agents", TTL: time.Second, StaleIfError: time.Second, Clock: clock})
	if c.Name() != "agents" {
		t.Fatalf("Name() = %q", c.Name())
	}
	c.Put("a", 1)
	c.Put("b", 2)
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	clock.Advance(1500 * time.Millisecond)
	if v, info, ok := c.Peek("a"); !ok || v != 1 || info.Outcome != cache.Stale || info.Age != 1500*time.Millisecond {
		t.Fatalf("Peek(a) = %v %+v %v, want stale 1 at 1.5s", v, info, ok)
	}
	c.Put("a", 3)
	if v, info, ok := c.Peek("a"); !ok || v != 3 || info.Outcome != cache.Hit || info.Age != 0 {
		t.Fatalf("Peek(a) after Put = %v %+v %v", v, info, ok)
	}
	clock.Advance(time.Second)
	if _, _, ok := c.Peek("b"); ok {
		t.Fatal("Peek(b) found an expired value")
	}
	if !c.Delete("a") || c.Delete("a") || c.Len() != 1 {
		t.Fatalf("Delete: Len %d", c.Len())
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatalf("Len after Purge = %d", c.Len())
	}
	if st := c.Stats(); st != (cache.Stats{}) {
		t.Fatalf("Put/Peek/Delete touched the counters: %+v", st)
	}
}

func TestEvictionBound(t *testing.T) {
	for _, max := range []int{1, 3, 17, 100} {
		c, _ := cache.New[int](cache.Config{MaxEntries: max})
		const n = 5000
		for i := range n {
			key := fmt.Sprint("k", i)
			if i%2 == 0 {
				c.Put(key, i)
			} else if _, _, err := c.Get(context.Background(), key, func(context.Context) (int, error) { return i, nil }); err != nil {
				t.Fatal(err)
			}
			if l := c.Len(); l > max {
				t.Fatalf("MaxEntries %d: Len %d after %d keys", max, l, i+1)
			}
		}
		st := c.Stats()
		if st.Entries != max || st.Evictions != n-int64(max) || st.Misses != n/2 {
			t.Errorf("MaxEntries %d: stats %+v, want %d entries, %d evictions", max, st, max, n-max)
		}
	}
}

// TestHotKeySurvivesScan checks that CLOCK keeps a key that is read between
// insertions while a scan of one-off keys streams through.
func TestHotKeySurvivesScan(t *testing.T) {
	c, _ := cache.New[int](cache.Config{MaxEntries: 64})
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	c.Put("hot", 1)
	for i := range 10_000 {
		if _, info, _ := c.Get(ctx, "hot", fn); info.Outcome != cache.Hit {
			t.Fatalf("hot key evicted after %d one-off keys", i)
		}
		c.Put(fmt.Sprint("cold", i), i)
	}
}

func TestCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[int](cache.Config{TTL: time.Minute})
		var calls atomic.Int32
		release := make(chan struct{})
		fn := func(context.Context) (int, error) {
			calls.Add(1)
			<-release
			return 42, nil
		}
		const n = 50
		type result struct {
			v    int
			info cache.Info
			err  error
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, info, err := c.Get(context.Background(), "k", fn)
				results[i] = result{v, info, err}
			})
		}
		synctest.Wait()
		if got := calls.Load(); got != 1 {
			t.Fatalf("fn running %d times for %d concurrent callers", got, n)
		}
		close(release)
		wg.Wait()
		leaders := 0
		for i, r := range results {
			if r.v != 42 || r.err != nil || r.info.Outcome != cache.Miss {
				t.Errorf("caller %d: %+v", i, r)
			}
			if !r.info.Coalesced {
				leaders++
			}
		}
		if leaders != 1 {
			t.Errorf("%d callers not marked Coalesced, want 1", leaders)
		}
		if _, info, _ := c.Get(context.Background(), "k", fn); info.Outcome != cache.Hit {
			t.Errorf("after the call: %+v, want a hit", info)
		}
		want := cache.Stats{Hits: 1, Misses: 1, Coalesced: n - 1, Entries: 1}
		if st := c.Stats(); st != want || calls.Load() != 1 {
			t.Errorf("stats %+v, want %+v", st, want)
		}
	})
}

type ctxKey struct{}

// TestWaitersLeave checks that callers leave when their context ends, that
// the shared call keeps the first caller's values but not its cancellation,
// and that it still fills the cache.
func TestWaitersLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := sluicetest.NewFakeClock(time.Time{})
		c, _ := cache.New[int](cache.Config{TTL: time.Minute, StaleIfError: time.Hour, Clock: clock})
		c.Put("k", 1)
		clock.Advance(2 * time.Minute) // k is stale: Gets call fn

		release := make(chan struct{})
		var callCtx context.Context
		fn := func(ctx context.Context) (int, error) {
			callCtx = ctx
			<-release
			return 2, nil
		}
		bye := errors.New("caller left")
		ctx1, cancel1 := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "first"))
		ctx2, cancel2 := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		infos := make(chan cache.Info, 2)
		get := func(ctx context.Context) {
			_, info, err := c.Get(ctx, "k", fn)
			infos <- info
			errs <- err
		}
		go get(ctx1)
		synctest.Wait()
		go get(ctx2)
		synctest.Wait()

		cancel2()
		if err, info := <-errs, <-infos; !errors.Is(err, context.Canceled) || !info.Coalesced || info.Outcome != cache.Miss {
			t.Fatalf("waiter: %v %+v, want context.Canceled, coalesced, no stale value", err, info)
		}
		cancel1(bye)
		if err, info := <-errs, <-infos; err != bye || info.Coalesced || info.Outcome == cache.Stale {
			t.Fatalf("first caller: %v %+v, want its cause and no stale value", err, info)
		}
		if callCtx.Err() != nil {
			t.Fatalf("the shared call was cancelled when its callers left: %v", callCtx.Err())
		}
		if callCtx.Value(ctxKey{}) != "first" {
			t.Fatal("the shared call lost the first caller's values")
		}
		if _, ok := callCtx.Deadline(); !ok {
			t.Fatal("the shared call has no deadline (CallTimeout)")
		}
		close(release)
		synctest.Wait()
		v, info, err := c.Get(context.Background(), "k", fn)
		if v != 2 || err != nil || info.Outcome != cache.Hit {
			t.Fatalf("after the call: %v %+v %v, want the call's value as a hit", v, info, err)
		}

		// A caller whose context is already done starts no call.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		called := false
		if _, _, err := c.Get(done, "other", func(context.Context) (int, error) { called = true; return 0, nil }); !errors.Is(err, context.Canceled) || called {
			t.Fatalf("done context: %v, called=%v", err, called)
		}
	})
}

func TestCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[string](cache.Config{TTL: 10 * time.Second, StaleIfError: time.Minute, CallTimeout: 2 * time.Second})
		hang := func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", fmt.Errorf("upstream: %w", ctx.Err())
		}
		_, _, err := c.Get(context.Background(), "none", hang)
		if err != cache.ErrCallTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrCallTimeout", err)
		}
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() {
			t.Fatal("ErrCallTimeout does not report Timeout()")
		}
		if f := sluice.Classify(context.Background(), err); f.Type != sluice.FailureTimeout {
			t.Fatalf("ErrCallTimeout classifies as %v", f.Type)
		}

		c.Put("k", "old")
		time.Sleep(11 * time.Second) // virtual time
		v, info, err := c.Get(context.Background(), "k", hang)
		if v != "old" || err != nil || info.Outcome != cache.Stale || info.Age != 13*time.Second {
			t.Fatalf("got %q %+v %v, want the stale value aged 13s", v, info, err)
		}

		// A value returned after the timeout fired is still a success.
		late := func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "late", nil
		}
		if v, _, err := c.Get(context.Background(), "late", late); v != "late" || err != nil {
			t.Fatalf("late success: %q %v", v, err)
		}
	})
}

func TestPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[int](cache.Config{TTL: time.Minute, StaleIfError: time.Hour})
		boom := errors.New("boom")
		release := make(chan struct{})
		panicky := func(context.Context) (int, error) {
			<-release
			panic(boom)
		}
		const n = 4
		recovered := make(chan any, n)
		for range n {
			go func() {
				defer func() { recovered <- recover() }()
				c.Get(context.Background(), "k", panicky)
				t.Error("Get returned after a panic")
			}()
		}
		synctest.Wait()
		close(release)
		for range n {
			r := <-recovered
			pe, ok := r.(*cache.PanicError)
			if !ok || pe.Value != boom || !errors.Is(pe, boom) || !strings.Contains(string(pe.Stack), "panic") {
				t.Fatalf("recovered %#v, want a *PanicError carrying boom and a stack", r)
			}
			if !strings.Contains(pe.Error(), "boom") {
				t.Fatalf("PanicError.Error() = %q", pe.Error())
			}
		}
		// The key's call was cleared: the next Get runs fn again.
		if v, info, err := c.Get(context.Background(), "k", func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil || info.Outcome != cache.Miss {
			t.Fatalf("after the panic: %v %+v %v", v, info, err)
		}

		// With nobody waiting the panic is dropped, not raised on the call's
		// goroutine (which would kill the process).
		ctx, cancel := context.WithCancel(context.Background())
		release2 := make(chan struct{})
		go func() {
			_, _, err := c.Get(ctx, "j", func(context.Context) (int, error) { <-release2; panic("unseen") })
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v", err)
			}
		}()
		synctest.Wait()
		cancel()
		close(release2)
		synctest.Wait()
		if v, _, err := c.Get(context.Background(), "j", func(context.Context) (int, error) { return 8, nil }); v != 8 || err != nil {
			t.Fatalf("after a dropped panic: %v %v", v, err)
		}
	})
}

func TestGoexit(t *testing.T) {
	c, _ := cache.New[int](cache.Config{})
	_, _, err := c.Get(context.Background(), "k", func(context.Context) (int, error) {
		runtime.Goexit()
		return 0, nil
	})
	if err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Fatalf("err = %v, want the Goexit error", err)
	}
}

// TestDeleteForgetsCall checks that Delete during a call makes the next Get
// start a new call and that the forgotten call's result is not stored.
func TestDeleteForgetsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := cache.New[int](cache.Config{TTL: time.Minute})
		r1, r2 := make(chan struct{}), make(chan struct{})
		got := make(chan int, 2)
		go func() {
			v, _, _ := c.Get(context.Background(), "k", func(context.Context) (int, error) { <-r1; return 1, nil })
			got <- v
		}()
		synctest.Wait()
		c.Delete("k")
		go func() {
			v, info, _ := c.Get(context.Background(), "k", func(context.Context) (int, error) { <-r2; return 2, nil })
			if info.Coalesced {
				t.Error("Get after Delete joined the forgotten call")
			}
			got <- v
		}()
		synctest.Wait()
		close(r1)
		if v := <-got; v != 1 {
			t.Fatalf("first caller got %d", v)
		}
		if _, _, ok := c.Peek("k"); ok {
			t.Fatal("the forgotten call's result was stored")
		}
		close(r2)
		if v := <-got; v != 2 {
			t.Fatalf("second caller got %d", v)
		}
		if v, _, ok := c.Peek("k"); !ok || v != 2 {
			t.Fatalf("Peek = %v %v, want 2", v, ok)
		}

		// Purge forgets running calls the same way.
		r3 := make(chan struct{})
		go c.Get(context.Background(), "p", func(context.Context) (int, error) { <-r3; return 3, nil })
		synctest.Wait()
		c.Purge()
		close(r3)
		synctest.Wait()
		if c.Len() != 0 {
			t.Fatalf("Len after Purge and a forgotten call = %d", c.Len())
		}
	})
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[cache.Outcome]string{cache.Miss: "miss", cache.Hit: "hit", cache.Stale: "stale", 9: "Outcome(9)"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", o, o.String(), want)
		}
	}
}
