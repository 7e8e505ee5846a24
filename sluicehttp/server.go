package sluicehttp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/timeout"
)

// ServerConfig configures Middleware. The zero ServerConfig applies no
// policy and logs nothing.
type ServerConfig struct {
	// Limiter admits requests at a rate, outermost, so that a request it
	// refuses takes no bulkhead permit. A *ratelimit.TokenBucket or any
	// ratelimit.Limiter (the Redis one, for a limit shared by instances).
	// A refused request is answered 429 with Retry-After. If nil, no limit.
	Limiter ratelimit.Limiter

	// Bulkhead bounds the requests being handled at once; one it sheds is
	// answered 503. If nil, no bound.
	Bulkhead *bulkhead.Bulkhead

	// Timeout bounds each request, innermost: the handler runs with a
	// context that ends at the deadline, and a handler that has written
	// nothing by then is answered 504 (see Handler). If nil, no deadline.
	Timeout *timeout.Timeout

	// Logger receives a Debug record for every request answered by a
	// policy, with the fields method, path, reason and retry_after. If nil,
	// nothing is logged.
	Logger *slog.Logger
}

// Middleware returns a middleware that runs each request through cfg's
// limiter, bulkhead and timeout, in that order, and answers the requests
// they shed as the table at RejectionFor says.
func Middleware(cfg ServerConfig) func(http.Handler) http.Handler {
	var limit sluice.Policy
	if cfg.Limiter != nil {
		if p, ok := cfg.Limiter.(sluice.Policy); ok {
			limit = p
		} else {
			limit = ratelimit.NewPolicy(cfg.Limiter)
		}
	}
	p := sluice.NewPipeline(limit, cfg.Bulkhead, cfg.Timeout)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(h http.Handler) http.Handler { return &server{h: h, p: p, log: log} }
}

// Handler returns h run through policies, outermost first. A request a
// policy sheds is answered with WriteRejection; h never sees it.
//
// When a policy gives the handler a deadline (a timeout.Timeout, say), the
// handler runs on the request's goroutine with that deadline on its
// context, behind a writer that guards the response. If the deadline passes
// before the handler has written anything, the guard answers 504 with
// Sluice-Reject: timeout at once, complete with Content-Length, and from
// then on drops the handler's writes (they return http.ErrHandlerTimeout).
// A handler that has begun its answer is left to finish it: the deadline
// only cancels its context. Unlike http.TimeoutHandler this buffers nothing,
// so streaming handlers keep streaming, and starts no goroutine of its own;
// the price is that the request's goroutine is held until the handler
// returns, as it is without a timeout.
func Handler(h http.Handler, policies ...sluice.Policy) http.Handler {
	return &server{h: h, p: sluice.NewPipeline(policies...), log: slog.New(slog.DiscardHandler)}
}

type server struct {
	h   http.Handler
	p   *sluice.Pipeline
	log *slog.Logger
}

// serveKey finds the serveCall in the contexts the policies derive.
type serveKey struct{}

// serveCall is one request; like the Transport's call it is the context the
// pipeline runs under, so that carrying it costs no extra allocation.
type serveCall struct {
	context.Context
	w        http.ResponseWriter
	r        *http.Request
	h        http.Handler
	ran      bool // the handler was called
	answered bool // the guard answered 504
}

func (c *serveCall) Value(key any) any {
	if key == (serveKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &serveCall{Context: r.Context(), w: w, r: r, h: s.h}
	err := s.p.Do(c, serve)
	switch {
	case err == nil:
		return
	case c.answered:
		s.logShed(r, Rejection{Status: http.StatusGatewayTimeout, Reason: ReasonTimeout})
		return
	case c.ran:
		return // the handler has answered; a policy's late opinion cannot change it
	}
	if rej, ok := RejectionFor(err); ok {
		rej.Write(w)
		s.logShed(r, rej)
		return
	}
	// The handler never ran and no policy shed the request: the client left
	// while it queued, or a limiter's backend failed. No error text goes out.
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

func (s *server) logShed(r *http.Request, rej Rejection) {
	if !s.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "sluicehttp: request shed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("reason", rej.Reason),
		slog.Duration("retry_after", rej.RetryAfter))
}

// serve is the call at the bottom of the server pipeline.
func serve(ctx context.Context) error {
	c := ctx.Value(serveKey{}).(*serveCall)
	c.ran = true
	if ctx.Done() == c.r.Context().Done() {
		// No policy set a deadline: nothing to guard.
		c.h.ServeHTTP(c.w, c.r)
		return nil
	}
	g := &guard{w: c.w, h: c.w.Header().Clone(), ctx: ctx, reqCtx: c.r.Context(), expired: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() {
		defer close(g.expired)
		g.expire()
	})
	c.h.ServeHTTP(g, c.r.WithContext(ctx))
	if !stop() {
		<-g.expired // the answer, if any, is written before we return
	}
	if g.finish() {
		c.answered = true
		return context.Cause(ctx)
	}
	return nil
}

// The states of a guard.
const (
	guardFresh    uint32 = iota // nothing written yet
	guardWrote                  // the handler began its answer (or hijacked)
	guardTimedOut               // the guard answered 504
)

// guard is the ResponseWriter of a handler running under a deadline: the
// first of the handler and the deadline to write wins. A handler's first
// write after the deadline loses even if the deadline's callback has not run
// yet, so the outcome does not depend on which goroutine wakes first. The
// handler writes headers into a map of its own, copied to the real one when
// it commits, so that the guard can answer without racing with it.
type guard struct {
	w       http.ResponseWriter
	h       http.Header
	ctx     context.Context // the handler's, with the deadline
	reqCtx  context.Context // the request's own: done when the client left
	mu      sync.Mutex      // serialises the first write against expire
	state   atomic.Uint32   // read without mu once guardWrote: body writes take no lock
	expired chan struct{}   // closed when the deadline's callback has run
	hijack  bool            // the handler took the connection
}

func (g *guard) Header() http.Header { return g.h }

// commitLocked makes the handler's headers the response's.
func (g *guard) commitLocked() {
	dst := g.w.Header()
	clear(dst)
	maps.Copy(dst, g.h)
}

// begin commits the handler's answer unless the guard answered first.
func (g *guard) begin() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state.Load() {
	case guardTimedOut:
		return false
	case guardFresh:
		if g.answerLocked() {
			return false
		}
		g.commitLocked()
		g.state.Store(guardWrote)
	}
	return true
}

func (g *guard) WriteHeader(code int) {
	if g.state.Load() == guardWrote {
		g.w.WriteHeader(code)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state.Load() {
	case guardTimedOut:
		return
	case guardFresh:
		if g.answerLocked() {
			return
		}
		g.commitLocked()
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			g.w.WriteHeader(code) // informational: the final answer is still to come
			return
		}
		g.state.Store(guardWrote)
	}
	g.w.WriteHeader(code)
}

func (g *guard) Write(p []byte) (int, error) {
	if g.state.Load() != guardWrote && !g.begin() {
		return 0, http.ErrHandlerTimeout
	}
	return g.w.Write(p)
}

// ReadFrom keeps io.Copy into the response as fast as without the guard.
func (g *guard) ReadFrom(src io.Reader) (int64, error) {
	if g.state.Load() != guardWrote && !g.begin() {
		return 0, http.ErrHandlerTimeout
	}
	return io.Copy(g.w, src)
}

// FlushError flushes the response (committing it), for http.ResponseController.
func (g *guard) FlushError() error {
	if g.state.Load() != guardWrote && !g.begin() {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(g.w).Flush()
}

// Flush implements http.Flusher.
func (g *guard) Flush() { _ = g.FlushError() }

// Hijack hands the connection to the handler, unless the guard answered.
func (g *guard) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.Load() == guardTimedOut || (g.state.Load() == guardFresh && g.answerLocked()) {
		return nil, nil, http.ErrHandlerTimeout
	}
	conn, rw, err := http.NewResponseController(g.w).Hijack()
	if err == nil {
		g.state.Store(guardWrote)
		g.hijack = true
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController the underlying writer for what the
// guard does not intercept (read and write deadlines, full duplex).
func (g *guard) Unwrap() http.ResponseWriter { return g.w }

// expire runs when the handler's context ends.
func (g *guard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state.Load() == guardFresh {
		g.answerLocked()
	}
}

// answerLocked answers 504 if nothing is written yet (the caller checked)
// and the handler's deadline has passed with the client still there, and
// reports whether it did.
func (g *guard) answerLocked() bool {
	if g.ctx.Err() == nil || g.reqCtx.Err() != nil || !errors.Is(context.Cause(g.ctx), context.DeadlineExceeded) {
		return false // no deadline yet, the client left, or the context ended for another reason
	}
	g.state.Store(guardTimedOut)
	Rejection{Status: http.StatusGatewayTimeout, Reason: ReasonTimeout}.Write(g.w)
	_ = http.NewResponseController(g.w).Flush()
	return true
}

// finish runs after the handler returned and expire is done or will never
// run; it reports whether the guard answered.
func (g *guard) finish() (timedOut bool) {
	switch g.state.Load() {
	case guardTimedOut:
		return true
	case guardWrote:
		if g.hijack {
			return false
		}
		// Trailers are set in the header map after the body is written.
		maps.Copy(g.w.Header(), g.h)
	default:
		if g.answerLocked() {
			return true // it returned, writing nothing, because its time was up
		}
		// Nothing written: the implicit 200 carries the handler's headers.
		g.commitLocked()
	}
	return false
}
