package sluiceredis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluiceredis"
	"github.com/sluice-go/sluice/sluicetest"
)

var bg = context.Background()

// newLimiter returns a Limiter on srv with its own client. Unless cfg says
// otherwise, its timeout is a generous second: a test machine running the
// race detector beside other tests can take longer than the 50ms default
// to dial, and only the tests of failure are about the timeout.
func newLimiter(t *testing.T, srv *redistest.Server, cfg sluiceredis.LimiterConfig) *sluiceredis.Limiter {
	t.Helper()
	cfg.Client = srv.Client()
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
	return l
}

func take(t *testing.T, l ratelimit.Limiter, n int) ratelimit.Decision {
	t.Helper()
	d, err := l.Take(bg, n)
	if err != nil {
		t.Fatalf("Take(%d): %v", n, err)
	}
	return d
}

// slowRate and slowPer are the limit of the tests that compare the
// limiter's times with fixed ones: one token per 10s, so that the time the
// test's calls take (tens of milliseconds, more on a loaded machine) can
// never refill a token and change a decision.
const (
	slowRate = 6
	slowPer  = time.Minute
)

// ranOn reports whether got, a time Redis computed, is want less at most
// el: Redis decides by its own clock, which runs on while the test calls,
// by no more than the el the test measured from before its first call.
// One millisecond covers the rounding to whole microseconds.
func ranOn(got, want, el time.Duration) bool {
	return got <= want+time.Millisecond && got >= want-el-time.Millisecond
}

// The shared limiter decides a sequence of requests as the local
// TokenBucket with the same shape does. The local bucket's clock stands
// still; Redis's runs on, so its retry-afters are the local ones less at
// most the time the test has taken since its first shared call.
func TestLimiterDecidesLikeTokenBucket(t *testing.T) {
	srv := redistest.Start(t)
	for _, smooth := range []bool{false, true} {
		cfg := ratelimit.Config{Rate: slowRate, Per: slowPer, Burst: 5, Smooth: smooth, Clock: sluicetest.NewFakeClock(time.Now())}
		local := ratelimit.MustNew(cfg)
		shared := newLimiter(t, srv, sluiceredis.LimiterConfig{
			Key:  sluiceredis.LimiterKey("like", map[bool]string{false: "bursty", true: "smooth"}[smooth]),
			Rate: cfg.Rate, Per: cfg.Per, Burst: cfg.Burst, Smooth: smooth,
		})
		start := time.Now()
		for i, n := range []int{1, 2, 1, 1, 1, 1, 6, 0} {
			if n > cfg.Burst {
				_, lerr := local.Take(bg, n)
				_, serr := shared.Take(bg, n)
				if lerr == nil || serr == nil {
					t.Fatalf("smooth=%v step %d: Take(%d) over the burst: local err %v, shared err %v", smooth, i, n, lerr, serr)
				}
				continue
			}
			want := take(t, local, n)
			got := take(t, shared, n)
			if el := time.Since(start); got.Allowed != want.Allowed || !ranOn(got.RetryAfter, want.RetryAfter, el) {
				t.Fatalf("smooth=%v step %d: Take(%d) = %+v after %v, TokenBucket says %+v", smooth, i, n, got, el, want)
			}
		}
	}
}

// A bursty limit admits its burst, then refuses with a retry-after of one
// interval (less the time the calls took); its Decision.Err is a
// rate-limit rejection.
func TestLimiterBurstThenRefuse(t *testing.T) {
	srv := redistest.Start(t)
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: slowRate, Per: slowPer, Burst: 3})
	interval := slowPer / slowRate
	start := time.Now()
	for i := range 3 {
		if d := take(t, l, 1); !d.Allowed {
			t.Fatalf("call %d of the burst refused: %+v", i, d)
		}
	}
	d := take(t, l, 1)
	if el := time.Since(start); d.Allowed || !ranOn(d.RetryAfter, interval, el) {
		t.Fatalf("call after the burst = %+v after %v, want refused with RetryAfter %v less at most that", d, el, interval)
	}
	if err := d.Err(); !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, sluice.ErrRejected) {
		t.Fatalf("Decision.Err() = %v, want ErrLimited and ErrRejected", err)
	}
	// Through the pipeline policy the refusal is a rejection too.
	err := sluice.NewPipeline(ratelimit.NewPolicy(l)).Do(bg, func(context.Context) error {
		t.Fatal("the call ran although refused")
		return nil
	})
	if !errors.Is(err, ratelimit.ErrLimited) {
		t.Fatalf("policy returned %v, want ErrLimited", err)
	}
}

// Waiting: a bursty limit lets a caller wait for its refilled tokens; a
// smooth one queues callers a slot apart and refuses past its burst. The
// waits sleep on a fake clock; their lengths come from Redis, whose clock
// runs on while the test calls.
func TestLimiterWaitBurstyAndSmooth(t *testing.T) {
	srv := redistest.Start(t)
	iv := slowPer / slowRate
	for _, tc := range []struct {
		smooth bool
		waits  []time.Duration // per call; -1: refused
	}{
		{false, []time.Duration{0, 0, 0, iv, 2 * iv}},
		{true, []time.Duration{0, iv, 2 * iv, -1}},
	} {
		clock := sluicetest.NewFakeClock(time.Now())
		key := sluiceredis.LimiterKey("wait", map[bool]string{false: "bursty", true: "smooth"}[tc.smooth])
		l := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: key, Rate: slowRate, Per: slowPer, Burst: 3, Smooth: tc.smooth, MaxWait: 3 * iv, Clock: clock})
		type result struct {
			d   ratelimit.Decision
			err error
		}
		var pending []chan result
		var wantWait []time.Duration
		start := time.Now()
		for i, want := range tc.waits {
			ch := make(chan result, 1)
			go func() { d, err := l.Take(bg, 1); ch <- result{d, err} }()
			if want <= 0 {
				r := <-ch
				if r.err != nil || r.d.Allowed != (want == 0) {
					t.Fatalf("smooth=%v call %d = %+v, %v; want allowed %v", tc.smooth, i, r.d, r.err, want == 0)
				}
				continue
			}
			clock.BlockUntil(len(pending) + 1) // reserved and sleeping
			pending = append(pending, ch)
			wantWait = append(wantWait, want)
		}
		el := time.Since(start) // every wait has been reserved by now
		clock.Advance(3 * iv)
		for i, ch := range pending {
			if r := <-ch; r.err != nil || !r.d.Allowed || !ranOn(r.d.Waited, wantWait[i], el) {
				t.Fatalf("smooth=%v waiter %d = %+v, %v; want allowed after %v less at most %v", tc.smooth, i, r.d, r.err, wantWait[i], el)
			}
		}
	}
}

// Two limiters with their own clients on one key hold one limit between
// them; another key is another limit.
func TestLimiterSharedAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	cfg := sluiceredis.LimiterConfig{Rate: 1, Per: time.Minute, Burst: 10}
	a, b := newLimiter(t, srv, cfg), newLimiter(t, srv, cfg)
	allowed := 0
	for i := range 20 {
		l := a
		if i%3 == 0 {
			l = b
		}
		if take(t, l, 1).Allowed {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("two instances admitted %d of 20, want the shared burst of 10", allowed)
	}
	cfg.Key = sluiceredis.LimiterKey("route", "tenant-b")
	if d := take(t, newLimiter(t, srv, cfg), 1); !d.Allowed {
		t.Fatalf("a tenant's key shares the route's limit: %+v", d)
	}
}

// The key expires when the bucket would be full again, so idle limits take
// no memory. At 10/s five tokens take 500ms to come back: the key outlives
// the six round trips of the test's calls however loaded the machine (at
// 100/s it could be gone before PTTL reads it).
func TestLimiterKeyExpires(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	key := sluiceredis.LimiterKey("idle", "")
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: key, Rate: 10, Burst: 5})
	for range 5 {
		take(t, l, 1)
	}
	ttl, err := c.PTTL(bg, key).Result()
	if err != nil || ttl <= 0 || ttl > 502*time.Millisecond {
		t.Fatalf("PTTL after 5 tokens at 10/s = %v, %v; want (0, 502ms]", ttl, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := c.Exists(bg, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key of an idle limit is still there after 2s")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's expiry, bounded above
	}
	if d := take(t, l, 5); !d.Allowed {
		t.Fatalf("a full burst after expiry refused: %+v", d)
	}
}

// A wait cut short by its context gives the tokens back: the next caller
// finds the state as it was before the waiter came.
func TestLimiterCancelledWaitGivesBack(t *testing.T) {
	srv := redistest.Start(t)
	for _, smooth := range []bool{false, true} {
		key := sluiceredis.LimiterKey("cancel", map[bool]string{false: "bursty", true: "smooth"}[smooth])
		clock := sluicetest.NewFakeClock(time.Now())
		waiter := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: key, Rate: slowRate, Per: slowPer, Burst: 2, Smooth: smooth, MaxWait: time.Minute, Clock: clock})
		probe := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: key, Rate: slowRate, Per: slowPer, Burst: 2, Smooth: smooth})
		n := 2 // bursty: empty the bucket; smooth: take the slot now
		if smooth {
			n = 1
		}
		take(t, waiter, n)
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error, 1)
		go func() { _, err := waiter.Take(ctx, 1); done <- err }()
		clock.BlockUntil(1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("smooth=%v: cancelled wait returned %v, want context.Canceled", smooth, err)
		}
		// Without the give-back the next token would be two intervals away.
		d := take(t, probe, 1)
		if iv := slowPer / slowRate; d.Allowed || d.RetryAfter > iv {
			t.Fatalf("smooth=%v: after the give-back Take = %+v, want refused with RetryAfter <= %v", smooth, d, iv)
		}
	}
}

// A dead Redis is an error within the timeout, and a hung one too; after
// RetryInterval the limiter tries Redis again and is shared once more.
//
// The timeout is newLimiter's second, not the 50ms default: the calls
// before the kill and after the restart must succeed under it (a dial and
// a script load on a loaded machine running the race detector can take
// longer than 50ms). The bound on the failing call is the timeout plus
// half of it for the scheduling of a loaded machine; a call that ignored
// its deadline would wait on the hung server until Resume, after the check.
func TestLimiterRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	clock := sluicetest.NewFakeClock(time.Now())
	l, tr := countedLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 100, Burst: 10, Clock: clock})
	limit := l.Config().Timeout * 3 / 2
	take(t, l, 1)
	for _, how := range []string{"killed", "paused"} {
		if how == "killed" {
			srv.Kill()
		} else {
			srv.Pause()
		}
		start := time.Now()
		_, err := l.Take(bg, 1)
		if el := time.Since(start); el > limit {
			t.Fatalf("%s: Take took %v with a %v timeout, over %v", how, el, l.Config().Timeout, limit)
		}
		if !errors.Is(err, sluiceredis.ErrUnavailable) || !l.Degraded() {
			t.Fatalf("%s: Take err = %v, degraded %v; want ErrUnavailable, degraded", how, err, l.Degraded())
		}
		// Within RetryInterval Redis is not tried: no round trip.
		before := tr.total()
		if _, err := l.Take(bg, 1); !errors.Is(err, sluiceredis.ErrUnavailable) || tr.total() != before {
			t.Fatalf("%s: second Take = %v after %d round trips, want ErrUnavailable after none", how, err, tr.total()-before)
		}
		if how == "killed" {
			srv.Restart()
		} else {
			srv.Resume()
		}
		clock.Advance(sluiceredis.DefaultRetryInterval)
		if d, err := l.Take(bg, 1); err != nil || !d.Allowed || l.Degraded() {
			t.Fatalf("%s: after Redis is back Take = %+v, %v, degraded %v", how, d, err, l.Degraded())
		}
	}
}

// FailOpen decides with the local share of the limit while Redis is away;
// FailClosed refuses.
func TestLimiterFailModes(t *testing.T) {
	srv := redistest.Start(t)
	open := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: "o", Rate: 1, Per: time.Minute, Burst: 8, OnFailure: sluiceredis.FailOpen, FallbackShare: 0.25, Timeout: 50 * time.Millisecond})
	closed := newLimiter(t, srv, sluiceredis.LimiterConfig{Key: "c", Rate: 1, Per: time.Minute, Burst: 8, OnFailure: sluiceredis.FailClosed, Timeout: 50 * time.Millisecond})
	srv.Kill()
	var got []bool
	for range 4 {
		d, err := open.Take(bg, 1)
		if err != nil {
			t.Fatalf("FailOpen Take: %v", err)
		}
		got = append(got, d.Allowed)
	}
	if !got[0] || !got[1] || got[2] || got[3] || !open.Degraded() {
		t.Fatalf("FailOpen with a quarter of a burst of 8 admitted %v, want the first 2 (degraded %v)", got, open.Degraded())
	}
	d, err := closed.Take(bg, 1)
	if err != nil || d.Allowed || d.RetryAfter != sluiceredis.DefaultRetryInterval {
		t.Fatalf("FailClosed Take = %+v, %v; want refused, RetryAfter 1s", d, err)
	}
	if !errors.Is(closed.LastError(), sluiceredis.ErrUnavailable) {
		t.Fatalf("LastError = %v", closed.LastError())
	}
}

// An unlimited rate admits without asking Redis; more tokens than the burst
// are an error, not a refusal.
func TestLimiterEdges(t *testing.T) {
	srv := redistest.Start(t)
	unlimited := newLimiter(t, srv, sluiceredis.LimiterConfig{})
	l := newLimiter(t, srv, sluiceredis.LimiterConfig{Rate: 10, Burst: 2})
	srv.Kill()
	if d := take(t, unlimited, 100); !d.Allowed {
		t.Fatalf("unlimited refused: %+v", d)
	}
	if _, err := l.Take(bg, 3); err == nil || errors.Is(err, sluiceredis.ErrUnavailable) {
		t.Fatalf("Take(3) with Burst 2 = %v, want the burst error before any round trip", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := l.Take(ctx, 1); !errors.Is(err, context.Canceled) || l.Degraded() {
		t.Fatalf("Take with a done context = %v (degraded %v), want context.Canceled", err, l.Degraded())
	}
}

func TestNewLimiterValidates(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	for i, cfg := range []sluiceredis.LimiterConfig{
		{Key: "k"},
		{Client: c},
		{Client: c, Key: "k", Rate: -1},
		{Client: c, Key: "k", Timeout: -1},
		{Client: c, Key: "k", RetryInterval: -1},
		{Client: c, Key: "k", FallbackShare: 1.5},
		{Client: c, Key: "k", OnFailure: 7},
		{Client: c, Key: "k", Rate: 1, Lease: -1},
		{Client: c, Key: "k", Rate: 1, Lease: 2, LeaseTTL: -1},
		{Client: c, Key: "k", Rate: 1, Lease: 2, Smooth: true},
	} {
		if _, err := sluiceredis.NewLimiter(cfg); err == nil {
			t.Errorf("case %d: NewLimiter(%+v) accepted", i, cfg)
		}
	}
	l, err := sluiceredis.NewLimiter(sluiceredis.LimiterConfig{Client: c, Key: "k", Rate: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Config(); got.Burst != 7 || got.Per != time.Second || got.Timeout != sluiceredis.DefaultTimeout || got.FallbackShare != 1 || got.LeaseTTL != sluiceredis.DefaultLeaseTTL {
		t.Fatalf("defaults = %+v", got)
	}
	if sluiceredis.LimiterKey("r", "") != "sluice:{r}:rl" || sluiceredis.LimiterKey("r", "t") != "sluice:{r}:rl:t" {
		t.Fatal("LimiterKey does not hash-tag the route")
	}
}
