package sluiceredis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
)

// ErrUnavailable is matched (errors.Is) by the error a Redis-backed
// component returns when Redis did not answer in time or failed; it wraps
// the cause.
var ErrUnavailable = errors.New("sluiceredis: redis unavailable")

// FailMode is what a Limiter does while Redis is unreachable.
type FailMode int

const (
	// FailError returns an error matching ErrUnavailable: the caller
	// decides (a pipeline policy fails the call).
	FailError FailMode = iota
	// FailOpen decides with a local ratelimit.TokenBucket holding
	// LimiterConfig.FallbackShare of the global rate and burst: the fleet
	// keeps a bound (the sum of the instances' shares) while Redis is away.
	FailOpen
	// FailClosed refuses every call (Allowed false, RetryAfter the
	// RetryInterval) until Redis answers again.
	FailClosed
)

// String returns "error", "open" or "closed".
func (m FailMode) String() string {
	switch m {
	case FailError:
		return "error"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailMode(%d)", int(m))
}

// LimiterKey is the Redis key of the limit of route, and of one tenant (a
// client or API key) within it when tenant is not empty. The route is the
// hash tag, so that all of a route's keys live on one Cluster slot.
func LimiterKey(route, tenant string) string {
	if tenant == "" {
		return "sluice:{" + route + "}:rl"
	}
	return "sluice:{" + route + "}:rl:" + tenant
}

// LimiterConfig configures a Limiter. Rate, Per, Burst, Smooth and MaxWait
// mean what they mean in ratelimit.Config, for the whole fleet.
type LimiterConfig struct {
	// Client is the Redis client; it must honour context deadlines (see
	// the package comment). Required.
	Client redis.UniversalClient

	// Key is the Redis key holding the limit's state, usually
	// LimiterKey(route, tenant). Every instance that shares the limit uses
	// the same Key and the same Rate, Per, Burst and Smooth. Required.
	Key string

	// Name identifies the limiter in errors.
	Name string

	// Rate, Per, Burst and Smooth shape the limit as in ratelimit.Config:
	// Rate tokens per Per (default one second), a bucket of Burst tokens
	// (default Rate rounded up), bursty or smooth. A Rate of zero admits
	// everything without asking Redis.
	Rate   float64
	Per    time.Duration
	Burst  int
	Smooth bool

	// MaxWait is how long Take may wait for tokens: zero never waits,
	// negative waits as long as the context allows.
	MaxWait time.Duration

	// Timeout bounds each round trip to Redis. If zero, 50ms.
	Timeout time.Duration

	// OnFailure is what Take does when Redis fails or does not answer
	// within Timeout. The zero value is FailError.
	OnFailure FailMode

	// FallbackShare is the share (0 < share ≤ 1) of Rate and Burst that
	// the local limiter of FailOpen holds: 1/N for a fleet of N. If zero,
	// 1: each instance alone keeps to the global limit.
	FallbackShare float64

	// RetryInterval is how long, after a failure, the limiter stays in
	// its fail mode before trying Redis again, so that a dead Redis costs
	// one timeout per interval instead of one per call. If zero, 1s.
	RetryInterval time.Duration

	// Lease, if positive, makes each round trip also take up to Lease
	// tokens beyond the caller's own (only those free at once), which
	// later calls on this instance use without asking Redis, until
	// LeaseTTL has passed; unused ones go back with the next round trip or
	// Close. Fewer round trips, at the price of an error in the global
	// bound of at most Lease tokens per instance (docs/redis.md). Only a
	// bursty limit (Smooth false) can lease. Zero (the default) leases
	// nothing.
	Lease int

	// LeaseTTL is how long leased tokens stay usable. If zero, 100ms.
	LeaseTTL time.Duration

	// Clock is what waits sleep on and what RetryInterval and LeaseTTL are
	// measured by. If nil, the system clock. Decisions always use the
	// server's TIME.
	Clock sluice.Clock
}

// Limiter is a rate limit shared by every instance that uses the same Redis
// key: the ratelimit.Limiter contract, decided by GCRA in one Lua script
// per call (EVALSHA: one round trip, atomic on the server, timed by the
// server's clock). The script keeps the theoretical arrival time (TAT) of
// the key in microseconds with a PX expiry of TAT−now, so an idle key
// vanishes by itself. A wait is slept here, not on the server; a wait cut
// short by ctx gives its tokens back with a second script. It is safe for
// concurrent use.
type Limiter struct {
	cfg      LimiterConfig
	client   redis.UniversalClient
	keys     []string
	clock    sluice.Clock
	interval int64  // ns; 0 means unlimited
	ivArg    string // interval in µs, as the script's argument
	burst    int64
	smooth   string // "1" or "0"
	local    *ratelimit.TokenBucket
	batch    batcher
	lease    *lease // nil without LimiterConfig.Lease

	downUntil atomic.Int64 // UnixNano until which Redis is not tried; 0 = shared mode
	degraded  atomic.Bool  // the last round trip failed
	lastErr   atomic.Pointer[error]
}

var (
	_ ratelimit.Limiter      = (*Limiter)(nil)
	_ sluice.SharedComponent = (*Limiter)(nil)
)

// Defaults of LimiterConfig.
const (
	DefaultTimeout       = 50 * time.Millisecond
	DefaultRetryInterval = time.Second
	DefaultLeaseTTL      = 100 * time.Millisecond
)

// NewLimiter returns a Limiter for cfg, or an error naming the first field
// of cfg that is invalid. It does not contact Redis.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if cfg.Client == nil {
		return nil, errors.New("sluiceredis: LimiterConfig.Client is required")
	}
	if cfg.Key == "" {
		return nil, errors.New("sluiceredis: LimiterConfig.Key is required")
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("sluiceredis: LimiterConfig.Timeout must be >= 0, got %v", cfg.Timeout)
	case cfg.RetryInterval < 0:
		return nil, fmt.Errorf("sluiceredis: LimiterConfig.RetryInterval must be >= 0, got %v", cfg.RetryInterval)
	case math.IsNaN(cfg.FallbackShare) || cfg.FallbackShare < 0 || cfg.FallbackShare > 1:
		return nil, fmt.Errorf("sluiceredis: LimiterConfig.FallbackShare must be in (0, 1], got %v", cfg.FallbackShare)
	case cfg.OnFailure < FailError || cfg.OnFailure > FailClosed:
		return nil, fmt.Errorf("sluiceredis: unknown LimiterConfig.OnFailure %v", cfg.OnFailure)
	case cfg.Lease < 0:
		return nil, fmt.Errorf("sluiceredis: LimiterConfig.Lease must be >= 0, got %d", cfg.Lease)
	case cfg.LeaseTTL < 0:
		return nil, fmt.Errorf("sluiceredis: LimiterConfig.LeaseTTL must be >= 0, got %v", cfg.LeaseTTL)
	case cfg.Lease > 0 && cfg.Smooth:
		return nil, errors.New("sluiceredis: LimiterConfig.Lease needs a bursty limit (Smooth false): a smooth one spaces every call")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.FallbackShare == 0 {
		cfg.FallbackShare = 1
	}
	// The ratelimit package validates and defaults the shape; the
	// TokenBucket it returns tells the interval and burst it settled on.
	probe, err := ratelimit.New(ratelimit.Config{Name: cfg.Name, Rate: cfg.Rate, Per: cfg.Per, Burst: cfg.Burst, Smooth: cfg.Smooth})
	if err != nil {
		return nil, err
	}
	rc := probe.Config()
	cfg.Per, cfg.Burst = rc.Per, rc.Burst
	l := &Limiter{
		cfg:    cfg,
		client: cfg.Client,
		keys:   []string{cfg.Key},
		clock:  sluice.ClockOr(cfg.Clock),
		burst:  int64(rc.Burst),
		smooth: "0",
	}
	l.batch.l = l
	if cfg.Smooth {
		l.smooth = "1"
	}
	if cfg.Lease > 0 && rc.Rate != 0 {
		l.lease = &lease{size: cfg.Lease, ttl: cfg.LeaseTTL}
	}
	if rc.Rate != 0 {
		l.interval = int64(math.Round(float64(rc.Per) / rc.Rate))
		l.ivArg = strconv.FormatFloat(float64(l.interval)/1e3, 'g', -1, 64)
	}
	if cfg.OnFailure == FailOpen {
		burst := max(int(math.Ceil(float64(rc.Burst)*cfg.FallbackShare)), 1)
		l.local, err = ratelimit.New(ratelimit.Config{
			Name: cfg.Name, Rate: rc.Rate * cfg.FallbackShare, Per: rc.Per, Burst: burst,
			Smooth: cfg.Smooth, MaxWait: cfg.MaxWait, Clock: cfg.Clock,
		})
		if err != nil {
			return nil, fmt.Errorf("sluiceredis: the fallback share of the limit: %w", err)
		}
	}
	return l, nil
}

// Config returns the configuration in force, with defaults applied.
func (l *Limiter) Config() LimiterConfig { return l.cfg }

// Degraded reports whether the limiter's last round trip to Redis failed:
// it decides by its fail mode until one succeeds again (trying Redis once
// per RetryInterval). The health report and sluice_shared_degraded show it.
func (l *Limiter) Degraded() bool { return l.degraded.Load() }

// inFailMode reports whether Redis failed within the last RetryInterval, so
// that a call decides by the fail mode without trying Redis.
func (l *Limiter) inFailMode() bool {
	until := l.downUntil.Load()
	return until != 0 && l.clock.Now().UnixNano() < until
}

// LastError returns the last Redis failure, or nil if there has been none.
func (l *Limiter) LastError() error {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// takeScript decides a request. KEYS[1] is the TAT key; ARGV are the
// interval in µs, the burst, n, the longest acceptable wait in µs (negative:
// no bound), "1" for smooth, the lease tokens asked for beyond n and the
// unused lease tokens handed back first (the last two are 0 without a
// lease, and only a bursty limit leases). It replies {1, wait µs, TAT',
// base, lease} when it took the tokens (TAT' and base as exact decimal
// strings for a later give-back, empty when there is no wait; lease is how
// many tokens beyond n it granted, only when there is no wait) and {0, retry-after µs} when it did
// not. Times are in µs of the server's clock; 1e-3 µs of slack absorbs the
// rounding of fractional intervals.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local iv = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local maxwait = tonumber(ARGV[4])
local smooth = ARGV[5] == '1'
local ask = tonumber(ARGV[6])
local ret = tonumber(ARGV[7])
local limit = burst * iv
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local put = false
if ret > 0 and tat > now then
  tat = tat - ret * iv
  if tat < now then tat = now end
  put = true
end
local base = tat
if base < now then base = now end
local newtat = base + n * iv
local wait, ok
if smooth then
  wait = base - now
  ok = newtat - now <= limit + 0.001
else
  wait = newtat - now - limit
  if wait < 0.001 then wait = 0 end
  ok = true
end
if maxwait >= 0 and wait > maxwait then ok = false end
if ok then
  local extra = 0
  if ask > 0 and wait == 0 then
    extra = math.floor((now + limit - newtat) / iv + 0.001)
    if extra > ask then extra = ask end
    if extra < 0 then extra = 0 end
    newtat = newtat + extra * iv
  end
  local s = string.format('%.17g', newtat)
  redis.call('SET', KEYS[1], s, 'PX', math.ceil((newtat - now) / 1000) + 1)
  if wait == 0 then return {1, 0, '', '', extra} end
  return {1, math.ceil(wait), s, string.format('%.17g', base), extra}
end
if put then
  if tat <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
end
local d = tat - now
if not smooth then d = d - (burst - n) * iv end
if d < 0.001 then d = 0 end
return {0, math.ceil(d)}
`)

// giveBackScript returns the tokens of a wait cut short. KEYS[1] is the TAT
// key; ARGV are the TAT' and base the take left (as it replied them), n·I
// in µs and "1" for smooth. If nothing was taken since, the TAT goes back
// to base exactly; otherwise a bursty limit loses n·I (never below now) and
// a smooth one keeps its TAT, so that the slots promised to later callers
// still hold. It is the TokenBucket's Reservation.Cancel.
var giveBackScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat
if cur == ARGV[1] then
  tat = tonumber(ARGV[2])
elseif ARGV[4] == '1' then
  return 0
else
  tat = tonumber(cur) - tonumber(ARGV[3])
end
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return 1
`)

// Take asks for n tokens of the shared limit (see ratelimit.Limiter). A
// Redis failure is handled as LimiterConfig.OnFailure says; no round trip
// waits longer than Timeout.
func (l *Limiter) Take(ctx context.Context, n int) (ratelimit.Decision, error) {
	if n <= 0 || l.interval == 0 {
		return ratelimit.Decision{Allowed: true}, nil
	}
	if int64(n) > l.burst {
		return ratelimit.Decision{}, fmt.Errorf("ratelimit: %s%d tokens exceed Config.Burst %d", l.label(), n, l.burst)
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, context.Cause(ctx)
	}
	if l.lease != nil && l.lease.takeAt(l.clock.Now(), n) {
		return ratelimit.Decision{Allowed: true}, nil
	}
	if l.inFailMode() {
		return l.fallback(ctx, n, l.LastError())
	}
	bound := int64(-1)
	if l.cfg.MaxWait >= 0 {
		bound = int64(l.cfg.MaxWait)
	}
	if dl, ok := ctx.Deadline(); ok {
		// A wait that ends at the deadline leaves the call no time to run.
		left := max(int64(time.Until(dl))-1, 0)
		if bound < 0 || left < bound {
			bound = left
		}
	}
	boundArg := int64(-1)
	if bound >= 0 {
		boundArg = bound / 1e3 // µs, rounded down: never waits past the bound
	}
	r := &request{n: n, bound: boundArg}
	if l.lease != nil {
		r.extra, r.ret = l.lease.planAt(l.clock.Now())
	}
	res, err := l.batch.do(ctx, r, l.cfg.Timeout)
	if l.lease != nil && (r.extra > 0 || r.ret > 0) {
		granted := int64(0)
		if err == nil && len(res) > 4 {
			granted, _ = res[4].(int64)
		}
		l.lease.refilledAt(l.clock.Now(), r.extra > 0, int(granted))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Decision{}, context.Cause(ctx)
		}
		return l.failed(ctx, n, err)
	}
	l.downUntil.Store(0)
	l.degraded.Store(false)
	allowed, _ := res[0].(int64)
	us, _ := res[1].(int64)
	d := time.Duration(us) * time.Microsecond
	if allowed != 1 {
		return ratelimit.Decision{RetryAfter: d}, nil
	}
	if d == 0 {
		return ratelimit.Decision{Allowed: true}, nil
	}
	if err := sluice.Sleep(ctx, l.clock, d); err != nil {
		end, _ := res[2].(string)
		base, _ := res[3].(string)
		l.giveBack(end, base, n)
		return ratelimit.Decision{}, err
	}
	return ratelimit.Decision{Allowed: true, Waited: d}, nil
}

// giveBack runs giveBackScript on a context of its own (the caller's has
// ended), bounded by Timeout. A failure loses nothing but the tokens.
func (l *Limiter) giveBack(end, base string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Timeout)
	defer cancel()
	niv := strconv.FormatFloat(float64(int64(n)*l.interval)/1e3, 'g', -1, 64)
	_ = giveBackScript.Run(ctx, l.client, l.keys, end, base, niv, l.smooth).Err()
}

// failed records a Redis failure, enters the fail mode for RetryInterval
// and decides by it.
func (l *Limiter) failed(ctx context.Context, n int, err error) (ratelimit.Decision, error) {
	err = fmt.Errorf("%w: limiter %s: %w", ErrUnavailable, l.cfg.Key, err)
	l.lastErr.Store(&err)
	l.degraded.Store(true)
	l.downUntil.Store(l.clock.Now().Add(l.cfg.RetryInterval).UnixNano())
	return l.fallback(ctx, n, err)
}

// fallback decides a request while Redis is away, by the fail mode.
func (l *Limiter) fallback(ctx context.Context, n int, err error) (ratelimit.Decision, error) {
	switch l.cfg.OnFailure {
	case FailOpen:
		return l.local.Take(ctx, n)
	case FailClosed:
		return ratelimit.Decision{RetryAfter: l.cfg.RetryInterval}, nil
	}
	return ratelimit.Decision{}, err
}

// label is the limiter's name formatted for an error message.
func (l *Limiter) label() string {
	if l.cfg.Name == "" {
		return ""
	}
	return fmt.Sprintf("%q: ", l.cfg.Name)
}
