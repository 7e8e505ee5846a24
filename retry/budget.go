package retry

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/sluice-go/sluice/internal/stripe"
)

// Verdict is the outcome of one attempt as a Budget sees it.
type Verdict uint8

// The verdicts.
const (
	// Succeeded: the attempt succeeded.
	Succeeded Verdict = iota
	// Retryable: the attempt failed in a way the policy retries (whether or
	// not a retry is then allowed).
	Retryable
	// NotRetryable: the attempt failed in a way that is not retried, or the
	// caller gave up on it.
	NotRetryable
)

var verdictNames = [...]string{"succeeded", "retryable", "not-retryable"}

// String returns the verdict's name.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Budget limits retries across calls: it is told of every attempt and asked
// before every retry. One Budget may be shared by many Retry policies (and
// should be, by all the policies that call one dependency). Implementations
// must be safe for concurrent use and cheap in Attempt, which every
// untimed successful call reaches.
type Budget interface {
	// Attempt records the end of one attempt without its time: first is
	// true for a call's first attempt. The executor calls it on its hot
	// path, where it reads no clock; the budget files the attempt with the
	// latest time it has seen.
	Attempt(first bool, v Verdict)
	// AttemptAt records the end of one attempt at now, as Attempt does, and
	// may move the budget's notion of the time forward to now.
	AttemptAt(now time.Time, first bool, v Verdict)
	// AllowRetryAt reports whether a retry may start at now, and counts it if
	// so. When it may not, wait estimates how long until one may.
	AllowRetryAt(now time.Time) (ok bool, wait time.Duration)
}

// NoBudget is a Budget that allows every retry: Config{Budget: NoBudget{}}
// turns budgeting off.
type NoBudget struct{}

// Attempt does nothing.
func (NoBudget) Attempt(bool, Verdict) {}

// AttemptAt does nothing.
func (NoBudget) AttemptAt(time.Time, bool, Verdict) {}

// AllowRetryAt always allows.
func (NoBudget) AllowRetryAt(time.Time) (bool, time.Duration) { return true, 0 }

// Budget defaults.
const (
	DefaultBudgetRatio         = 0.1
	DefaultBudgetWindow        = 10 * time.Second
	DefaultMinRetriesPerSecond = 10
	budgetBuckets              = 10
)

// BudgetConfig configures a RatioBudget. The zero BudgetConfig is the default
// budget: each first attempt earns a tenth of a retry, valid for 10 s, on top
// of a reserve that refills at 10 retries per second up to 100.
type BudgetConfig struct {
	// Ratio is the share of a retry that each first attempt earns. If zero,
	// 0.1. Negative is an error; ratios above 1000 count as 1000.
	Ratio float64
	// Window is how long what a first attempt earned stays available. If
	// zero, 10 s. First attempts and retries are kept in 10 buckets, so
	// earnings expire a tenth of the window at a time.
	Window time.Duration
	// MinRetriesPerSecond is the reserve that lets low-traffic callers retry
	// at all: it refills continuously at this rate and holds up to
	// MinRetriesPerSecond × Window retries. If zero, 10 (Finagle's
	// default); negative means no reserve.
	MinRetriesPerSecond float64
}

// RatioBudget is the per-client retry budget of the Google SRE book with
// Finagle's reserve, in a form that spends rather than counts. Each first
// attempt deposits Ratio of a retry, which stays valid for Window; a retry
// spends one whole retry from these deposits, oldest first, or, when they
// hold less than one, from the reserve, a token bucket that refills
// continuously at MinRetriesPerSecond up to MinRetriesPerSecond × Window.
//
// During a full outage it therefore bounds the load on the dependency to
// about (1 + Ratio) times the offered load plus MinRetriesPerSecond,
// whatever MaxAttempts says, once it has spent what was saved before the
// outage (at most one window's deposits and a full reserve). Spending is
// permanent: a retry's share does not come back when the retry ages, as it
// would if retries were counted in a sliding window; so after the saved
// allowance is spent, retries are granted as fast as they are earned,
// evenly, instead of in a burst each time a window's worth of counted
// retries leaves it. The price is that the window in which an outage
// begins may see up to twice the steady allowance (what was saved, then
// what is earned).
//
// It is safe for concurrent use. A Retry using it counts its successful first
// attempts in a striped counter of its own, which the budget reads when it
// needs its window (to decide a retry, or when the clock moves to a new
// bucket), so the hot path of a call touches no shared state at all. The
// window's buckets move with the times the budget is given: by failed
// attempts, retry decisions and the sample of successful calls the executor
// times (Config.SampleEvery); first attempts are filed in the bucket of the
// latest such time. At rates too low for that to be precise the reserve
// dominates the allowance anyway.
type RatioBudget struct {
	ratio  int64 // what a first attempt deposits, in millionths of a retry
	width  int64 // bucket width in ns
	window int64 // ns
	refill int64 // ns for the reserve to refill one retry; 0 means no reserve

	curEpoch atomic.Int64   // epoch of the current bucket, for a lock-free check
	direct   stripe.Counter // first attempts reported through Attempt or AttemptAt

	mu      sync.Mutex
	buckets [budgetBuckets]budgetBucket
	pos     int   // index of the current bucket
	spent   int64 // millionths of a retry spent from the deposits still in the window
	full    int64 // ns: when the reserve is (or was last) full; noEpoch: always full so far
	direct0 int64
	sources []source
}

// oneRetry is a retry in the unit of RatioBudget's deposits.
const oneRetry = 1_000_000

type budgetBucket struct {
	requests, retries int64
	epoch             int64
}

// source is the first-attempt counter of a Retry using the budget, held
// weakly so that a Retry dropped by its owner does not stay alive here.
type source struct {
	c    weak.Pointer[stripe.Counter]
	last int64
}

const noEpoch = math.MinInt64

// NewBudget returns a RatioBudget, or an error naming a field of cfg that is
// out of range.
func NewBudget(cfg BudgetConfig) (*RatioBudget, error) {
	switch {
	case !(cfg.Ratio >= 0) || math.IsInf(cfg.Ratio, 0):
		return nil, fmt.Errorf("retry: BudgetConfig.Ratio must be a finite number >= 0, got %v", cfg.Ratio)
	case cfg.Window < 0:
		return nil, fmt.Errorf("retry: BudgetConfig.Window must be >= 0, got %v", cfg.Window)
	case math.IsNaN(cfg.MinRetriesPerSecond) || math.IsInf(cfg.MinRetriesPerSecond, 0):
		return nil, fmt.Errorf("retry: BudgetConfig.MinRetriesPerSecond must be finite, got %v", cfg.MinRetriesPerSecond)
	}
	cfg.Ratio = cmp.Or(cfg.Ratio, DefaultBudgetRatio)
	cfg.Window = cmp.Or(cfg.Window, DefaultBudgetWindow)
	cfg.MinRetriesPerSecond = cmp.Or(cfg.MinRetriesPerSecond, DefaultMinRetriesPerSecond)
	b := &RatioBudget{
		ratio:  int64(math.Round(min(cfg.Ratio, 1000) * oneRetry)),
		width:  max(int64(cfg.Window)/budgetBuckets, 1),
		window: int64(cfg.Window),
		full:   noEpoch,
	}
	if rps := cfg.MinRetriesPerSecond; rps > 0 {
		// At least 1 ns; a reserve refilling slower than one retry per
		// window never holds one.
		b.refill = int64(min(max(math.Round(1e9/rps), 1), math.MaxInt64/4))
	}
	for i := range b.buckets {
		b.buckets[i].epoch = noEpoch
	}
	b.curEpoch.Store(noEpoch)
	return b, nil
}

// Attempt counts a first attempt, in the bucket of the latest time the
// budget has seen; other attempts are not counted here (a retry was counted
// when AllowRetryAt granted it). It takes no lock.
func (b *RatioBudget) Attempt(first bool, _ Verdict) {
	if first {
		b.direct.Inc()
	}
}

// AttemptAt is Attempt at now: the window first moves forward to now.
func (b *RatioBudget) AttemptAt(now time.Time, first bool, v Verdict) {
	if !first {
		return
	}
	b.tick(now)
	b.Attempt(first, v)
}

// tick tells the budget the time without recording anything, moving its
// window forward; the executor calls it for the calls it times.
func (b *RatioBudget) tick(now time.Time) {
	e := b.epoch(now)
	if e <= b.curEpoch.Load() {
		return
	}
	b.mu.Lock()
	b.advanceLocked(e)
	b.mu.Unlock()
}

// AllowRetryAt grants a retry when the deposits of the window's first
// attempts hold one whole retry not yet spent, or else the reserve holds
// one at now, and spends it. A refusal's wait is the time until the reserve
// holds a retry again or, with no reserve, until the current bucket ends.
func (b *RatioBudget) AllowRetryAt(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(b.epoch(now))
	req, _ := b.countsLocked()
	if b.ratio*req-b.spent >= oneRetry {
		b.spent += oneRetry
		b.buckets[b.pos].retries++
		return true, 0
	}
	ns := now.UnixNano()
	if b.refill > 0 {
		// The reserve as the time it will be full: it holds
		// (window - (full - now)) / refill retries.
		next := max(b.full, ns) + b.refill
		if next-ns <= b.window {
			b.full = next
			b.buckets[b.pos].retries++
			return true, 0
		}
		return false, time.Duration(next - ns - b.window)
	}
	wait := time.Duration(b.width - ns%b.width)
	if wait <= 0 || wait > time.Duration(b.width) {
		wait = time.Duration(b.width)
	}
	return false, wait
}

// CountsAt returns the first attempts and the retries counted in the window as
// of now.
func (b *RatioBudget) CountsAt(now time.Time) (firstAttempts, retries int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(b.epoch(now))
	return b.countsLocked()
}

// attach makes the budget read c, a Retry's count of successful first
// attempts, which that Retry then does not report through Attempt or
// AttemptAt.
func (b *RatioBudget) attach(c *stripe.Counter) {
	w := weak.Make(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sources {
		if s.c == w {
			return
		}
	}
	b.sources = append(b.sources, source{c: w, last: c.Load()})
}

// detach stops reading c, first filing what it counted.
func (b *RatioBudget) detach(c *stripe.Counter) {
	w := weak.Make(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pullLocked()
	b.sources = slices.DeleteFunc(b.sources, func(s source) bool { return s.c == w })
}

func (b *RatioBudget) epoch(now time.Time) int64 {
	ns := now.UnixNano()
	e := ns / b.width
	if ns < 0 && ns%b.width != 0 {
		e--
	}
	return e
}

// pullLocked files the first attempts counted since the last pull in the
// current bucket, and forgets sources whose Retry is gone.
func (b *RatioBudget) pullLocked() {
	n := b.direct.Load()
	add := n - b.direct0
	b.direct0 = n
	live := b.sources[:0]
	for _, s := range b.sources {
		c := s.c.Value()
		if c == nil {
			continue
		}
		v := c.Load()
		add += v - s.last
		s.last = v
		live = append(live, s)
	}
	clear(b.sources[len(live):])
	b.sources = live
	b.buckets[b.pos].requests += add
}

// advanceLocked files pending first attempts and moves the current bucket
// forward to epoch e, emptying the buckets that leave the window. The
// deposits of a bucket that leaves expire: as retries spend the oldest
// first, what was spent of it is forgotten with it, and what was not is
// lost. Time that runs backwards leaves it in place.
func (b *RatioBudget) advanceLocked(e int64) {
	b.pullLocked()
	cur := b.curEpoch.Load()
	if e <= cur {
		return
	}
	if cur == noEpoch {
		// The first time seen: what was filed so far belongs to it.
		b.buckets[b.pos].epoch = e
		b.curEpoch.Store(e)
		return
	}
	steps := min(e-cur, budgetBuckets)
	for i := int64(1); i <= steps; i++ {
		b.pos = (b.pos + 1) % budgetBuckets
		b.spent -= min(b.ratio*b.buckets[b.pos].requests, b.spent)
		b.buckets[b.pos] = budgetBucket{epoch: e - steps + i}
	}
	b.curEpoch.Store(e)
}

func (b *RatioBudget) countsLocked() (req, ret int64) {
	for i := range b.buckets {
		req += b.buckets[i].requests
		ret += b.buckets[i].retries
	}
	return req, ret
}

// Token budget defaults, gRPC's retry throttling values.
const (
	DefaultMaxTokens  = 10
	DefaultTokenRatio = 0.1
)

// TokenBudgetConfig configures a TokenBudget. The zero value is gRPC's
// example throttling policy: 10 tokens, 0.1 per success.
type TokenBudgetConfig struct {
	// MaxTokens is the bucket's size; retries are allowed while more than
	// half of it is full. If zero, 10.
	MaxTokens float64
	// TokenRatio is the tokens a successful attempt puts back; a retryable
	// failure takes one. If zero, 0.1.
	TokenRatio float64
}

// TokenBudget is gRPC's retry throttling: a bucket of MaxTokens tokens, one
// taken by each retryable failure, TokenRatio returned by each success;
// retries are allowed while more than half the bucket is full. It is offered
// as an alternative to the default RatioBudget, which it undercuts when
// failures are random and frequent: at 10 % independent failures and 3
// attempts it lets about 92 % of calls succeed, where the ratio budget keeps
// above 99 % (see the package tests).
//
// It is safe for concurrent use. A success when the bucket is full only
// reads the shared counter; other attempts update it with a CAS.
type TokenBudget struct {
	max, ratio int64 // in thousandths of a token
	tokens     atomic.Int64
}

// NewTokenBudget returns a TokenBudget, or an error naming a field of cfg
// that is out of range.
func NewTokenBudget(cfg TokenBudgetConfig) (*TokenBudget, error) {
	if !(cfg.MaxTokens >= 0) || cfg.MaxTokens > 1e12 {
		return nil, fmt.Errorf("retry: TokenBudgetConfig.MaxTokens must be within [0, 1e12], got %v", cfg.MaxTokens)
	}
	if !(cfg.TokenRatio >= 0) || cfg.TokenRatio > 1e12 {
		return nil, fmt.Errorf("retry: TokenBudgetConfig.TokenRatio must be within [0, 1e12], got %v", cfg.TokenRatio)
	}
	cfg.MaxTokens = cmp.Or(cfg.MaxTokens, DefaultMaxTokens)
	cfg.TokenRatio = cmp.Or(cfg.TokenRatio, DefaultTokenRatio)
	t := &TokenBudget{max: int64(cfg.MaxTokens * 1000), ratio: int64(cfg.TokenRatio * 1000)}
	t.tokens.Store(t.max)
	return t, nil
}

// AttemptAt is Attempt: the bucket does not depend on the time.
func (t *TokenBudget) AttemptAt(_ time.Time, first bool, v Verdict) { t.Attempt(first, v) }

// Attempt takes a token for a retryable failure and returns TokenRatio of
// one for a success.
func (t *TokenBudget) Attempt(_ bool, v Verdict) {
	switch v {
	case Succeeded:
		for {
			cur := t.tokens.Load()
			if cur >= t.max {
				return
			}
			if t.tokens.CompareAndSwap(cur, min(cur+t.ratio, t.max)) {
				return
			}
		}
	case Retryable:
		for {
			cur := t.tokens.Load()
			if cur <= 0 {
				return
			}
			if t.tokens.CompareAndSwap(cur, max(cur-1000, 0)) {
				return
			}
		}
	}
}

// AllowRetryAt allows a retry while more than half the bucket is full. It
// cannot say when that will be (only successes refill it), so a refusal's
// wait is zero.
func (t *TokenBudget) AllowRetryAt(time.Time) (bool, time.Duration) {
	return t.tokens.Load()*2 > t.max, 0
}

// Tokens returns the tokens in the bucket.
func (t *TokenBudget) Tokens() float64 { return float64(t.tokens.Load()) / 1000 }
