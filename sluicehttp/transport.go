package sluicehttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// Defaults applied by NewTransport to zero Config fields.
const (
	DefaultName            = "http"
	DefaultMaxBufferedBody = 1 << 20
)

// Config configures a Transport. The zero Config is valid: a clone of
// http.DefaultTransport under DefaultRetryConfig (3 attempts with a retry
// budget), one breaker per host with the zero breaker.Config (open after 5
// consecutive failures, for 60 s), request bodies buffered up to 1 MiB, and
// no logging.
type Config struct {
	// Name names the transport's own retry policy and breaker family, whose
	// breakers are named Name/host:port. If empty, "http".
	Name string

	// Base sends each attempt. If nil, a clone of http.DefaultTransport,
	// which CloseIdleConnections and Close then close the connections of.
	Base http.RoundTripper

	// Retry is the retry policy, outermost in the pipeline. It decides, as
	// for any call, whether a failed attempt is retried (its classifier, the
	// request's idempotency, its attempts and its budget). If nil, a policy
	// made from DefaultRetryConfig with Name and Clock. To turn retries off,
	// pass one with MaxAttempts 1.
	Retry *retry.Retry

	// Breakers returns the breaker for a host, given as lower-case
	// "host:port" (the port defaulted from the scheme). A keyed family's Get
	// method fits as it is (Config{Breakers: family.Get}); returning a nil
	// breaker runs the host's requests without one; NoBreakers turns
	// breakers off. An error fails the request. If nil, the transport keeps
	// a family of its own built from BreakerConfig and Hosts.
	Breakers func(host string) (*breaker.Breaker, error)

	// BreakerConfig is the template of the transport's own breakers; its
	// Name is replaced by Name/host:port, its OnStateChange is called after
	// the transport logs the change. If zero, the zero breaker.Config. It
	// must be zero when Breakers is set.
	BreakerConfig breaker.Config

	// Hosts bounds the transport's own breaker family. If zero, at most 1024
	// hosts, evicting the least recently used closed breaker first (an open
	// breaker remembers an outage that a fresh one would forget). It must be
	// zero when Breakers is set.
	Hosts registry.KeyedConfig

	// Registry, if set, holds the transport's own breaker family (under
	// Name) and default retry policy, so that the health monitor and the
	// metrics collector see them; a name already taken there is an error.
	// If nil, they live in a registry of the transport's own.
	Registry *registry.Registry

	// Limiter, if set, admits each attempt at a rate, for all hosts
	// together; its rejection (429-like, ratelimit.ErrLimited) is not
	// retried. A *ratelimit.TokenBucket or any ratelimit.Limiter. If nil, no
	// limit.
	Limiter ratelimit.Limiter

	// Bulkhead, if set, bounds the attempts in flight (until their response
	// headers arrive, not while the caller reads a body). If nil, no bound.
	Bulkhead *bulkhead.Bulkhead

	// Timeout, if set, bounds each attempt, inside the breaker, so that a
	// timed-out attempt counts against its host. See Transport for what it
	// covers. If nil, attempts are bounded by the request's context only
	// (and by the retry policy's AttemptTimeout, which covers the same).
	Timeout *timeout.Timeout

	// MaxBufferedBody is how much of a request body without GetBody the
	// transport copies so that it can send it again. A bigger body (by
	// ContentLength, or once that many bytes were read) is sent once and
	// never retried. If zero, 1 MiB; if negative, nothing is buffered.
	MaxBufferedBody int64

	// IsFailure reports whether a response is a failure of the upstream,
	// which the retry policy and the breaker then see as an error. It is not
	// called for transport errors. If nil, statuses 429 and 5xx are failures.
	IsFailure func(resp *http.Response) bool

	// Logger receives the transport's logs: requests shed by a policy and
	// failure responses handed back at Debug, breaker state changes at Warn,
	// with the fields host, reason, retry_after, status, from and to. If
	// nil, nothing is logged.
	Logger *slog.Logger

	// Clock is the time source for Retry-After dates and for the default
	// retry policy and breakers. If nil, the system clock.
	Clock sluice.Clock
}

// DefaultRetryConfig returns the retry configuration of a Transport given no
// Retry: 3 attempts, exponential backoff from 100 ms, ×2, capped at 30 s
// (which also caps a server's Retry-After), full jitter, and the retry
// package's default budget (retries up to 10 % of recent requests plus 10
// per second), so that an outage does not multiply the load on a host.
func DefaultRetryConfig() retry.Config {
	return retry.Config{
		Name:        DefaultName,
		MaxAttempts: 3,
		Backoff:     retry.Exponential(100*time.Millisecond, 2, 30*time.Second),
		Jitter:      retry.FullJitter,
	}
}

// NoBreakers is a Config.Breakers that gives no host a breaker.
func NoBreakers(string) (*breaker.Breaker, error) { return nil, nil }

// Transport is an http.RoundTripper that runs each request through a
// pipeline of sluice policies — retry, limiter, bulkhead, the host's
// breaker, timeout, outermost first — around a base transport.
//
// A request is retried only if it is idempotent: its method is GET, HEAD,
// OPTIONS, TRACE, PUT or DELETE, or it carries an Idempotency-Key (or the
// caller marked its context with sluice.WithIdempotent, which then decides).
// Its body is re-sent through GetBody, or from a copy of up to
// Config.MaxBufferedBody bytes; a bigger body is sent once.
//
// A response that Config.IsFailure calls a failure (429 and 5xx by default)
// is an error for the policies — a *sluice.StatusError with the server's
// Retry-After, or a *NoRetryError when a sluice layer downstream marked it
// final — so that the retry honours Retry-After and the breaker counts it.
// When the policies are done, RoundTrip returns the last response the
// upstream gave (with Sluice-Retry: no added if it is a failure), and an
// error only when no upstream answered: a transport error, or a policy's
// rejection (breaker.ErrOpen, bulkhead.ErrFull, ratelimit.ErrLimited,
// retry.ErrBudgetExhausted; see RejectionFor). Responses it does not return
// are drained (up to 64 KiB) and closed, so their connections are reused.
//
// A per-attempt timeout covers an attempt until its response headers arrive
// and, for a failure response, until its body is read; the body of the
// response returned is bounded only by the request's own context.
//
// A Transport is safe for concurrent use.
type Transport struct {
	name      string
	base      http.RoundTripper
	ownsBase  bool
	retry     *retry.Retry
	breakers  func(string) (*breaker.Breaker, error)
	family    *registry.Keyed[*breaker.Breaker] // the transport's own, or nil
	full      *sluice.Pipeline                  // with the retry policy
	once      *sluice.Pipeline                  // without: for bodies that cannot be re-sent
	maxBody   int64
	isFailure func(*http.Response) bool
	attempt   Attempter // makes each attempt: base, isFailure, clock
	log       *slog.Logger
	clock     sluice.Clock
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport for cfg, or an error naming the field of
// cfg that is invalid.
func NewTransport(cfg Config) (*Transport, error) {
	if cfg.Breakers != nil && !reflect.ValueOf(cfg.BreakerConfig).IsZero() {
		return nil, errors.New("sluicehttp: Config.BreakerConfig must be zero when Config.Breakers is set")
	}
	if cfg.Breakers != nil && !reflect.ValueOf(cfg.Hosts).IsZero() {
		return nil, errors.New("sluicehttp: Config.Hosts must be zero when Config.Breakers is set")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	t := &Transport{
		name:      cfg.Name,
		base:      cfg.Base,
		retry:     cfg.Retry,
		breakers:  cfg.Breakers,
		maxBody:   cfg.MaxBufferedBody,
		isFailure: cfg.IsFailure,
		log:       cfg.Logger,
		clock:     sluice.ClockOr(cfg.Clock),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.maxBody == 0 {
		t.maxBody = DefaultMaxBufferedBody
	}
	if t.isFailure == nil {
		t.isFailure = defaultIsFailure
	}
	if t.retry == nil {
		rc := DefaultRetryConfig()
		rc.Name, rc.Clock = cfg.Name, cfg.Clock
		r, err := retry.New(rc)
		if err != nil {
			return nil, fmt.Errorf("sluicehttp: default retry: %w", err)
		}
		if cfg.Registry != nil {
			if err := cfg.Registry.AddRetry(r); err != nil {
				return nil, fmt.Errorf("sluicehttp: Config.Registry: retry %q: %w", cfg.Name, err)
			}
		}
		t.retry = r
	}
	if t.breakers == nil {
		fam, err := t.ownBreakers(cfg)
		if err != nil {
			return nil, err
		}
		t.family, t.breakers = fam, fam.Get
	}
	if t.base == nil {
		t.base, t.ownsBase = http.DefaultTransport.(*http.Transport).Clone(), true
	}
	t.attempt = Attempter{Base: t.base, Failure: FailureFunc(t.isFailure), Clock: t.clock}
	var limit sluice.Policy
	if cfg.Limiter != nil {
		if p, ok := cfg.Limiter.(sluice.Policy); ok {
			limit = p
		} else {
			limit = ratelimit.NewPolicy(cfg.Limiter)
		}
	}
	t.full = sluice.NewPipeline(t.retry, limit, cfg.Bulkhead, hostBreaker{}, cfg.Timeout)
	t.once = sluice.NewPipeline(limit, cfg.Bulkhead, hostBreaker{}, cfg.Timeout)
	return t, nil
}

func (t *Transport) ownBreakers(cfg Config) (*registry.Keyed[*breaker.Breaker], error) {
	reg := cfg.Registry
	if reg == nil {
		reg = registry.New(registry.Config{Clock: cfg.Clock})
	}
	tmpl := cfg.BreakerConfig
	if tmpl.Clock == nil {
		tmpl.Clock = cfg.Clock
	}
	userHook := tmpl.OnStateChange
	prefix := cfg.Name + "/"
	log := t.log
	tmpl.OnStateChange = func(sc breaker.StateChange) {
		if log.Enabled(context.Background(), slog.LevelWarn) {
			log.LogAttrs(context.Background(), slog.LevelWarn, "sluicehttp: breaker state changed",
				slog.String("host", strings.TrimPrefix(sc.Name, prefix)),
				slog.String("breaker", sc.Name),
				slog.String("from", sc.From.String()),
				slog.String("to", sc.To.String()))
		}
		if userHook != nil {
			userHook(sc)
		}
	}
	hosts := cfg.Hosts
	if hosts.Evictable == nil {
		hosts.Evictable = func(_ string, v any) bool {
			b, ok := v.(*breaker.Breaker)
			return !ok || b.State() == breaker.StateClosed // on the breaker's own clock
		}
	}
	fam, err := reg.KeyedBreakers(cfg.Name, tmpl, hosts)
	if err != nil {
		return nil, fmt.Errorf("sluicehttp: Config.BreakerConfig: %w", err)
	}
	return fam, nil
}

// Retry returns the retry policy in use, Config.Retry or the transport's own.
func (t *Transport) Retry() *retry.Retry { return t.retry }

// Breaker returns the breaker the transport uses for u's host, building it
// if it does not exist yet; nil when that host has none.
func (t *Transport) Breaker(u *url.URL) (*breaker.Breaker, error) {
	return t.breakers(hostKey(u))
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method. http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Close closes idle connections and stops the timers of the transport's own
// breakers. The transport keeps working afterwards; Close is for when it is
// no longer used. It returns nil.
func (t *Transport) Close() error {
	t.CloseIdleConnections()
	if t.family != nil {
		t.family.Each(func(_ string, b *breaker.Breaker) { b.Close() })
	}
	return nil
}

// RoundTrip sends req through the pipeline; see Transport for what it
// retries and what it returns. Like any RoundTripper it closes req.Body,
// whether or not it sends it, and does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("sluicehttp: nil Request.URL")
	}
	c := &call{Context: req.Context(), t: t, req: req, host: hostKey(req.URL)}
	br, err := t.breakers(c.host)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	c.br = br
	if err := c.body.Reset(req, t.maxBody); err != nil {
		return nil, err
	}
	if _, marked := sluice.Idempotent(c.Context); !marked && !idempotent(req) {
		// Marked only when false: unmarked work counts as idempotent.
		c.Context = sluice.WithIdempotent(c.Context, false)
	}
	p := t.full
	if !c.body.Rewindable() {
		p = t.once
	}
	err = p.Do(c, attempt)
	c.body.Close()
	return c.finish(err)
}

// idempotent reports whether req may be sent twice: its method is
// idempotent (RFC 9110, 9.2.2) or it carries an idempotency key.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header[HeaderIdempotencyKey]
	if !ok {
		_, ok = req.Header[headerXIdempotencyKey]
	}
	return ok
}

// callKey finds the call in the contexts its policies derive.
type callKey struct{}

// call is one RoundTrip. It is the context the pipeline runs under (the
// request's, plus itself under callKey), so that carrying it costs no
// allocation beyond its own.
type call struct {
	context.Context
	t    *Transport
	req  *http.Request
	host string
	br   *breaker.Breaker
	body Body
	n    int            // attempts made
	resp *http.Response // the last attempt's response, when a success
	last *http.Response // the last attempt's response, when a failure
}

// Value returns the call for callKey and defers to the request's context
// for every other key.
func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// hostBreaker is the pipeline stage that runs an attempt through the
// breaker of the request's host.
type hostBreaker struct{}

func (hostBreaker) Execute(ctx context.Context, next sluice.Next) error {
	if c, _ := ctx.Value(callKey{}).(*call); c != nil && c.br != nil {
		return c.br.Execute(ctx, next)
	}
	return next.Run(ctx)
}

// attempt is the call at the bottom of the pipeline: a plain function, so
// that passing it allocates nothing.
func attempt(ctx context.Context) error {
	return ctx.Value(callKey{}).(*call).send(ctx)
}

// send makes one attempt under ctx, the attempt's context. The response
// it keeps outlives ctx (see Attempter.Attempt), so that a per-attempt
// timeout does not cut off the body of the answer RoundTrip returns.
func (c *call) send(ctx context.Context) error {
	c.n++
	if c.last != nil { // the retry policy chose to try again
		DiscardBody(c.last)
		c.last = nil
	}
	resp, err := c.t.attempt.Attempt(ctx, c.req, &c.body)
	switch {
	case err == nil:
		c.resp = resp
	case resp != nil:
		c.last = resp
	}
	return err
}

// finish turns the pipeline's outcome into RoundTrip's.
func (c *call) finish(err error) (*http.Response, error) {
	if err == nil && c.resp != nil {
		return c.resp, nil
	}
	if c.resp != nil { // a success some policy overruled; not ours to return
		DiscardBody(c.resp)
		c.resp = nil
	}
	if err == nil {
		err = errors.New("sluicehttp: the pipeline returned no response")
	}
	if c.last != nil {
		resp := c.last
		c.last = nil
		if c.req.Context().Err() != nil { // the caller has gone
			DiscardBody(resp)
			return nil, err
		}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		resp.Header.Set(HeaderRetry, retryNo)
		c.t.logAnswer(c, resp, err)
		return resp, nil
	}
	if r, ok := RejectionFor(err); ok {
		c.t.logShed(c, r)
	}
	return nil, err
}

func (t *Transport) logShed(c *call, r Rejection) {
	if !t.log.Enabled(c, slog.LevelDebug) {
		return
	}
	t.log.LogAttrs(c, slog.LevelDebug, "sluicehttp: request shed",
		slog.String("host", c.host),
		slog.String("method", c.req.Method),
		slog.String("reason", r.Reason),
		slog.Duration("retry_after", r.RetryAfter),
		slog.Int("attempts", c.n))
}

func (t *Transport) logAnswer(c *call, resp *http.Response, err error) {
	if !t.log.Enabled(c, slog.LevelDebug) {
		return
	}
	reason := "not-retried"
	switch {
	case errors.Is(err, retry.ErrBudgetExhausted):
		reason = ReasonBudgetExhausted
	case errors.Is(err, retry.ErrExhausted):
		reason = "exhausted"
	case errors.Is(err, sluice.ErrRejected):
		reason = ReasonRejected
	}
	t.log.LogAttrs(c, slog.LevelDebug, "sluicehttp: returning failure response",
		slog.String("host", c.host),
		slog.String("method", c.req.Method),
		slog.Int("status", resp.StatusCode),
		slog.String("reason", reason),
		slog.Int("attempts", c.n))
}
