package proxy

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluiceredis"
)

// This file holds the rate limits a route applies that are not a plain
// in-process token bucket in the registry: limits on Redis (storage.ratelimit),
// shared by every instance, and limits split per client (rate_limit.key).

// maxLimitKeys bounds the per-client limiters one limit keeps in memory;
// the least recently used is dropped to make room (an in-process one
// starts full again, a Redis one loses nothing: its state is in Redis).
const maxLimitKeys = 10_000

// limitSpec is what makes a routeLimit: the limit's shape, its key, and
// where it lives. Two equal specs make interchangeable limits, which is
// how a reload keeps the ones that did not change.
type limitSpec struct {
	cfg    ratelimit.Config // Name is the limit's name (route, or route/route)
	key    string           // rate_limit.key; "" for one limit
	shared *sharedClient    // storage.ratelimit's client; nil: in-process
}

// same reports whether a and b make interchangeable limits: the same
// name, shape, key and client.
func (a limitSpec) same(b limitSpec) bool {
	x, y := a.cfg, b.cfg
	return x.Name == y.Name && x.Rate == y.Rate && x.Per == y.Per && x.Burst == y.Burst && x.Smooth == y.Smooth &&
		x.MaxWait == y.MaxWait && a.key == b.key && a.shared == b.shared
}

// routeLimit is a rate limit as a pipeline policy: it picks the limiter of
// the request's key, takes a token, and answers 429 (with the decision's
// Retry-After) or, for a Redis failure in on_failure: error, 503.
type routeLimit struct {
	spec     limitSpec
	clock    sluice.Clock
	log      *slog.Logger
	one      ratelimit.Limiter // without a key
	mu       sync.Mutex        // guards byKey and lru
	byKey    map[string]*list.Element
	lru      list.List             // of *keyedLimiter, most recent first
	degraded atomic.Bool           // in the fail mode since the last Take
	lastErr  atomic.Pointer[error] // the last Redis failure, for health
}

type keyedLimiter struct {
	key string
	l   ratelimit.Limiter
}

// newRouteLimit makes the limit of spec. A Redis limit without a key is
// made at once, so that a bad setting fails the build.
func newRouteLimit(spec limitSpec, clock sluice.Clock, log *slog.Logger) (*routeLimit, error) {
	rl := &routeLimit{spec: spec, clock: clock, log: log, byKey: map[string]*list.Element{}}
	l, err := rl.make("")
	if err != nil {
		return nil, err
	}
	if spec.key == "" {
		rl.one = l
	}
	return rl, nil
}

// make builds the limiter of one key.
func (rl *routeLimit) make(key string) (ratelimit.Limiter, error) {
	c := rl.spec.cfg
	c.Clock = rl.clock
	if rl.spec.shared == nil {
		if key != "" {
			c.Name += "[" + key + "]"
		}
		return ratelimit.New(c)
	}
	b := rl.spec.shared.backend
	mode := map[config.FailMode]sluiceredis.FailMode{
		config.FailOpen: sluiceredis.FailOpen, config.FailClosed: sluiceredis.FailClosed, config.FailError: sluiceredis.FailError,
	}[cmp.Or(b.OnFailure, config.DefaultOnFailure)]
	return sluiceredis.NewLimiter(sluiceredis.LimiterConfig{
		Client:        rl.spec.shared.client,
		Key:           b.Prefix + sluiceredis.LimiterKey(c.Name, key),
		Name:          c.Name,
		Rate:          c.Rate,
		Per:           c.Per,
		Burst:         c.Burst,
		Smooth:        c.Smooth,
		MaxWait:       c.MaxWait,
		Timeout:       cmp.Or(b.Timeout, config.DefaultRedisTimeout),
		OnFailure:     mode,
		FallbackShare: b.FallbackShare,
		RetryInterval: b.RetryInterval,
		Clock:         c.Clock,
	})
}

// limiter returns the limiter of key, making it on first use.
func (rl *routeLimit) limiter(key string) (ratelimit.Limiter, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if e, ok := rl.byKey[key]; ok {
		rl.lru.MoveToFront(e)
		return e.Value.(*keyedLimiter).l, nil
	}
	l, err := rl.make(key)
	if err != nil {
		return nil, err
	}
	rl.byKey[key] = rl.lru.PushFront(&keyedLimiter{key, l})
	if rl.lru.Len() > maxLimitKeys {
		old := rl.lru.Remove(rl.lru.Back()).(*keyedLimiter)
		delete(rl.byKey, old.key)
		closeLimiter(old.l)
	}
	return l, nil
}

// requestKey is the context key under which serve passes the request to
// keyed limits.
type requestKey struct{}

// Execute takes a token for the call and runs it, or refuses it.
func (rl *routeLimit) Execute(ctx context.Context, next sluice.Next) error {
	l := rl.one
	if l == nil {
		r, _ := ctx.Value(requestKey{}).(*http.Request)
		var err error
		if l, err = rl.limiter(limitKey(rl.spec.key, r)); err != nil {
			return err
		}
	}
	d, err := l.Take(ctx, 1)
	rl.noteMode(l, err)
	if errors.Is(err, sluiceredis.ErrUnavailable) {
		return fmt.Errorf("%w: rate limit %s: %w", sluice.ErrRejected, rl.spec.cfg.Name, err)
	}
	if err != nil {
		return err
	}
	if err := d.Err(); err != nil {
		return err
	}
	return next.Run(ctx)
}

// noteMode logs a Redis limit's entering its fail mode and its return to
// the shared limit.
func (rl *routeLimit) noteMode(l ratelimit.Limiter, err error) {
	rdl, ok := l.(*sluiceredis.Limiter)
	if !ok {
		return
	}
	now := rdl.Degraded()
	if e := rdl.LastError(); e != nil {
		rl.lastErr.Store(&e)
	}
	if rl.degraded.Swap(now) == now {
		return
	}
	mode := string(cmp.Or(rl.spec.shared.backend.OnFailure, config.DefaultOnFailure))
	if now {
		rl.log.Warn("proxy: rate limit lost Redis; deciding by its fail mode", slog.String("limit", rl.spec.cfg.Name),
			slog.String("on_failure", mode), slog.Any("error", cmp.Or(err, rdl.LastError())))
		return
	}
	rl.log.Info("proxy: rate limit back on Redis: shared mode again", slog.String("limit", rl.spec.cfg.Name))
}

// close closes the limit's Redis limiters (handing back leased tokens).
func (rl *routeLimit) close() {
	if rl.one != nil {
		closeLimiter(rl.one)
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for e := rl.lru.Front(); e != nil; e = e.Next() {
		closeLimiter(e.Value.(*keyedLimiter).l)
	}
}

func closeLimiter(l ratelimit.Limiter) {
	if c, ok := l.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// maxTenantKey is the longest key value used as it is; longer ones (and
// ones with control characters) are hashed, so that a client cannot make
// Redis keys or log lines of any size.
const maxTenantKey = 64

// limitKey returns the key of r for rate_limit.key k: the header's value
// or the client's address, "" when r has none.
func limitKey(k string, r *http.Request) string {
	if r == nil {
		return ""
	}
	var v string
	if name, ok := strings.CutPrefix(k, config.LimitKeyHeaderPrefix); ok {
		v = r.Header.Get(name)
	} else if k == config.LimitKeyClientIP {
		v = r.RemoteAddr
		if h, _, err := net.SplitHostPort(v); err == nil {
			v = h
		}
	}
	if len(v) > maxTenantKey || strings.ContainsFunc(v, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		sum := sha256.Sum256([]byte(v))
		v = "sha256:" + hex.EncodeToString(sum[:16])
	}
	return v
}

// sharedLimits is the health and metrics view of the limits on Redis
// (sluice.SharedComponent): degraded while any limit of the configuration
// in force is in its fail mode.
type sharedLimits struct{ s *Server }

// Degraded reports whether a limit is deciding by its fail mode.
func (sl sharedLimits) Degraded() bool {
	for _, rl := range sl.limits() {
		if rl.degraded.Load() {
			return true
		}
	}
	return false
}

// LastError returns a limit's last Redis failure, or nil.
func (sl sharedLimits) LastError() error {
	for _, rl := range sl.limits() {
		if p := rl.lastErr.Load(); p != nil {
			return *p
		}
	}
	return nil
}

func (sl sharedLimits) limits() map[string]*routeLimit {
	if st := sl.s.live.Load(); st != nil {
		return st.built.limits
	}
	return nil
}
