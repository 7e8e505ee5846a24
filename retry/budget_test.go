package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustBudget(t interface {
	Helper()
	Fatal(...any)
}, cfg BudgetConfig) *RatioBudget {
	t.Helper()
	b, err := NewBudget(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRatioBudgetSteps(t *testing.T) {
	b := mustBudget(t, BudgetConfig{Ratio: 0.1, Window: 10 * time.Second, MinRetriesPerSecond: -1})
	type step struct {
		at      time.Duration
		first   int // first attempts recorded at this time
		ask     int // retries asked for
		granted int // of which granted
		wait    time.Duration
	}
	steps := []step{
		{at: 0, ask: 1, granted: 0, wait: time.Second},             // no traffic, no reserve: nothing
		{at: 0, first: 50, ask: 10, granted: 5, wait: time.Second}, // 10 % of 50
		{at: 500 * time.Millisecond, first: 50, ask: 10, granted: 5, wait: 500 * time.Millisecond},
		{at: 9 * time.Second, ask: 1, granted: 0, wait: time.Second},  // still in the window
		{at: 10 * time.Second, ask: 1, granted: 0, wait: time.Second}, // the first bucket left: its 100 firsts' 10 retries, all spent, expire
		{at: 10 * time.Second, first: 30, ask: 5, granted: 3, wait: time.Second},
		{at: 30 * time.Second, ask: 1, granted: 0, wait: time.Second},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		for range s.first {
			b.AttemptAt(now, true, Retryable)
		}
		granted := 0
		var lastWait time.Duration
		for range s.ask {
			ok, wait := b.AllowRetryAt(now)
			if ok {
				granted++
			} else {
				lastWait = wait
			}
		}
		if granted != s.granted {
			t.Errorf("step %d: granted %d of %d, want %d", i, granted, s.ask, s.granted)
		}
		if s.granted < s.ask && lastWait != s.wait {
			t.Errorf("step %d: refusal wait %v, want %v", i, lastWait, s.wait)
		}
	}
}

func TestRatioBudgetReserve(t *testing.T) {
	b := mustBudget(t, BudgetConfig{}) // 10/s over 10 s: 100 retries with no traffic
	granted := 0
	for range 150 {
		if ok, _ := b.AllowRetryAt(t0); ok {
			granted++
		}
	}
	if granted != 100 {
		t.Errorf("reserve granted %d retries, want 100", granted)
	}
}

func TestRatioBudgetExactUnderConcurrency(t *testing.T) {
	b := mustBudget(t, BudgetConfig{Ratio: 0.1, MinRetriesPerSecond: -1})
	for range 1000 {
		b.AttemptAt(t0, true, Succeeded)
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if ok, _ := b.AllowRetryAt(t0); ok {
					granted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if granted.Load() != 100 {
		t.Errorf("granted %d retries to racing callers, want exactly 100", granted.Load())
	}
}

func TestNewBudgetRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  BudgetConfig
		want string
	}{
		{BudgetConfig{Ratio: -0.1}, "BudgetConfig.Ratio must be a finite number >= 0, got -0.1"},
		{BudgetConfig{Window: -time.Second}, "BudgetConfig.Window must be >= 0, got -1s"},
	} {
		if _, err := NewBudget(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewBudget(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := NewTokenBudget(TokenBudgetConfig{MaxTokens: -1}); err == nil || !strings.Contains(err.Error(), "TokenBudgetConfig.MaxTokens") {
		t.Errorf("NewTokenBudget(-1 tokens) = %v, want an error naming MaxTokens", err)
	}
}

// budgetModel is the reference for RatioBudget: every first attempt kept
// with the epoch it is filed under, deposits spent oldest epoch first, and
// the reserve as a fill level in nanoseconds of refilling.
type budgetModel struct {
	ratio   int64 // millionths of a retry per first attempt
	refill  int64 // ns per reserve retry; 0: no reserve
	window  int64
	width   time.Duration
	cur     int64
	seen    bool
	pending int64 // first attempts filed before any time was seen
	first   map[int64]int64
	spent   map[int64]int64 // millionths spent from each epoch's deposits
	retries map[int64]int64
	// The reserve: its level (ns of refilling, at most window) just after
	// the last retry it paid for, at time last.
	level, last int64
	used        bool
}

func (m *budgetModel) at(now time.Time) int64 {
	e := now.UnixNano() / int64(m.width)
	if !m.seen {
		m.seen, m.cur = true, e
		m.first[e] += m.pending
		m.pending = 0
	}
	m.cur = max(m.cur, e)
	return m.cur
}

func inWindow(k, e int64) bool { return k > e-budgetBuckets && k <= e }

func (m *budgetModel) counts(e int64) (req, ret int64) {
	for k, v := range m.first {
		if inWindow(k, e) {
			req += v
		}
	}
	for k, v := range m.retries {
		if inWindow(k, e) {
			ret += v
		}
	}
	return req, ret
}

// allow decides a retry at now in epoch e, and spends it if allowed.
func (m *budgetModel) allow(now time.Time, e int64) bool {
	var epochs []int64
	var avail int64
	for k, n := range m.first {
		if inWindow(k, e) {
			epochs = append(epochs, k)
			avail += m.ratio*n - m.spent[k]
		}
	}
	if avail >= 1_000_000 {
		slices.Sort(epochs)
		need := int64(1_000_000)
		for _, k := range epochs {
			take := min(need, m.ratio*m.first[k]-m.spent[k])
			m.spent[k] += take
			need -= take
		}
		m.retries[e]++
		return true
	}
	if m.refill == 0 {
		return false
	}
	ns := now.UnixNano()
	level := m.window
	if m.used {
		level = min(m.window, m.level+ns-m.last)
	}
	if level < m.refill {
		return false
	}
	m.level, m.last, m.used = level-m.refill, ns, true
	m.retries[e]++
	return true
}

// The RatioBudget agrees with its reference model on every decision and
// count, whatever the sequence of attempts, retries and clock moves
// (including the clock going back).
func TestPropertyRatioBudgetMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := BudgetConfig{
			Ratio:               rapid.SampledFrom([]float64{0.1, 0.5, 1}).Draw(t, "ratio"),
			Window:              10 * time.Second,
			MinRetriesPerSecond: rapid.SampledFrom([]float64{-1, 0.5, 1, 4}).Draw(t, "reserve"),
		}
		b := mustBudget(t, cfg)
		m := &budgetModel{ratio: int64(cfg.Ratio * 1e6), window: int64(10 * time.Second), width: time.Second,
			first: map[int64]int64{}, spent: map[int64]int64{}, retries: map[int64]int64{}}
		if cfg.MinRetriesPerSecond > 0 {
			m.refill = int64(1e9 / cfg.MinRetriesPerSecond)
		}
		now := t0
		for i := range rapid.IntRange(1, 600).Draw(t, "steps") {
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0: // first attempts, with the time
				for range rapid.IntRange(1, 12).Draw(t, "firsts") {
					b.AttemptAt(now, true, Retryable)
					m.first[m.at(now)]++
				}
			case 1: // a first attempt on the hot path, without the time
				b.Attempt(true, Succeeded)
				if m.seen {
					m.first[m.cur]++
				} else {
					m.pending++
				}
			case 2: // retry decisions
				for range rapid.IntRange(1, 3).Draw(t, "asks") {
					got, _ := b.AllowRetryAt(now)
					e := m.at(now)
					req, ret := m.counts(e)
					if want := m.allow(now, e); got != want {
						t.Fatalf("step %d: AllowRetry = %v, model says %v (window %d firsts, %d retries)", i, got, want, req, ret)
					}
				}
			case 3: // time passes, mostly forward
				now = now.Add(time.Duration(rapid.Int64Range(-int64(time.Second), int64(4*time.Second)).Draw(t, "dt")))
			case 4:
				gotReq, gotRet := b.CountsAt(now)
				req, ret := m.counts(m.at(now))
				if gotReq != req || gotRet != ret {
					t.Fatalf("step %d: Counts = %d, %d; model %d, %d", i, gotReq, gotRet, req, ret)
				}
			}
		}
	})
}

// The reserve refills continuously and spent retries never come back: after
// an outage has spent what was saved, retries are granted as they are
// earned, evenly, with no burst when the window moves on.
func TestRatioBudgetSpendsEvenly(t *testing.T) {
	b := mustBudget(t, BudgetConfig{}) // 0.1 per first attempt, 10 retries/s of reserve
	perSecond := make([]int, 40)
	for ms := range 40_000 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		if ms%10 == 0 { // 100 first attempts per second, every one failing
			b.AttemptAt(now, true, Retryable)
		}
		for {
			if ok, _ := b.AllowRetryAt(now); !ok {
				break
			}
			perSecond[ms/1000]++
		}
	}
	// The first second spends the full reserve (100) and what the first
	// attempts earn; from then on, 10 earned plus 10 refilled per second.
	if perSecond[0] < 100 || perSecond[0] > 120 {
		t.Errorf("first second: %d retries, want the reserve of 100 and what was earned", perSecond[0])
	}
	for s := 2; s < len(perSecond); s++ {
		if perSecond[s] < 19 || perSecond[s] > 21 {
			t.Errorf("second %d: %d retries, want 20 each second (no wave): %v", s, perSecond[s], perSecond)
			break
		}
	}
}

type envelope struct {
	requests, attempts, successes int64
}

func (e envelope) amplification() float64 { return float64(e.attempts) / float64(e.requests) }
func (e envelope) success() float64       { return float64(e.successes) / float64(e.requests) }

// simulate drives a budget with calls at a steady rate in virtual time, each
// attempt failing independently with probability p, 3 attempts per call. It
// reports on the calls after the first window.
func simulate(b Budget, p float64, rate int, d time.Duration, seed uint64) envelope {
	rnd := rand.New(rand.NewPCG(seed, 11))
	interval := time.Second / time.Duration(rate)
	var env envelope
	verdict := func(failed bool) Verdict {
		if failed {
			return Retryable
		}
		return Succeeded
	}
	for i := range int(d / interval) {
		now := t0.Add(time.Duration(i) * interval)
		attempts := 1
		failed := rnd.Float64() < p
		b.AttemptAt(now, true, verdict(failed))
		for failed && attempts < 3 {
			if ok, _ := b.AllowRetryAt(now); !ok {
				break
			}
			attempts++
			failed = rnd.Float64() < p
			b.AttemptAt(now, false, verdict(failed))
		}
		if now.Sub(t0) >= DefaultBudgetWindow {
			env.requests++
			env.attempts += int64(attempts)
			if !failed {
				env.successes++
			}
		}
	}
	return env
}

// The default budget's envelope, at 1000 calls per second for a minute of
// virtual time, measured after the first 10 s window: at most 1.10 attempts
// per call in a full outage, besides the reserve's 10 retries per second (so
// 1.11 in all at this rate); at least 99.9 % success when 5 % of attempts fail
// at random and 99 % when 10 % do.
func TestDefaultBudgetEnvelope(t *testing.T) {
	const rate, d = 1000, time.Minute
	measured := d - DefaultBudgetWindow
	reservePerCall := DefaultMinRetriesPerSecond * measured.Seconds() / (rate * measured.Seconds())

	outage := simulate(mustBudget(t, BudgetConfig{}), 1, rate, d, 1)
	if a := outage.amplification() - reservePerCall; a > 1.10 {
		t.Errorf("p=1: %.4f attempts per call beyond the reserve, want <= 1.10", a)
	}
	if outage.amplification() < 1.09 {
		t.Errorf("p=1: %.4f attempts per call; the budget should allow about 1.11", outage.amplification())
	}
	t.Logf("p=1: %.4f attempts per call (%.4f of them the reserve's)", outage.amplification(), reservePerCall)

	for _, tt := range []struct{ p, min float64 }{{0.05, 0.999}, {0.10, 0.99}} {
		env := simulate(mustBudget(t, BudgetConfig{}), tt.p, rate, d, 2)
		if env.success() < tt.min {
			t.Errorf("p=%v: success %.4f, want >= %v", tt.p, env.success(), tt.min)
		}
		t.Logf("p=%v: success %.4f, %.4f attempts per call", tt.p, env.success(), env.amplification())
	}
}

// gRPC's token bucket (10 tokens, 0.1 per success) fails the envelope the
// default budget meets: at 10 % random failures it lets only about 92 % of
// calls succeed, because the bucket hovers at its threshold.
func TestTokenBudgetFallsShortAtTenPercent(t *testing.T) {
	tb, err := NewTokenBudget(TokenBudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	env := simulate(tb, 0.10, 1000, time.Minute, 3)
	t.Logf("token bucket at p=0.10: success %.4f", env.success())
	if s := env.success(); s >= 0.99 || s < 0.85 {
		t.Errorf("token bucket success %.4f at p=0.10, want about 0.92 (below 0.99)", s)
	}
	outage := simulate(mustTokenBudget(t), 1, 1000, time.Minute, 4)
	if a := outage.amplification(); a > 1.01 {
		t.Errorf("token bucket in an outage: %.4f attempts per call, want about 1", a)
	}
}

func mustTokenBudget(t *testing.T) *TokenBudget {
	tb, err := NewTokenBudget(TokenBudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestTokenBudgetSteps(t *testing.T) {
	tb := mustTokenBudget(t)
	if tb.Tokens() != 10 {
		t.Fatalf("starts with %v tokens, want 10", tb.Tokens())
	}
	for i := range 5 {
		tb.AttemptAt(t0, true, Retryable)
		ok, _ := tb.AllowRetryAt(t0)
		if want := i < 4; ok != want { // 9, 8, 7, 6 tokens > 5; 5 is not
			t.Errorf("step %d: %v tokens, AllowRetry = %v, want %v", i, tb.Tokens(), ok, want)
		}
	}
	tb.AttemptAt(t0, true, NotRetryable) // neither takes nor gives
	tb.AttemptAt(t0, true, Succeeded)
	if tb.Tokens() != 5.1 {
		t.Errorf("%v tokens, want 5.1", tb.Tokens())
	}
	if ok, _ := tb.AllowRetryAt(t0); !ok {
		t.Error("5.1 tokens of 10 refuse a retry")
	}
	for range 100 {
		tb.AttemptAt(t0, true, Succeeded)
	}
	if tb.Tokens() != 10 {
		t.Errorf("%v tokens after many successes, want the 10 maximum", tb.Tokens())
	}
}

// The same envelope through the executor, whose successful first attempts
// reach the budget only through the counter it reads: a full outage and 10 %
// random failures, 1000 calls per second for 30 s of synctest time.
func TestExecutorEnvelope(t *testing.T) {
	for _, tt := range []struct {
		p        float64
		maxAmp   float64
		minSucc  float64
		duration time.Duration
	}{
		{p: 1, maxAmp: 1.11 + 1e-3, minSucc: 0},
		{p: 0.10, maxAmp: 1.12, minSucc: 0.99},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(0)})
			p := sluice.NewPipeline(r)
			rnd := rand.New(rand.NewPCG(5, uint64(tt.p*100)))
			fn := func(context.Context) error {
				if rnd.Float64() < tt.p {
					return errFlaky
				}
				return nil
			}
			ctx := context.Background()
			var before Stats
			for i := range 30_000 {
				if i == 10_000 {
					before = r.Stats()
				}
				err := p.Do(ctx, fn)
				if err != nil && !errors.Is(err, ErrExhausted) && !errors.Is(err, ErrBudgetExhausted) {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			after := r.Stats()
			calls := after.Calls - before.Calls
			amp := float64(after.Attempts-before.Attempts) / float64(calls)
			succ := float64(after.Successes-before.Successes) / float64(calls)
			t.Logf("p=%v: %.4f attempts per call, success %.4f", tt.p, amp, succ)
			if amp > tt.maxAmp || succ < tt.minSucc {
				t.Errorf("p=%v: %.4f attempts per call (max %v), success %.4f (min %v)", tt.p, amp, tt.maxAmp, succ, tt.minSucc)
			}
		})
	}
}

func TestBudgetForgetsDroppedRetry(t *testing.T) {
	b := mustBudget(t, BudgetConfig{})
	func() {
		r := mustNew(t, Config{Budget: b})
		_ = sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error { return nil })
	}()
	if req, _ := b.CountsAt(t0); req != 1 {
		t.Fatalf("budget counted %d first attempts, want 1", req)
	}
	for range 10 {
		runtime.GC()
		b.CountsAt(t0)
		b.mu.Lock()
		n := len(b.sources)
		b.mu.Unlock()
		if n == 0 {
			return
		}
	}
	t.Error("the budget still reads the counter of a Retry that is gone")
}

func TestExecutorWithTokenBudget(t *testing.T) {
	tb := mustTokenBudget(t)
	r := mustNew(t, Config{MaxAttempts: 2, Backoff: Constant(0), Budget: tb})
	p := sluice.NewPipeline(r)
	ctx := context.Background()
	down := func(context.Context) error { return errFlaky }
	// Each failing call takes a token per failed attempt: 10 → 9 → 8, then
	// 8 → 7 → 6.
	for i := range 2 {
		if err := p.Do(ctx, down); !errors.Is(err, ErrExhausted) {
			t.Fatalf("call %d: %v, want ErrExhausted", i, err)
		}
	}
	// The third call's failure leaves 5, not more than half of 10: refused.
	if err := p.Do(ctx, down); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("third call: %v, want ErrBudgetExhausted", err)
	}
	// Successes, even on the hot path, refill the bucket.
	for range 30 {
		_ = p.Do(ctx, func(context.Context) error { return nil })
	}
	if got := tb.Tokens(); got < 7.99 || got > 8.01 {
		t.Errorf("%v tokens after 30 successes, want 5 + 30×0.1 = 8", got)
	}
}
