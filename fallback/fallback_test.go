package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/sluicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstreamErr is a failure of the primary, for errors.As checks.
type upstreamErr struct{ host string }

func (e *upstreamErr) Error() string { return "dial " + e.host + ": connection refused" }
func (e *upstreamErr) Unwrap() error { return syscall.ECONNREFUSED }

// rejected is a load-shedding error of some other policy.
type rejected struct{}

func (rejected) Error() string             { return "breaker open" }
func (rejected) Is(target error) bool      { return target == sluice.ErrRejected }
func (rejected) RetryAfter() time.Duration { return time.Second }

func mustNew[T any](t testing.TB, cfg fallback.Config[T]) *fallback.Fallback[T] {
	t.Helper()
	f, err := fallback.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func get[T any](ctx context.Context, f *fallback.Fallback[T], fn func(context.Context) (T, error)) (T, fallback.Outcome, error) {
	var o fallback.Outcome
	v, err := sluice.Get(fallback.WithOutcome(ctx, &o), sluice.NewPipeline(f), fn)
	return v, o, err
}

func ok[T any](v T) func(context.Context) (T, error) {
	return func(context.Context) (T, error) { return v, nil }
}

func fail[T any](err error) func(context.Context) (T, error) {
	return func(context.Context) (T, error) { var zero T; return zero, err }
}

func TestPrimaryAnswers(t *testing.T) {
	f := mustNew(t, fallback.Config[string]{Name: "status", LastGoodTTL: time.Minute,
		Alternatives: []fallback.Alternative[string]{{Name: "replica", Fn: func(context.Context) (string, error) {
			t.Error("alternative called although the primary answered")
			return "", nil
		}}}})
	v, o, err := get(context.Background(), f, ok("fresh"))
	if err != nil || v != "fresh" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if o != (fallback.Outcome{Fallback: "status", Branch: fallback.BranchPrimary}) {
		t.Errorf("Outcome = %+v", o)
	}
	if s := f.Stats(); s.Calls != 1 || s.Primary != 1 || s.Alternatives[0] != (fallback.AlternativeStats{Name: "replica"}) {
		t.Errorf("Stats = %+v", s)
	}
	if n := f.LastGoodKeys(); n != 1 {
		t.Errorf("LastGoodKeys = %d, want 1", n)
	}
}

// TestChain walks the branches in order: each step says which branches can
// answer and checks which one did.
func TestChain(t *testing.T) {
	primaryErr := &upstreamErr{"10.0.0.1:9000"}
	def := "unavailable"
	type step struct {
		name       string
		altsOK     [2]bool // whether each alternative answers
		lastGood   bool    // whether a last good result was stored first
		withDef    bool
		wantV      string
		wantBranch fallback.Branch
		wantAlt    string
		wantCalled string // alternatives called, in order
	}
	steps := []step{
		{name: "first alternative", altsOK: [2]bool{true, true}, wantV: "from-alt-endpoint", wantBranch: fallback.BranchAlternative, wantAlt: "alt-endpoint", wantCalled: "alt-endpoint"},
		{name: "second alternative", altsOK: [2]bool{false, true}, wantV: "from-replica", wantBranch: fallback.BranchAlternative, wantAlt: "replica", wantCalled: "alt-endpoint,replica"},
		{name: "last good before default", lastGood: true, withDef: true, wantV: "old", wantBranch: fallback.BranchLastGood, wantCalled: "alt-endpoint,replica"},
		{name: "default", withDef: true, wantV: def, wantBranch: fallback.BranchDefault, wantCalled: "alt-endpoint,replica"},
		{name: "exhausted", wantV: "", wantBranch: fallback.BranchExhausted, wantCalled: "alt-endpoint,replica"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var called []string
			alt := func(name string, answers bool) fallback.Alternative[string] {
				return fallback.Alternative[string]{Name: name, Fn: func(context.Context) (string, error) {
					called = append(called, name)
					if answers {
						return "from-" + name, nil
					}
					return "", errors.New(name + " down")
				}}
			}
			cfg := fallback.Config[string]{
				Alternatives: []fallback.Alternative[string]{alt("alt-endpoint", st.altsOK[0]), alt("replica", st.altsOK[1])},
				LastGoodTTL:  time.Minute,
			}
			if st.withDef {
				cfg.Default = &def
			}
			var hooked []fallback.Outcome
			cfg.OnFallback = func(_ context.Context, o fallback.Outcome) { hooked = append(hooked, o) }
			f := mustNew(t, cfg)
			if st.lastGood {
				if _, _, err := get(context.Background(), f, ok("old")); err != nil {
					t.Fatal(err)
				}
			}
			v, o, err := get(context.Background(), f, fail[string](primaryErr))
			if v != st.wantV || o.Branch != st.wantBranch || o.Alternative != st.wantAlt {
				t.Fatalf("step %d: got %q via %v/%q, want %q via %v/%q", i, v, o.Branch, o.Alternative, st.wantV, st.wantBranch, st.wantAlt)
			}
			if got := strings.Join(called, ","); got != st.wantCalled {
				t.Errorf("step %d: alternatives called %q, want %q", i, got, st.wantCalled)
			}
			if o.Err != error(primaryErr) {
				t.Errorf("step %d: Outcome.Err = %v, want the primary's failure", i, o.Err)
			}
			if len(hooked) != 1 || hooked[0] != o {
				t.Errorf("step %d: OnFallback got %+v, want [%+v]", i, hooked, o)
			}
			if st.wantBranch != fallback.BranchExhausted {
				if err != nil {
					t.Fatalf("step %d: err = %v", i, err)
				}
				return
			}
			checkExhausted(t, err, primaryErr)
		})
	}
}

func checkExhausted(t *testing.T, err error, primaryErr *upstreamErr) {
	t.Helper()
	if !errors.Is(err, fallback.ErrExhausted) {
		t.Fatalf("errors.Is(err, ErrExhausted) = false for %v", err)
	}
	if !errors.Is(err, primaryErr) {
		t.Errorf("primary not reachable through errors.Is: %v", err)
	}
	var ue *upstreamErr
	if !errors.As(err, &ue) || ue != primaryErr {
		t.Errorf("primary not reachable through errors.As: %v", err)
	}
	var ex *fallback.ExhaustedError
	if !errors.As(err, &ex) || len(ex.Alternatives) != 2 || ex.Alternatives[0].Name != "alt-endpoint" || ex.Alternatives[1].Name != "replica" {
		t.Fatalf("alternatives not listed: %#v", err)
	}
	want := `fallback: exhausted: dial 10.0.0.1:9000: connection refused; alternative "alt-endpoint": alt-endpoint down; alternative "replica": replica down`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err.Error(), want)
	}
	// An outer retry or breaker classifies the call by its primary failure.
	if f := sluice.Classify(context.Background(), err); f.Type != sluice.FailureNetwork {
		t.Errorf("Classify = %+v, want the primary's FailureNetwork", f)
	}
}

func TestWhichFailuresFallBack(t *testing.T) {
	def := 7
	notFound := &sluice.StatusError{Code: 404}
	cases := []struct {
		name   string
		should func(context.Context, error) bool
		err    error
		cancel bool
		want   bool // falls back
	}{
		{name: "network failure", err: &upstreamErr{"db"}, want: true},
		{name: "timeout", err: context.DeadlineExceeded, want: true},
		{name: "rejection by another policy", err: fmt.Errorf("bulkhead: %w", rejected{}), want: true},
		{name: "status 503", err: &sluice.StatusError{Code: 503}, want: true},
		{name: "caller canceled", err: context.Canceled, cancel: true, want: false},
		{name: "caller canceled, predicate says yes", err: context.Canceled, cancel: true, should: func(context.Context, error) bool { return true }, want: false},
		{name: "predicate: not for 404", err: notFound, should: func(_ context.Context, err error) bool { return !errors.Is(err, notFound) }, want: false},
		{name: "predicate: yes for 503", err: &sluice.StatusError{Code: 503}, should: func(_ context.Context, err error) bool { return !errors.Is(err, notFound) }, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := mustNew(t, fallback.Config[int]{Default: &def, ShouldFallback: tc.should})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			call := fail[int](tc.err)
			if tc.cancel { // the caller leaves while the primary runs
				call = func(context.Context) (int, error) { cancel(); return 0, tc.err }
			}
			v, o, err := get(ctx, f, call)
			s := f.Stats()
			if tc.want {
				if err != nil || v != 7 || o.Branch != fallback.BranchDefault || s.Default != 1 {
					t.Fatalf("want the default: got %v, %v, %+v, %+v", v, err, o, s)
				}
				return
			}
			if err != tc.err || o.Branch != fallback.BranchPrimary || o.Err != tc.err || s.Skipped != 1 || s.Calls != 1 {
				t.Fatalf("want the primary's error unchanged: got %v, %v, %+v, %+v", v, err, o, s)
			}
		})
	}
}

func TestLastGoodTTL(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	const ttl = 5 * time.Minute
	def := -1
	f := mustNew(t, fallback.Config[int]{LastGoodTTL: ttl, Default: &def, Clock: clock})
	down := fail[int](&upstreamErr{"api"})
	steps := []struct {
		advance    time.Duration
		fn         func(context.Context) (int, error)
		wantV      int
		wantBranch fallback.Branch
		wantAge    time.Duration
	}{
		{0, ok(1), 1, fallback.BranchPrimary, 0},
		{time.Minute, down, 1, fallback.BranchLastGood, time.Minute},
		{ttl - time.Minute - time.Nanosecond, down, 1, fallback.BranchLastGood, ttl - time.Nanosecond},
		{time.Nanosecond, down, -1, fallback.BranchDefault, 0}, // exactly TTL old: expired
		{0, ok(2), 2, fallback.BranchPrimary, 0},
		{ttl - time.Second, down, 2, fallback.BranchLastGood, ttl - time.Second},
		{time.Second / 2, ok(3), 3, fallback.BranchPrimary, 0}, // a fresh success restarts the TTL
		{ttl - time.Nanosecond, down, 3, fallback.BranchLastGood, ttl - time.Nanosecond},
		{time.Nanosecond, down, -1, fallback.BranchDefault, 0},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		v, o, err := get(context.Background(), f, st.fn)
		if err != nil || v != st.wantV || o.Branch != st.wantBranch || o.Age != st.wantAge {
			t.Fatalf("step %d: got %d via %v age %v (err %v); want %d via %v age %v",
				i, v, o.Branch, o.Age, err, st.wantV, st.wantBranch, st.wantAge)
		}
	}
	if s := f.Stats(); s.Primary != 3 || s.LastGood != 4 || s.Default != 2 || s.Calls != 9 {
		t.Errorf("Stats = %+v", s)
	}
}

type agentKey struct{}

func TestLastGoodPerKey(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	f := mustNew(t, fallback.Config[string]{
		LastGoodTTL: time.Minute, Clock: clock,
		Key: func(ctx context.Context) string { s, _ := ctx.Value(agentKey{}).(string); return s },
	})
	agent := func(id string) context.Context { return context.WithValue(context.Background(), agentKey{}, id) }
	down := fail[string](&upstreamErr{"agent"})

	for _, id := range []string{"a1", "a2"} {
		if _, _, err := get(agent(id), f, ok("status of "+id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a2", "a1"} {
		v, o, err := get(agent(id), f, down)
		if err != nil || v != "status of "+id || o.Branch != fallback.BranchLastGood {
			t.Fatalf("agent %s: got %q via %v, %v", id, v, o.Branch, err)
		}
	}
	if _, _, err := get(agent("a3"), f, down); !errors.Is(err, fallback.ErrExhausted) {
		t.Fatalf("agent with no stored result: got %v, want ErrExhausted", err)
	}
	f.Forget("a1")
	if _, _, err := get(agent("a1"), f, down); !errors.Is(err, fallback.ErrExhausted) {
		t.Fatalf("after Forget: got %v, want ErrExhausted", err)
	}
	if v, _, err := get(agent("a2"), f, down); err != nil || v != "status of a2" {
		t.Fatalf("Forget dropped another key: %q, %v", v, err)
	}
	f.ForgetAll()
	if n := f.LastGoodKeys(); n != 0 {
		t.Fatalf("after ForgetAll: %d keys", n)
	}
}

func TestLastGoodBounded(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	f := mustNew(t, fallback.Config[int]{
		LastGoodTTL: time.Minute, Clock: clock, MaxKeys: 32,
		Key: func(ctx context.Context) string { s, _ := ctx.Value(agentKey{}).(string); return s },
	})
	for i := range 1000 {
		ctx := context.WithValue(context.Background(), agentKey{}, fmt.Sprint("k", i))
		if _, _, err := get(ctx, f, ok(i)); err != nil {
			t.Fatal(err)
		}
		if n := f.LastGoodKeys(); n > 32 {
			t.Fatalf("after %d keys: %d kept, want at most 32", i+1, n)
		}
	}
	ctx := context.WithValue(context.Background(), agentKey{}, "k999")
	if v, o, _ := get(ctx, f, fail[int](errors.New("down"))); v != 999 || o.Branch != fallback.BranchLastGood {
		t.Fatalf("newest key lost: %d via %v", v, o.Branch)
	}
	// Expired results leave when their shard is next written.
	clock.Advance(time.Minute)
	for i := range 64 {
		ctx := context.WithValue(context.Background(), agentKey{}, fmt.Sprint("n", i))
		_, _, _ = get(ctx, f, ok(i))
	}
	for i := 900; i < 1000; i++ {
		ctx := context.WithValue(context.Background(), agentKey{}, fmt.Sprint("k", i))
		if _, o, _ := get(ctx, f, fail[int](errors.New("down"))); o.Branch != fallback.BranchExhausted {
			t.Fatalf("k%d: expired result served via %v", i, o.Branch)
		}
	}
}

func TestAlternativeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cause error
		f := mustNew(t, fallback.Config[string]{Alternatives: []fallback.Alternative[string]{
			{Name: "slow-replica", Timeout: 100 * time.Millisecond, Fn: func(ctx context.Context) (string, error) {
				select {
				case <-time.After(time.Hour):
					return "too late", nil
				case <-ctx.Done():
					cause = context.Cause(ctx)
					return "", ctx.Err()
				}
			}},
			{Name: "cache-node", Timeout: 50 * time.Millisecond, Fn: func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", context.Cause(ctx)
			}},
		}})
		start := time.Now()
		_, o, err := get(context.Background(), f, fail[string](&upstreamErr{"primary"}))
		if d := time.Since(start); d != 150*time.Millisecond {
			t.Errorf("chain took %v, want exactly 100ms + 50ms", d)
		}
		var ae *fallback.AlternativeError
		if !errors.As(cause, &ae) || ae.Name != "slow-replica" || !ae.TimedOut || ae.Limit != 100*time.Millisecond {
			t.Errorf("alternative's context cause = %#v", cause)
		}
		var ex *fallback.ExhaustedError
		if !errors.As(err, &ex) || o.Branch != fallback.BranchExhausted {
			t.Fatalf("got %v via %v, want exhausted", err, o.Branch)
		}
		a0, a1 := ex.Alternatives[0], ex.Alternatives[1]
		if !a0.TimedOut || a0.Err != context.DeadlineExceeded || !a1.TimedOut || a1.Err != nil {
			t.Errorf("alternative errors = %#v, %#v", a0, a1)
		}
		if !errors.Is(a0, context.DeadlineExceeded) {
			t.Error("a timed-out alternative's error is not context.DeadlineExceeded")
		}
		want := `fallback: exhausted: dial primary: connection refused; alternative "slow-replica" exceeded its 100ms timeout: context deadline exceeded; alternative "cache-node" exceeded its 50ms timeout`
		if err.Error() != want {
			t.Errorf("message\n got %s\nwant %s", err, want)
		}
		if s := f.Stats(); s.Alternatives[0].Failed != 1 || s.Alternatives[1].Failed != 1 || s.Exhausted != 1 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestCallerGoneStopsAlternatives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		def := "default"
		second := false
		f := mustNew(t, fallback.Config[string]{Default: &def, Alternatives: []fallback.Alternative[string]{
			{Fn: func(actx context.Context) (string, error) {
				cancel() // the caller gives up while the first alternative runs
				return "", actx.Err()
			}},
			{Fn: func(context.Context) (string, error) { second = true; return "x", nil }},
		}})
		v, o, err := get(ctx, f, fail[string](errors.New("down")))
		if second {
			t.Error("second alternative started after the caller's context ended")
		}
		if err != nil || v != "default" || o.Branch != fallback.BranchDefault {
			t.Errorf("got %q via %v, %v; want the default (it needs no context)", v, o.Branch, err)
		}
		if s := f.Stats(); s.Alternatives[0].Name != "alternative-1" || s.Alternatives[0].Failed != 1 || s.Alternatives[1].Failed != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestUnderDo(t *testing.T) {
	altErr := errors.New("queue full")
	queued := 0
	queue := fallback.Alternative[struct{}]{Name: "queue", Fn: func(context.Context) (struct{}, error) {
		queued++
		if queued > 1 {
			return struct{}{}, altErr
		}
		return struct{}{}, nil
	}}
	f := mustNew(t, fallback.Config[struct{}]{Alternatives: []fallback.Alternative[struct{}]{queue}})
	p := sluice.NewPipeline(f)
	send := func(context.Context) error { return &upstreamErr{"agent"} }
	if err := p.Do(context.Background(), send); err != nil {
		t.Fatalf("first call: alternative answered, got %v", err)
	}
	err := p.Do(context.Background(), send)
	var ex *fallback.ExhaustedError
	if !errors.As(err, &ex) || len(ex.Alternatives) != 1 || ex.Alternatives[0].Err != altErr {
		t.Fatalf("second call: got %v, want exhausted listing the queue's error", err)
	}
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s := f.Stats()
	if s.Primary != 1 || s.Alternatives[0].Answered != 1 || s.Alternatives[0].Failed != 1 || s.Exhausted != 1 || s.Calls != 3 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestTypeMismatch(t *testing.T) {
	f := mustNew(t, fallback.Config[int]{Name: "counts"})
	ran := false
	_, err := sluice.Get(context.Background(), sluice.NewPipeline(f), func(context.Context) (string, error) { ran = true; return "", nil })
	if ran || err == nil || err.Error() != `fallback: "counts": Fallback[int] in a pipeline run by Get[string]` {
		t.Fatalf("ran=%v err=%v", ran, err)
	}
}

func TestNestedOutcome(t *testing.T) {
	inner := mustNew(t, fallback.Config[int]{Name: "inner", Alternatives: []fallback.Alternative[int]{{Name: "replica", Fn: ok(2)}}})
	outer := mustNew(t, fallback.Config[int]{Name: "outer", Alternatives: []fallback.Alternative[int]{{Name: "static", Fn: ok(3)}}})
	p := sluice.NewPipeline(outer, inner)
	var o fallback.Outcome
	v, err := sluice.Get(fallback.WithOutcome(context.Background(), &o), p, fail[int](errors.New("down")))
	if err != nil || v != 2 || o.Fallback != "inner" || o.Alternative != "replica" {
		t.Fatalf("inner answered: got %d, %v, %+v", v, err, o)
	}
	inner2 := mustNew(t, fallback.Config[int]{Name: "inner"})
	p = sluice.NewPipeline(outer, inner2)
	v, err = sluice.Get(fallback.WithOutcome(context.Background(), &o), p, fail[int](errors.New("down")))
	if err != nil || v != 3 || o.Fallback != "outer" || o.Alternative != "static" || !errors.Is(o.Err, fallback.ErrExhausted) {
		t.Fatalf("outer answered: got %d, %v, %+v", v, err, o)
	}
}

func TestDefaultIsCopied(t *testing.T) {
	def := "v1"
	f := mustNew(t, fallback.Config[string]{Default: &def})
	def = "v2"
	v, _, _ := get(context.Background(), f, fail[string](errors.New("down")))
	if v != "v1" {
		t.Fatalf("default = %q, want the value at New", v)
	}
}

func TestValidation(t *testing.T) {
	fn := ok(1)
	cases := []struct {
		cfg  fallback.Config[int]
		want string
	}{
		{fallback.Config[int]{LastGoodTTL: -time.Second}, "fallback: Config.LastGoodTTL must be >= 0, got -1s"},
		{fallback.Config[int]{MaxKeys: -1}, "fallback: Config.MaxKeys must be >= 0, got -1"},
		{fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{Fn: fn}, {Name: "b"}}}, "fallback: Config.Alternatives[1]: exactly one of Fn and FnErr must be set"},
		{fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{Fn: fn, Timeout: -2 * time.Second}}}, "fallback: Config.Alternatives[0].Timeout must be >= 0, got -2s"},
		{fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{Name: "r", Fn: fn}, {Name: "s", Fn: fn}, {Name: "r", Fn: fn}}}, `fallback: Config.Alternatives[2].Name "r" must be unique, repeats Alternatives[0]`},
	}
	for i, tc := range cases {
		_, err := fallback.New(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("case %d: got %v, want %s", i, err, tc.want)
		}
	}
	if _, err := fallback.New(fallback.Config[int]{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if fallback.MustNew(fallback.Config[int]{}) == nil {
		t.Error("MustNew(zero Config) = nil")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew with an invalid Config did not panic")
		}
	}()
	fallback.MustNew(fallback.Config[int]{MaxKeys: -1})
}

func TestBranchString(t *testing.T) {
	for b, want := range map[fallback.Branch]string{
		fallback.BranchNone: "none", fallback.BranchPrimary: "primary", fallback.BranchAlternative: "alternative",
		fallback.BranchLastGood: "last-good", fallback.BranchDefault: "default", fallback.BranchExhausted: "exhausted", 9: "Branch(9)",
	} {
		if got := b.String(); got != want {
			t.Errorf("%d: %q, want %q", b, got, want)
		}
	}
}

func TestPrimaryPathAllocs(t *testing.T) {
	f := mustNew(t, fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{Fn: ok(1)}}})
	p := sluice.NewPipeline(f)
	ctx := context.Background()
	do := func(context.Context) error { return nil }
	if a := testing.AllocsPerRun(100, func() { _ = p.Do(ctx, do) }); a != 0 {
		t.Errorf("Do: %v allocs, want 0", a)
	}
	lg := mustNew(t, fallback.Config[int]{LastGoodTTL: time.Minute})
	pl := sluice.NewPipeline(lg)
	fn := ok(5)
	_, _ = sluice.Get(ctx, pl, fn)
	// One allocation is Get's own result carrier.
	if a := testing.AllocsPerRun(100, func() { _, _ = sluice.Get(ctx, pl, fn) }); a != 1 {
		t.Errorf("Get with last good kept: %v allocs, want 1 (Get's own)", a)
	}
}

func TestPanicPropagates(t *testing.T) {
	f := mustNew(t, fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{Fn: ok(1)}}})
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v", r)
		}
		if s := f.Stats(); s.Calls != 0 {
			t.Errorf("a panic fell back: %+v", s)
		}
	}()
	_, _ = sluice.Get(context.Background(), sluice.NewPipeline(f), func(context.Context) (int, error) { panic("boom") })
}

// An alternative given as FnErr sees why the primary failed: its error and,
// under Get[T], the value it returned with it (the zero T under Do).
func TestFnErrSeesThePrimaryFailure(t *testing.T) {
	type seen struct {
		res int
		err error
	}
	var got []seen
	f := mustNew(t, fallback.Config[int]{Alternatives: []fallback.Alternative[int]{{
		Name: "from-error",
		FnErr: func(_ context.Context, res int, err error) (int, error) {
			got = append(got, seen{res, err})
			var se *sluice.StatusError
			if errors.As(err, &se) {
				return res + se.Code, nil
			}
			return 0, errors.New("cannot help")
		},
	}}})
	busy := &sluice.StatusError{Code: 503}
	v, o, err := get(context.Background(), f, func(context.Context) (int, error) { return 1000, busy })
	if err != nil || v != 1503 || o.Branch != fallback.BranchAlternative || o.Alternative != "from-error" {
		t.Fatalf("Get = %v, %v, %+v; want 1503 from the alternative", v, err, o)
	}
	down := &upstreamErr{"db"}
	_, _, err = get(context.Background(), f, fail[int](down))
	if !errors.Is(err, fallback.ErrExhausted) || !errors.Is(err, down) {
		t.Fatalf("Get with an unhelpful alternative = %v, want exhausted on the primary's error", err)
	}
	err = sluice.NewPipeline(f).Do(context.Background(), func(context.Context) error { return busy })
	if err != nil {
		t.Fatalf("Do = %v, want the alternative's answer", err)
	}
	want := []seen{{1000, busy}, {0, down}, {0, busy}}
	if len(got) != len(want) {
		t.Fatalf("FnErr saw %v, want %v", got, want)
	}
	for i := range want {
		if got[i].res != want[i].res || got[i].err != want[i].err {
			t.Errorf("call %d: FnErr saw (%v, %v), want (%v, %v)", i, got[i].res, got[i].err, want[i].res, want[i].err)
		}
	}
}

// An alternative has exactly one of Fn and FnErr.
func TestAlternativeNeedsExactlyOneFn(t *testing.T) {
	fn := func(context.Context) (int, error) { return 0, nil }
	fnErr := func(context.Context, int, error) (int, error) { return 0, nil }
	for _, a := range []fallback.Alternative[int]{{}, {Fn: fn, FnErr: fnErr}} {
		_, err := fallback.New(fallback.Config[int]{Alternatives: []fallback.Alternative[int]{a}})
		if err == nil || !strings.Contains(err.Error(), "Alternatives[0]: exactly one of Fn and FnErr") {
			t.Errorf("New with Fn %v, FnErr %v: %v, want an error naming the rule", a.Fn != nil, a.FnErr != nil, err)
		}
	}
}
