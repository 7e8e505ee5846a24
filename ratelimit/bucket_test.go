package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluicetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newAt returns a limiter on a FakeClock reading t0, so that AllowAt(t0+d)
// and the clock agree.
func newAt(t *testing.T, cfg ratelimit.Config) (*ratelimit.TokenBucket, *sluicetest.FakeClock) {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	cfg.Clock = clock
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  ratelimit.Config
		want string
	}{
		{ratelimit.Config{Rate: -1}, "Config.Rate must be >= 0, got -1"},
		{ratelimit.Config{Rate: math.NaN()}, "Config.Rate must be >= 0, got NaN"},
		{ratelimit.Config{Rate: 1, Per: -time.Second}, "Config.Per must be >= 0, got -1s"},
		{ratelimit.Config{Rate: 1, Burst: -2}, "Config.Burst must be >= 0, got -2"},
		{ratelimit.Config{Rate: 3e9}, "Config.Rate must be at most one token per nanosecond"},
		{ratelimit.Config{Rate: 1e-9, Burst: 10}, "Config.Burst × Per/Rate must be under 73 years"},
	} {
		_, err := ratelimit.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ratelimit: ") {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
		if verr := tc.cfg.Validate(); verr == nil || err == nil || verr.Error() != err.Error() {
			t.Errorf("Validate(%+v) = %v, want New's error %v", tc.cfg, verr, err)
		}
	}
	for _, cfg := range []ratelimit.Config{{}, {Rate: 10, Burst: 5}, {Rate: 1, Per: time.Minute, Smooth: true}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew of an invalid Config did not panic")
		}
	}()
	ratelimit.MustNew(ratelimit.Config{Rate: -1})
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		in        ratelimit.Config
		per       time.Duration
		burst     int
		unlimited bool
	}{
		{ratelimit.Config{}, time.Second, 1, true},
		{ratelimit.Config{Rate: math.Inf(1)}, time.Second, 1, true},
		{ratelimit.Config{Rate: 100}, time.Second, 100, false},
		{ratelimit.Config{Rate: 2.5, Per: time.Minute}, time.Minute, 3, false},
		{ratelimit.Config{Rate: 0.5}, time.Second, 1, false},
		{ratelimit.Config{Rate: 10, Burst: 4}, time.Second, 4, false},
	} {
		l := ratelimit.MustNew(tc.in)
		got := l.Config()
		if got.Per != tc.per || got.Burst != tc.burst || (got.Rate == 0) != tc.unlimited {
			t.Errorf("New(%+v).Config() = Per %v Burst %d Rate %v; want Per %v Burst %d unlimited %v",
				tc.in, got.Per, got.Burst, got.Rate, tc.per, tc.burst, tc.unlimited)
		}
	}
}

func TestUnlimitedAdmitsAndCounts(t *testing.T) {
	l := ratelimit.MustNew(ratelimit.Config{Name: "free"})
	for range 1000 {
		if !l.Allow() {
			t.Fatal("unlimited limiter refused a call")
		}
	}
	if !l.AllowAt(t0, 1000) {
		t.Error("unlimited limiter refused n > Burst")
	}
	if err := l.Wait(context.Background()); err != nil {
		t.Error(err)
	}
	if s := l.Stats(); s.Allowed != 1002 || s.Rejected != 0 || s.Rate != 0 || s.Name != "free" {
		t.Errorf("Stats = %+v, want 1002 allowed, 0 rejected, Rate 0", s)
	}
}

type step struct {
	at   time.Duration // since t0
	n    int
	want bool
}

func runSteps(t *testing.T, l *ratelimit.TokenBucket, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := l.AllowAt(t0.Add(s.at), s.n); got != s.want {
			t.Fatalf("step %d: AllowAt(t0+%v, %d) = %v, want %v", i, s.at, s.n, got, s.want)
		}
	}
}

func TestBurstyBurstThenSteadyRate(t *testing.T) {
	l, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 3}) // one token every 100ms
	ms := time.Millisecond
	runSteps(t, l, []step{
		{0, 1, true}, {0, 1, true}, {0, 1, true}, // the full bucket
		{0, 1, false},
		{99 * ms, 1, false},
		{100 * ms, 1, true}, // one token per interval from now on
		{100 * ms, 1, false},
		{150 * ms, 1, false},
		{200 * ms, 1, true},
		{450 * ms, 2, true},  // 2.5 tokens refilled since 200ms
		{450 * ms, 1, false}, // 0.5 left
		{500 * ms, 1, true},
		{500 * ms, 4, false}, // more than Burst: never
		{time.Hour, 4, false},
		{time.Hour, 3, true}, // refilled to Burst, not beyond
		{time.Hour, 1, false},
		{time.Hour + 100*ms, 1, true},
	})
	if s := l.Stats(); s.Allowed != 9 || s.Rejected != 8 {
		t.Errorf("Stats allowed %d rejected %d, want 9 calls and 8", s.Allowed, s.Rejected)
	}
}

func TestSmoothSpacesCalls(t *testing.T) {
	l, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 3, Smooth: true})
	ms := time.Millisecond
	runSteps(t, l, []step{
		{0, 1, true},
		{0, 1, false}, // no burst, however full the bucket
		{99 * ms, 1, false},
		{100 * ms, 1, true},
		{150 * ms, 1, false},
		{200 * ms, 2, true}, // two tokens take two slots
		{300 * ms, 1, false},
		{400 * ms, 1, true},
		{time.Hour, 1, true}, // after an hour idle, still one at a time
		{time.Hour, 1, false},
		{time.Hour + 50*ms, 1, false},
		{time.Hour + 100*ms, 1, true},
		{2 * time.Hour, 4, false}, // more than Burst
	})
}

// With Burst 1 and no waiting, smooth and bursty admit the same calls.
func TestSmoothAndBurstyEqualAtBurstOne(t *testing.T) {
	a, _ := newAt(t, ratelimit.Config{Rate: 7, Burst: 1})
	b, _ := newAt(t, ratelimit.Config{Rate: 7, Burst: 1, Smooth: true})
	r := rand.New(rand.NewPCG(1, 2))
	now := t0
	for i := range 5000 {
		now = now.Add(time.Duration(r.IntN(int(300 * time.Millisecond))))
		if x, y := a.AllowAt(now, 1), b.AllowAt(now, 1); x != y {
			t.Fatalf("call %d at %v: bursty %v, smooth %v", i, now.Sub(t0), x, y)
		}
	}
}

// With Burst 1, smooth and bursty differ for a caller that waits: the
// bursty limiter lets it wait for the next token, the smooth one has no
// room in its queue (Burst−1 = 0 waiters) and refuses it at once.
func TestSmoothAndBurstyDifferForWaitersAtBurstOne(t *testing.T) {
	bursty, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 1})
	smooth, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 1, Smooth: true})
	for _, l := range []*ratelimit.TokenBucket{bursty, smooth} {
		if r := l.ReserveAt(t0, 1); !r.OK() || r.Delay() != 0 {
			t.Fatalf("%+v: first reservation %v, %v; want at once", l.Config(), r.OK(), r.Delay())
		}
	}
	if r := bursty.ReserveAt(t0, 1); !r.OK() || r.Delay() != 100*time.Millisecond {
		t.Errorf("bursty, Burst 1: second caller %v after %v, want admitted after 100ms", r.OK(), r.Delay())
	}
	if r := smooth.ReserveAt(t0, 1); r.OK() {
		t.Errorf("smooth, Burst 1: second caller admitted after %v, want refused (no queue)", r.Delay())
	}
	// Burst 2 gives the smooth limiter a queue of one.
	smooth2, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 2, Smooth: true})
	smooth2.ReserveAt(t0, 1)
	if r := smooth2.ReserveAt(t0, 1); !r.OK() || r.Delay() != 100*time.Millisecond {
		t.Errorf("smooth, Burst 2: second caller %v after %v, want admitted after 100ms", r.OK(), r.Delay())
	}
}

// TestLongRunningQPS runs minutes of simulated time without sleeping and
// checks that the limiter admits exactly Burst plus Rate×elapsed calls.
func TestLongRunningQPS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   ratelimit.Config
		span  time.Duration
		every func(*rand.Rand) time.Duration // gap between calls, far denser than Rate
	}{
		{"steady 5ms", ratelimit.Config{Rate: 100, Burst: 5}, 10 * time.Minute,
			func(*rand.Rand) time.Duration { return 5 * time.Millisecond }},
		{"random gaps", ratelimit.Config{Rate: 100, Burst: 20}, 5 * time.Minute,
			func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(int(4 * time.Millisecond))) }},
		{"odd rate", ratelimit.Config{Rate: 3, Per: time.Second, Burst: 2}, 20 * time.Minute, // interval rounded to 333333333ns
			func(r *rand.Rand) time.Duration { return time.Duration(1 + r.IntN(int(20*time.Millisecond))) }},
		{"per minute", ratelimit.Config{Rate: 90, Per: time.Minute, Burst: 2}, 30 * time.Minute,
			func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(int(50 * time.Millisecond))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newAt(t, tc.cfg)
			cfg := l.Config()
			r := rand.New(rand.NewPCG(7, 11))
			var admitted int64
			var last time.Duration
			for at := time.Duration(0); at < tc.span; at += tc.every(r) {
				if l.AllowAt(t0.Add(at), 1) {
					admitted++
				}
				last = at
			}
			interval := time.Duration(math.Round(float64(cfg.Per) / cfg.Rate))
			want := int64(cfg.Burst) + int64(last/interval)
			// Calls arrive far more often than tokens and Burst > 1, so the
			// bucket never overflows while in use: at most the one
			// token maturing after the last call is missed.
			if admitted > want || admitted < want-1 {
				t.Errorf("admitted %d over %v, want %d (Burst %d + Rate×elapsed)", admitted, last, want, cfg.Burst)
			}
			if s := l.Stats(); s.Allowed != admitted {
				t.Errorf("Stats.Allowed = %d, admitted %d", s.Allowed, admitted)
			}
		})
	}
}

func TestReserveBursty(t *testing.T) {
	l, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 2})
	ms := time.Millisecond
	var rs []ratelimit.Reservation
	for i, want := range []time.Duration{0, 0, 100 * ms, 200 * ms, 300 * ms} {
		r := l.ReserveAt(t0, 1)
		if !r.OK() || r.Delay() != want {
			t.Fatalf("reservation %d: OK %v Delay %v, want OK with %v", i, r.OK(), r.Delay(), want)
		}
		rs = append(rs, r)
	}
	if r := l.ReserveAt(t0, 3); r.OK() || r.Delay() != time.Duration(math.MaxInt64) {
		t.Errorf("ReserveAt(3) with Burst 2: OK %v Delay %v, want never", r.OK(), r.Delay())
	}
	// The last reservation is undone exactly.
	rs[4].CancelAt(t0)
	if r := l.ReserveAt(t0, 1); r.Delay() != 300*ms {
		t.Errorf("after cancelling the last, Delay = %v, want 300ms", r.Delay())
	} else {
		rs[4] = r
	}
	// An earlier one gives its token back too: the next caller is served
	// one interval sooner.
	rs[2].CancelAt(t0.Add(10 * ms))
	rs[2].CancelAt(t0.Add(10 * ms)) // a second Cancel does nothing
	if r := l.ReserveAt(t0.Add(10*ms), 1); r.Delay() != 290*ms {
		t.Errorf("after cancelling a middle one, Delay = %v, want 290ms", r.Delay())
	}
	// A reservation whose time has come is not returned.
	rs[3].CancelAt(t0.Add(200 * ms))
	if r := l.ReserveAt(t0.Add(200*ms), 1); r.Delay() != 200*ms {
		t.Errorf("after a late Cancel, Delay = %v, want 200ms", r.Delay())
	}
	if s := l.Stats(); s.Allowed != 0 || s.Rejected != 0 {
		t.Errorf("ReserveAt was counted in Stats: %+v", s)
	}
}

func TestReserveSmoothQueue(t *testing.T) {
	l, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 3, Smooth: true})
	ms := time.Millisecond
	var rs []ratelimit.Reservation
	for i, want := range []time.Duration{0, 100 * ms, 200 * ms} {
		r := l.ReserveAt(t0, 1)
		if !r.OK() || r.Delay() != want {
			t.Fatalf("reservation %d: OK %v Delay %v, want OK with %v", i, r.OK(), r.Delay(), want)
		}
		rs = append(rs, r)
	}
	// The queue holds Burst slots: a fourth is refused, and told when a
	// call could run at once.
	if r := l.ReserveAt(t0, 1); r.OK() || r.Delay() != 300*ms {
		t.Errorf("fourth reservation: OK %v Delay %v, want refused, 300ms", r.OK(), r.Delay())
	}
	// A middle slot is not given back: the caller behind it keeps its
	// spacing.
	rs[1].CancelAt(t0)
	if r := l.ReserveAt(t0, 1); r.OK() {
		t.Error("cancelling a middle slot freed a place in the queue")
	}
	rs[2].CancelAt(t0)
	if r := l.ReserveAt(t0, 1); !r.OK() || r.Delay() != 200*ms {
		t.Errorf("after cancelling the last slot: OK %v Delay %v, want 200ms", r.OK(), r.Delay())
	}
}

func TestUpdateKeepsState(t *testing.T) {
	ms := time.Millisecond
	l, _ := newAt(t, ratelimit.Config{Name: "x", Rate: 10, Burst: 4})
	runSteps(t, l, []step{{0, 3, true}}) // 1 token left
	// Ten times the rate: the one token stays, and refills come ten
	// times as fast.
	if err := l.Update(ratelimit.Config{Name: "ignored", Rate: 100, Burst: 4}); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Tokens; got != 1 {
		t.Errorf("tokens after Update = %v, want 1", got)
	}
	runSteps(t, l, []step{{0, 1, true}, {0, 1, false}, {10 * ms, 1, true}, {40 * ms, 3, true}, {40 * ms, 1, false}})
	if l.Name() != "x" || l.Config().Name != "x" {
		t.Errorf("Update changed the name to %q", l.Config().Name)
	}
	// A smaller Burst caps the tokens.
	runSteps(t, l, []step{{time.Second, 0, true}})
	if err := l.Update(ratelimit.Config{Rate: 100, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, l, []step{{time.Second, 2, true}, {time.Second, 1, false}})
	// An invalid Config changes nothing.
	if err := l.Update(ratelimit.Config{Rate: -1}); err == nil {
		t.Error("Update accepted Rate -1")
	}
	if c := l.Config(); c.Rate != 100 || c.Burst != 2 {
		t.Errorf("failed Update changed the config to %+v", c)
	}
	// To unlimited and back: unlimited keeps no state, so back is full.
	if err := l.Update(ratelimit.Config{}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, l, []step{{time.Second, 50, true}})
	if err := l.Update(ratelimit.Config{Rate: 1, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, l, []step{{time.Second, 2, true}, {time.Second, 1, false}})
}

func TestUpdateCarriesDebt(t *testing.T) {
	l, _ := newAt(t, ratelimit.Config{Rate: 10, Burst: 1}) // 100ms interval
	ms := time.Millisecond
	l.ReserveAt(t0, 1)
	if r := l.ReserveAt(t0, 1); r.Delay() != 100*ms {
		t.Fatalf("Delay = %v", r.Delay())
	}
	// One token owed; at 20 per second it is owed for 50ms.
	if err := l.Update(ratelimit.Config{Rate: 20, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Tokens; got != -1 {
		t.Errorf("tokens = %v, want -1", got)
	}
	if r := l.ReserveAt(t0, 1); r.Delay() != 100*ms {
		t.Errorf("Delay after Update = %v, want 100ms", r.Delay())
	}
}

func TestRejectionError(t *testing.T) {
	l, clock := newAt(t, ratelimit.Config{Name: "api", Rate: 10, Burst: 2})
	p := sluice.NewPipeline(l)
	ctx := context.Background()
	calls := 0
	fn := func(context.Context) error { calls++; return nil }
	for range 2 {
		if err := p.Do(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Do(ctx, fn)
	if calls != 2 {
		t.Errorf("a rejected call ran: %d calls", calls)
	}
	if !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, sluice.ErrRejected) {
		t.Fatalf("err = %v, want ErrLimited and ErrRejected", err)
	}
	if ra, ok := sluice.RetryAfter(err); !ok || ra != 100*time.Millisecond {
		t.Errorf("RetryAfter = %v, %v; want 100ms", ra, ok)
	}
	if got, want := err.Error(), `ratelimit: "api": rate limited, retry after 100ms`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// RetryAfter is read from the limiter when asked.
	clock.Advance(40 * time.Millisecond)
	if ra, _ := sluice.RetryAfter(err); ra != 60*time.Millisecond {
		t.Errorf("RetryAfter 40ms later = %v, want 60ms", ra)
	}
	clock.Advance(time.Second)
	if ra, _ := sluice.RetryAfter(err); ra != 0 {
		t.Errorf("RetryAfter once refilled = %v, want 0", ra)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("rejection matches context.Canceled")
	}
}

func TestOnReject(t *testing.T) {
	type event struct {
		name string
		ra   time.Duration
	}
	var got []event
	l, _ := newAt(t, ratelimit.Config{Name: "n", Rate: 4, Burst: 1, OnReject: func(name string, ra time.Duration) {
		got = append(got, event{name, ra})
	}})
	l.AllowAt(t0, 1)
	l.AllowAt(t0.Add(50*time.Millisecond), 1)
	l.AllowAt(t0.Add(100*time.Millisecond), 2)
	want := []event{{"n", 200 * time.Millisecond}, {"n", time.Duration(math.MaxInt64)}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("OnReject got %v, want %v", got, want)
	}
}

func TestNoAllocations(t *testing.T) {
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	ok := ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9})
	okWait := ratelimit.MustNew(ratelimit.Config{Rate: 1e9, Burst: 1e9, MaxWait: time.Second})
	full := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
	full.Allow()
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Allow", func() { ok.Allow() }},
		{"Allow refused", func() { full.Allow() }},
		{"Do", func() { _ = pipelineOf(ok).Do(ctx, fn) }},
		{"Do with MaxWait", func() { _ = pipelineOf(okWait).Do(ctx, fn) }},
		{"Do refused", func() { _ = pipelineOf(full).Do(ctx, fn) }},
		{"ReserveAt", func() { ok.ReserveAt(time.Now(), 1) }},
	} {
		if n := testing.AllocsPerRun(200, tc.f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}

var pipelines = map[*ratelimit.TokenBucket]*sluice.Pipeline{}

func pipelineOf(l *ratelimit.TokenBucket) *sluice.Pipeline {
	p, ok := pipelines[l]
	if !ok {
		p = sluice.NewPipeline(l)
		pipelines[l] = p
	}
	return p
}
