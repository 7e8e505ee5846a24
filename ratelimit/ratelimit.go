package ratelimit

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// Config configures a TokenBucket. The zero Config is valid: a limiter
// that admits everything and only counts.
type Config struct {
	// Name identifies the limiter in errors, statistics and the registry.
	// If empty, the limiter is anonymous.
	Name string

	// Rate is the number of tokens added to the bucket per Per. It may be
	// fractional (0.5 per second is one every two seconds). The emission
	// interval Per/Rate is rounded to the nanosecond and must be at least
	// one nanosecond. If zero (or +Inf), the limiter is unlimited: every
	// call is admitted and counted.
	Rate float64

	// Per is the period Rate is counted over. If zero, one second.
	Per time.Duration

	// Burst is the capacity of the bucket: how many calls an idle bursty
	// limiter admits back to back, and how many single-token callers a
	// smooth limiter lets queue (see the package comment). A request for
	// more than Burst tokens is never admitted. If zero, one Per's worth of
	// tokens: Rate rounded up, at least 1.
	Burst int

	// Smooth spaces admitted calls at least one emission interval apart
	// instead of letting a burst through at once. If false, the limiter is
	// bursty.
	Smooth bool

	// MaxWait is how long Execute (and Take) may wait for tokens. If zero,
	// they never wait: a call that finds no token is rejected at once with
	// ErrLimited. If positive, a call waits up to MaxWait; if negative, as
	// long as its context allows. Wait honours a positive MaxWait and
	// otherwise waits as long as its context allows. No wait ever runs past
	// the context's deadline: a call whose wait would is rejected at once,
	// without sleeping.
	MaxWait time.Duration

	// Clock is the source of time. If nil, the system clock.
	Clock sluice.Clock

	// OnReject, if not nil, is called after every rejection (by Allow,
	// AllowAt, Wait, Take or Execute) with the limiter's name and how long
	// until the tokens are there. It runs on the rejected caller's
	// goroutine, under no lock, and must be quick.
	OnReject func(name string, retryAfter time.Duration)
}

// params is the immutable, validated form of a Config. A TokenBucket holds
// the current one behind an atomic pointer so that Update can replace it
// while Allow reads it without a lock.
type params struct {
	cfg      Config // with defaults applied
	interval int64  // emission interval in ns; 0 means unlimited
	burst    int64
	limit    int64 // burst·interval: the most TAT may run ahead of now
	smooth   bool
}

// maxSpan bounds Burst·interval so that TAT arithmetic never overflows.
const maxSpan = 1 << 61 // about 73 years

// Validate reports whether cfg is a valid Config: nil, or an error naming
// the first invalid field. New and Update return the same error, so a
// configuration can be checked without building a limiter.
func (cfg Config) Validate() error {
	_, err := cfg.params()
	return err
}

// params validates cfg and derives its immutable form. Validate, New and
// Update all go through it, so the three never disagree.
func (cfg Config) params() (*params, error) {
	switch {
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0:
		return nil, fmt.Errorf("ratelimit: Config.Rate must be >= 0, got %v", cfg.Rate)
	case cfg.Per < 0:
		return nil, fmt.Errorf("ratelimit: Config.Per must be >= 0, got %v", cfg.Per)
	case cfg.Burst < 0:
		return nil, fmt.Errorf("ratelimit: Config.Burst must be >= 0, got %d", cfg.Burst)
	}
	cfg.Per = cmp.Or(cfg.Per, time.Second)
	p := &params{smooth: cfg.Smooth}
	if cfg.Rate == 0 || math.IsInf(cfg.Rate, 1) {
		cfg.Burst = cmp.Or(cfg.Burst, 1)
		cfg.Rate = 0
		p.cfg, p.burst = cfg, int64(cfg.Burst)
		return p, nil
	}
	iv := math.Round(float64(cfg.Per) / cfg.Rate)
	if iv < 1 {
		return nil, fmt.Errorf("ratelimit: Config.Rate must be at most one token per nanosecond, got %v per %v", cfg.Rate, cfg.Per)
	}
	cfg.Burst = cmp.Or(cfg.Burst, int(min(math.Max(1, math.Ceil(cfg.Rate)), math.MaxInt32)))
	if iv*float64(cfg.Burst) >= maxSpan {
		return nil, fmt.Errorf("ratelimit: Config.Burst × Per/Rate must be under 73 years, got %d × %v", cfg.Burst, time.Duration(iv))
	}
	p.cfg = cfg
	p.interval = int64(iv)
	p.burst = int64(cfg.Burst)
	p.limit = p.interval * p.burst
	return p, nil
}

// take decides a request for n (1 ≤ n) tokens at now when the bucket's TAT
// is tat, accepting a wait of at most maxWait. It returns the new TAT, the
// wait before the caller may proceed, and whether the request is admitted.
// It is the one place where bursty and smooth differ.
func (p *params) take(tat, now, n, maxWait int64) (newTat, wait int64, ok bool) {
	if n > p.burst {
		return tat, 0, false
	}
	base := max(tat, now)
	newTat = base + n*p.interval
	if p.smooth {
		// The slot starts at base; Burst bounds how far ahead it may be.
		wait = base - now
		return newTat, wait, wait <= maxWait && newTat-now <= p.limit
	}
	wait = max(newTat-now-p.limit, 0)
	return newTat, wait, wait <= maxWait
}

// retryAfter is how long, from now, until a request for n tokens would be
// admitted without waiting, were nothing else to take tokens meanwhile;
// math.MaxInt64 when it never would (n > Burst).
func (p *params) retryAfter(tat, now, n int64) int64 {
	if p.interval == 0 {
		return 0
	}
	if n > p.burst {
		return math.MaxInt64
	}
	d := tat - now
	if !p.smooth {
		d -= (p.burst - n) * p.interval
	}
	return max(d, 0)
}

// tokens is how many tokens the bucket holds at now: negative when waiting
// callers hold tokens that have not refilled yet.
func (p *params) tokens(tat, now int64) float64 {
	if p.interval == 0 {
		return float64(p.burst)
	}
	return float64(p.burst) - float64(max(tat-now, 0))/float64(p.interval)
}

// Sentinel values of the TAT word.
const (
	// updating marks the word while Update converts it; readers yield
	// until it is gone.
	updating = math.MinInt64
	// fullTAT is the TAT of a new limiter: far enough in the past that the
	// bucket is full at any time a caller may pass, even before the epoch.
	fullTAT = math.MinInt64 / 4
)

// TokenBucket is an in-process token-bucket rate limiter, kept as GCRA on
// one atomic word (see the package comment). Most callers want Execute (as a
// pipeline policy) or Allow; Wait sleeps for a token; ReserveAt and AllowAt
// take the time as an argument for callers and tests that drive their own
// time. All methods are safe for concurrent use. The zero TokenBucket is
// not usable: create one with New.
type TokenBucket struct {
	p     atomic.Pointer[params]
	clock sluice.Clock // for Now; nil means the system clock, read via time.Since
	sleep sluice.Clock // for timers; never nil
	epoch time.Time    // TAT and every now are nanoseconds since epoch
	name  string
	err   error // the allocation-free rejection of a one-token call
	mu    sync.Mutex

	// tat has a cache line of its own, shared only with allowed: every
	// admitted call writes the line, and sharing it with the read-mostly
	// fields above would make the other cores miss on those too. allowed is
	// here on purpose: right after a successful CAS the line is already
	// this core's, so counting costs an uncontended add and no second line
	// moves between cores (a striped counter costs more here, for its
	// random cell choice).
	_       [64]byte
	tat     atomic.Int64
	allowed atomic.Int64
	_       [48]byte

	rejected stripe.Counter // striped: a rejection only reads tat, keep it that way
	waited   atomic.Int64   // slow path only
	waitNs   atomic.Int64
}

var (
	_ sluice.Policy = (*TokenBucket)(nil)
	_ Limiter       = (*TokenBucket)(nil)
)

// New returns a TokenBucket for cfg, full, or an error naming the first
// field of cfg that is invalid.
func New(cfg Config) (*TokenBucket, error) {
	p, err := cfg.params()
	if err != nil {
		return nil, err
	}
	l := &TokenBucket{name: cfg.Name, sleep: sluice.ClockOr(cfg.Clock)}
	if cfg.Clock != nil && cfg.Clock != sluice.SystemClock() {
		l.clock = cfg.Clock
	}
	// With the system clock the epoch carries a monotonic reading, so that
	// time.Since reads one clock instead of two: it is the bulk of Allow.
	l.epoch = l.sleep.Now()
	l.err = limitedError{l}
	l.p.Store(p)
	l.tat.Store(fullTAT)
	return l, nil
}

// MustNew is New for configurations known to be valid; it panics on an
// invalid one.
func MustNew(cfg Config) *TokenBucket {
	l, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return l
}

// Name returns the limiter's name.
func (l *TokenBucket) Name() string { return l.name }

// Config returns the configuration in force, with defaults applied.
func (l *TokenBucket) Config() Config { return l.p.Load().cfg }

// now is the current time in nanoseconds since the epoch.
func (l *TokenBucket) now() int64 {
	if l.clock == nil {
		return int64(time.Since(l.epoch))
	}
	return int64(l.clock.Now().Sub(l.epoch))
}

// at converts a caller's time to nanoseconds since the epoch. Times without
// a monotonic reading (time.Date, a FakeClock) are compared by wall clock;
// do not mix them with the system clock's readings on one limiter.
func (l *TokenBucket) at(t time.Time) int64 { return int64(t.Sub(l.epoch)) }

// load returns the TAT and the params to judge it by, waiting out an
// Update in progress. The TAT is loaded first, so a caller never judges a
// TAT kept in the old units by the new params unless the word still holds
// that very value when its CAS lands; and a caller that judged by the old
// params and still wins its CAS after an Update (the word came back to the
// same value) is a call decided just before the Update.
func (l *TokenBucket) load() (int64, *params) {
	for {
		tat := l.tat.Load()
		if tat != updating {
			return tat, l.p.Load()
		}
		runtime.Gosched()
	}
}

// Allow reports whether one call may run now, taking its token if so. It is
// shorthand for AllowAt(now, 1) on the limiter's clock, and does not wait:
// a smooth limiter admits only a call whose slot has come.
func (l *TokenBucket) Allow() bool { return l.allow(l.now(), 1) }

// AllowAt reports whether n tokens may be taken at now, and takes them if
// so. A request for more than Burst tokens is always refused; n ≤ 0 is
// admitted and takes nothing. now should come from the limiter's clock (or
// from time.Now for the system clock); times may arrive slightly out of
// order from concurrent callers, which only makes the limit stricter.
func (l *TokenBucket) AllowAt(now time.Time, n int) bool {
	if n <= 0 {
		return true
	}
	return l.allow(l.at(now), int64(n))
}

func (l *TokenBucket) allow(now, n int64) bool {
	for {
		tat, p := l.load()
		if p.interval == 0 {
			l.allowed.Add(1)
			return true
		}
		newTat, _, ok := p.take(tat, now, n, 0)
		if !ok {
			l.rejectedAt(p, tat, now, n)
			return false
		}
		if l.tat.CompareAndSwap(tat, newTat) {
			l.allowed.Add(1)
			return true
		}
	}
}

// rejectedAt counts a rejection and tells the listener.
func (l *TokenBucket) rejectedAt(p *params, tat, now, n int64) {
	l.rejected.Inc()
	if f := p.cfg.OnReject; f != nil {
		f(l.name, time.Duration(p.retryAfter(tat, now, n)))
	}
}

// retryAfter is how long from now until n tokens are there.
func (l *TokenBucket) retryAfter(n int64) time.Duration {
	tat, p := l.load()
	return time.Duration(p.retryAfter(tat, l.now(), n))
}

// Execute runs next if a token is available, waiting for one as
// Config.MaxWait allows. A refused call gets an error matching ErrLimited
// and sluice.ErrRejected, with RetryAfter; a wait cut short by ctx returns
// context.Cause(ctx). Neither runs next. On the happy path Execute allocates
// nothing and takes no lock; a rejection allocates nothing either.
func (l *TokenBucket) Execute(ctx context.Context, next sluice.Next) error {
	now := l.now()
	mw := l.p.Load().cfg.MaxWait
	if mw == 0 {
		if !l.allow(now, 1) {
			return l.err
		}
		return next.Run(ctx)
	}
	if _, err := l.wait(ctx, now, 1, mw); err != nil {
		return err
	}
	return next.Run(ctx)
}

// Wait blocks until a token is available and takes it. The wait is bounded
// by ctx's deadline and by a positive Config.MaxWait; when the wait needed
// would exceed either, Wait fails at once with an error matching
// ErrLimited. If ctx ends while Wait sleeps, it gives its token back and
// returns context.Cause(ctx). Wait sleeps on the limiter's clock.
func (l *TokenBucket) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN is Wait for n tokens. A request for more than Burst tokens fails at
// once with an error that does not match ErrLimited: no wait would help.
func (l *TokenBucket) WaitN(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	mw := l.p.Load().cfg.MaxWait
	if mw <= 0 {
		mw = -1
	}
	_, err := l.wait(ctx, l.now(), int64(n), mw)
	return err
}

// wait takes n tokens at now, sleeping for them up to maxWait (negative: no
// bound) and never past ctx's deadline. It returns how long it slept.
func (l *TokenBucket) wait(ctx context.Context, now, n int64, maxWait time.Duration) (time.Duration, error) {
	bound := int64(math.MaxInt64)
	if maxWait >= 0 {
		bound = int64(maxWait)
	}
	if dl, ok := ctx.Deadline(); ok {
		// A wait that ends at the deadline leaves the call no time to run.
		bound = max(min(bound, int64(time.Until(dl))-1), 0)
	}
	r, tat, p := l.reserve(now, n, bound)
	if !r.ok {
		if p.interval != 0 && n > p.burst {
			return 0, fmt.Errorf("ratelimit: %s%d tokens exceed Config.Burst %d", l.label(), n, p.burst)
		}
		l.rejectedAt(p, tat, now, n)
		if n == 1 {
			return 0, l.err
		}
		return 0, &retryError{name: l.name, after: time.Duration(p.retryAfter(tat, now, n))}
	}
	if r.wait == 0 {
		l.allowed.Add(1)
		return 0, nil
	}
	d := time.Duration(r.wait)
	if err := sluice.Sleep(ctx, l.sleep, d); err != nil {
		r.cancelAt(l.now())
		return 0, err
	}
	l.allowed.Add(1)
	l.waited.Add(1)
	l.waitNs.Add(int64(d))
	return d, nil
}

// label is the limiter's name formatted for an error message.
func (l *TokenBucket) label() string {
	if l.name == "" {
		return ""
	}
	return fmt.Sprintf("%q: ", l.name)
}

// ReserveAt takes n tokens at now for a call that will wait for them, however
// long that is, and returns the Reservation that says how long (Delay) and
// can give the tokens back (Cancel). It is not OK when n exceeds Burst, or
// when a smooth limiter's queue is full. ReserveAt is the building block of
// Wait; its outcomes are not counted in Stats.
func (l *TokenBucket) ReserveAt(now time.Time, n int) Reservation {
	if n <= 0 {
		return Reservation{ok: true}
	}
	r, _, _ := l.reserve(l.at(now), int64(n), math.MaxInt64)
	return r
}

// reserve takes n tokens at now if the wait is at most maxWait. When it
// cannot, it also returns the TAT and params it judged by.
func (l *TokenBucket) reserve(now, n, maxWait int64) (Reservation, int64, *params) {
	for {
		tat, p := l.load()
		if p.interval == 0 {
			return Reservation{ok: true}, tat, p
		}
		newTat, wait, ok := p.take(tat, now, n, maxWait)
		if !ok {
			return Reservation{l: l, p: p, n: n, wait: p.retryAfter(tat, now, n)}, tat, p
		}
		if l.tat.CompareAndSwap(tat, newTat) {
			return Reservation{l: l, p: p, ok: true, n: n, base: max(tat, now), end: newTat, act: now + wait, wait: wait}, tat, p
		}
	}
}

// Update replaces the limiter's Rate, Per, Burst, Smooth, MaxWait and
// OnReject with those of cfg, keeping its state: the tokens in the bucket
// stay, capped at the new Burst, and tokens owed to waiting callers stay
// owed. cfg.Name and cfg.Clock are ignored; the limiter keeps its own.
// Calls that race with Update are judged by either the old or the new
// configuration. On an invalid cfg Update returns the error New would and
// changes nothing.
func (l *TokenBucket) Update(cfg Config) error {
	cfg.Name, cfg.Clock = l.name, l.p.Load().cfg.Clock
	np, err := cfg.params()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var tat int64
	for {
		tat = l.tat.Load()
		if tat != updating && l.tat.CompareAndSwap(tat, updating) {
			break
		}
	}
	op := l.p.Load()
	now := l.now()
	l.p.Store(np)
	l.tat.Store(convert(op, np, tat, now))
	return nil
}

// convert re-expresses a TAT kept under op in the units of np, keeping the
// number of tokens (capped at np's Burst) and any debt.
func convert(op, np *params, tat, now int64) int64 {
	if np.interval == 0 {
		return tat
	}
	if op.interval == 0 {
		return fullTAT
	}
	missing := float64(max(tat-now, 0)) / float64(op.interval) // tokens short of a full bucket
	missing = max(missing-float64(op.burst-np.burst), 0)
	return now + int64(math.Round(missing*float64(np.interval)))
}
