package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/proxy/pool"
	"github.com/sluice-go/sluice/sluicehttp"
)

const copyBufSize = 32 << 10

// errCommitted is returned by an attempt that finds the response already
// under way to the client: nothing can be tried again.
var errCommitted = errors.New("proxy: response already sent to the client")

// neverRetry is given to build (build.go): errors of attempts that cannot be
// repeated whatever the retry policy says.
func neverRetry(err error) bool {
	var se *streamError
	return errors.As(err, &se) || errors.Is(err, errCommitted) || errors.Is(err, sluicehttp.ErrBodyNotRewindable)
}

// answerError is the error of a try that reached the upstream and got a
// failure answer (429, 5xx, or a status of retry_on_status). It unwraps to
// a *sluice.StatusError, which the policies classify by status, or, when a
// sluice layer further down marked the answer final (Sluice-Reject or
// Sluice-Retry: no), to a *sluicehttp.NoRetryError, which is never retried.
// The response itself stays with the exchange, which gives it to the
// client as the upstream's last answer.
type answerError struct {
	upstream string
	code     int
	cause    error
}

func (e *answerError) Error() string {
	return "proxy: upstream " + e.upstream + " answered " + strconv.Itoa(e.code) + ": " + e.cause.Error()
}

func (e *answerError) Unwrap() error { return e.cause }

// asAnswer returns the upstream answer err reports for this request, if
// any. It does not look inside a rejection that carries an earlier call's
// failure (a sluice.RejectionCauser, such as an open breaker's rejection
// holding the answer that tripped it): that answer was another request's,
// and this one was refused without reaching the upstream.
func asAnswer(err error) (*answerError, bool) {
	for err != nil {
		switch e := err.(type) {
		case *answerError:
			return e, true
		case sluice.RejectionCauser:
			return nil, false
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if ae, ok := asAnswer(inner); ok {
					return ae, true
				}
			}
			return nil, false
		default:
			return nil, false
		}
	}
	return nil, false
}

// tryError is the error of a try that got no answer: the upstream could not
// be reached, the connection broke, or the try was cut short.
type tryError struct {
	upstream string
	err      error
}

func (e *tryError) Error() string { return "proxy: upstream " + e.upstream + ": " + e.err.Error() }
func (e *tryError) Unwrap() error { return e.err }

// streamError is the error of a response that broke after its header went
// to the client: it counts against the upstream but cannot be retried.
type streamError struct {
	upstream string
	err      error
}

func (e *streamError) Error() string {
	return "proxy: upstream " + e.upstream + ": response cut off: " + e.err.Error()
}
func (e *streamError) Unwrap() error { return e.err }

// exchange is one client request on its way through a route.
type exchange struct {
	s         *Server
	rt        *route
	w         http.ResponseWriter
	rc        *http.ResponseController
	r         *http.Request
	body      *sluicehttp.Body // nil until read; then &bodyStore
	bodyStore sluicehttp.Body
	// bodyTimedOut is set when reading a streamed body, which the
	// transport does while a try runs, hit the read deadline of
	// body_timeout (see clientBody).
	bodyTimedOut atomic.Bool
	header       http.Header // sent upstream, shared by every try
	idempotent   bool        // may be sent more than once
	tries        int         // round trips made
	last         *http.Response
	committed    bool   // the response header went to the client
	cacheKey     string // "" when the answer is not for the stale cache
	// tried holds the replicas a pool route's attempts went to (ntried of
	// them), so that a retry goes to another; answeredAt is when the
	// current try's answer header arrived (zero if none).
	tried      [maxTried]*pool.Replica
	ntried     int
	answeredAt time.Time
}

// serve runs r through the route and answers it.
func (rt *route) serve(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r) {
		rt.serveUpgrade(w, r)
		return
	}
	ex := &exchange{
		s:      rt.s,
		rt:     rt,
		w:      w,
		rc:     http.NewResponseController(w),
		r:      r,
		header: outgoingHeader(r, rt.trustClient),
	}
	if rt.cache != nil && r.Method == http.MethodGet && r.Header.Get("Authorization") == "" {
		ex.cacheKey = r.Host + " " + r.URL.RequestURI() + " " + r.Header.Get("Accept-Encoding")
	}
	actx := r.Context()
	if rt.keyed {
		actx = context.WithValue(actx, requestKey{}, r) // for rate_limit.key
	}
	err := rt.admit.Do(actx, ex.admitted)
	noteResult(w, err)
	switch {
	case errors.Is(err, errBodyTimeout) || (!ex.committed && ex.body != nil && ex.bodyTimedOut.Load()):
		noteResult(w, errBodyTimeout)
		w.Header().Set("Connection", "close")
		http.Error(w, "sluice: the request body took too long", http.StatusRequestTimeout)
		return
	case errors.Is(err, errReadBody):
		http.Error(w, "sluice: cannot read the request body", http.StatusBadRequest)
		return
	case ex.body == nil:
		closeUnread(w, r) // shed before its body was read
	}
	ex.finish(err)
}

// closeUnread marks the answer to a request whose body was not read as the
// connection's last. net/http would otherwise read what is left of the
// body before answering, to reuse the connection, and a client that sends
// it slowly would hold the connection for as long as it likes.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) {
		w.Header().Set("Connection", "close")
	}
}

// errReadBody is the error of a request whose body could not be read, and
// errBodyTimeout that of one whose body did not arrive within the route's
// body_timeout.
var (
	errReadBody    = errors.New("proxy: reading the request body")
	errBodyTimeout = errors.New("proxy: the request body took longer than body_timeout")
)

// admitted runs once the limiters and the bulkhead have let the request in:
// it reads the body (up to the route's limit) within the route's
// body_timeout, decides whether the request may be repeated, and runs the
// retry policy over the upstreams. A body that does not arrive in time ends
// the request, and with it the bulkhead permit, with errBodyTimeout.
func (ex *exchange) admitted(ctx context.Context) error {
	rt, r := ex.rt, ex.r
	bounded := hasBody(r) && ex.rc.SetReadDeadline(time.Now().Add(rt.bodyTimeout)) == nil
	// The body is kept in memory if it fits max_retry_body, so that every
	// try and a queued message get all of it; a bigger one streams once.
	src := http.Request{Body: http.NoBody}
	if hasBody(r) {
		src.Body, src.ContentLength = &clientBody{r: r.Body, timedOut: &ex.bodyTimedOut}, r.ContentLength
	}
	if err := ex.bodyStore.Reset(&src, rt.maxBody); err != nil {
		rt.s.log.Debug("proxy: reading the request body", slog.String("route", rt.name), slog.Any("error", err))
		if isTimeout(err) {
			return errBodyTimeout
		}
		return errReadBody
	}
	ex.body = &ex.bodyStore
	buf, kept := ex.body.Bytes()
	if bounded && kept {
		_ = ex.rc.SetReadDeadline(time.Time{}) // all of it is here
	}
	if kept && len(buf) > 0 {
		ex.header.Del("Expect") // the body is here: no need to ask
	}
	ex.idempotent = rt.idempotent(r) && ex.body.Rewindable()
	return rt.retry.Do(sluice.WithIdempotent(ctx, ex.idempotent), ex.attempt)
}

// attempt is one attempt of the retry policy: the route's upstreams in
// order, each through its breaker and timeout, until one answers well.
func (ex *exchange) attempt(ctx context.Context) error {
	if ex.rt.pool != nil {
		return ex.attemptPool(ctx)
	}
	if ex.committed {
		return errCommitted
	}
	var errs [4]error
	list := errs[:0]
	for i, up := range ex.rt.upstreams {
		if i > 0 && !ex.mayFallOver(list[len(list)-1]) {
			break
		}
		err := up.pipe.Do(ctx, func(ctx context.Context) error { return ex.try(ctx, up) })
		if err == nil || ex.committed || ctx.Err() != nil {
			return err
		}
		list = append(list, err)
	}
	return pickError(list)
}

// mayFallOver reports whether, after err from one upstream, the request
// may go to the next: always for a request that may be sent twice, and
// otherwise only when the failed upstream never received it (its breaker
// was open, or the connection was refused).
func (ex *exchange) mayFallOver(err error) bool {
	if ex.committed || ex.body == nil || ex.body.Consumed() {
		return false
	}
	if ex.idempotent {
		return true
	}
	if errors.Is(err, breaker.ErrOpen) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// pickError chooses the error of an attempt from those of its upstreams:
// the last one that reached an upstream, or, when every breaker refused,
// the refusal whose next probe comes first.
func pickError(errs []error) error {
	var best error
	for i := len(errs) - 1; i >= 0; i-- {
		if _, answered := asAnswer(errs[i]); answered || !errors.Is(errs[i], sluice.ErrRejected) {
			return errs[i]
		}
		if best == nil {
			best = errs[i]
			continue
		}
		bw, _ := sluice.RetryAfter(best)
		if w, _ := sluice.RetryAfter(errs[i]); w > 0 && (bw <= 0 || w < bw) {
			best = errs[i]
		}
	}
	return best
}

// try sends the request to one upstream, under ctx (the upstream's breaker
// and timeout), as one sluicehttp attempt. A good answer is streamed to
// the client at once, still under ctx (the attempt is Bound); a failure
// answer is kept for the exchange, readable after ctx is gone, and
// returned as an *answerError.
func (ex *exchange) try(ctx context.Context, up *upstream) error {
	if ex.body.Consumed() {
		return sluicehttp.ErrBodyNotRewindable
	}
	ex.tries++
	noteTry(ex.w, up)
	a := sluicehttp.Attempter{Base: ex.s.transport, Failure: ex.rt, Clock: ex.s.clock, Bound: true}
	resp, err := a.Attempt(ctx, ex.outgoing(up), ex.body)
	if resp != nil {
		ex.answeredAt = time.Now()
	}
	switch {
	case err == nil:
		return ex.deliver(ctx, resp, up)
	case resp != nil:
		ex.keepLast(resp)
		return &answerError{upstream: up.name, code: resp.StatusCode, cause: err}
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	return &tryError{upstream: up.name, err: err}
}

// Failed is route.isFailure as a sluicehttp.FailureTest, which the route
// is for its attempts.
func (rt *route) Failed(resp *http.Response) bool { return rt.isFailure(resp.StatusCode) }

// outgoing returns the request for one try to up; the attempt sets its
// body.
func (ex *exchange) outgoing(up *upstream) *http.Request { return newOutgoing(ex.r, ex.header, up) }

// newOutgoing returns in as sent to up with header, which tries share:
// net/http's Transport never changes a request's header.
func newOutgoing(in *http.Request, header http.Header, up *upstream) *http.Request {
	out := new(http.Request)
	*out = *in
	out.URL = targetURL(up, in)
	out.Host = "" // the upstream's own host; the client's is in X-Forwarded-Host
	out.RequestURI = ""
	out.Header = header
	out.Close = false
	return out
}

// keepLast makes resp the exchange's last failure answer, dropping the one
// it replaces.
func (ex *exchange) keepLast(resp *http.Response) {
	ex.dropLast()
	ex.last = resp
}

func (ex *exchange) dropLast() {
	if ex.last != nil {
		sluicehttp.DiscardBody(ex.last)
		ex.last = nil
	}
}

// deliver streams a good answer to the client (storing it in the stale
// cache on the way when it may be). After the header is written the
// response is committed; an error then is a *streamError.
func (ex *exchange) deliver(ctx context.Context, resp *http.Response, up *upstream) error {
	defer resp.Body.Close()
	var cached []byte
	cacheable := ex.cacheKey != "" && cacheableAnswer(resp, ex.s.maxCacheBody())
	if cacheable {
		limit := ex.s.maxCacheBody()
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return &tryError{upstream: up.name, err: err}
		}
		if int64(len(data)) <= limit {
			cached = data
			ex.rt.cache.put(ex.cacheKey, resp, data)
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	}
	if cached != nil {
		ex.writeHeader(resp, false)
		if _, err := ex.w.Write(cached); err != nil {
			return nil // the client left; the upstream did its part
		}
		ex.writeTrailers(resp)
		return nil
	}
	bp := ex.s.bufs.Get().(*[]byte)
	defer ex.s.bufs.Put(bp)
	buf, n, eof := *bp, 0, false
	if _, bounded := ctx.Deadline(); bounded {
		// A try that can time out sends the header only with the first
		// byte of the body (or its end): until then a timeout can still be
		// answered 504 instead of cutting off an answer that has begun.
		var err error
		n, err = readSome(resp.Body, buf)
		if n == 0 && err != nil && err != io.EOF {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return &tryError{upstream: up.name, err: err}
		}
		eof = err == io.EOF
	}
	ex.writeHeader(resp, false)
	if err := ex.copyRest(resp, buf, n, eof); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return &streamError{upstream: up.name, err: err}
	}
	ex.writeTrailers(resp)
	return nil
}

// readSome reads into buf until it gets at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			if err == io.EOF && n > 0 {
				err = nil // the next read reports it again
			}
			return n, err
		}
	}
}

// writeHeader writes resp's status and end-to-end header to the client,
// announcing its trailers, and commits the exchange. final marks an answer
// given after the retry policy was done with it.
func (ex *exchange) writeHeader(resp *http.Response, final bool) {
	h := ex.w.Header()
	copyHeader(h, resp.Header)
	removeHopHeaders(h)
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h.Set("Trailer", strings.Join(names, ", "))
	}
	if final && ex.rt.hasRetry {
		h.Set(sluicehttp.HeaderRetry, "no")
	}
	ex.committed = true
	if d := ex.rt.writeTimeout; d > 0 {
		// The answer must reach a client that reads it within the route's
		// time, so that a client that stops reading cannot keep the
		// bulkhead's permit. net/http lifts the deadline once the answer
		// is written, before the connection serves another request.
		_ = ex.rc.SetWriteDeadline(time.Now().Add(d))
	}
	ex.w.WriteHeader(resp.StatusCode)
}

func (ex *exchange) writeTrailers(resp *http.Response) {
	for k, vv := range resp.Trailer {
		ex.w.Header()[http.TrailerPrefix+k] = vv
	}
}

// copyBody streams resp's body to the client, flushing as it goes when the
// length is unknown (a stream, server-sent events). It returns the error
// reading from the upstream; when the client's side breaks instead, the
// upstream did nothing wrong and copyBody returns nil.
func (ex *exchange) copyBody(resp *http.Response) error {
	bp := ex.s.bufs.Get().(*[]byte)
	defer ex.s.bufs.Put(bp)
	return ex.copyRest(resp, *bp, 0, false)
}

// copyRest is copyBody for a body whose first n bytes are in buf already
// (all of it, if eof is set); it uses buf for the rest.
func (ex *exchange) copyRest(resp *http.Response, buf []byte, n int, eof bool) error {
	flush := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var rerr error
	if eof {
		rerr = io.EOF
	}
	for first := true; ; first = false {
		if !first {
			n, rerr = resp.Body.Read(buf)
		}
		if n > 0 {
			if _, werr := ex.w.Write(buf[:n]); werr != nil {
				return nil
			}
			if flush {
				if err := ex.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return nil
				}
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil && ex.r.Context().Err() != nil:
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

// finish answers the client once the route's policies are done with the
// request, unless the answer is under way already.
func (ex *exchange) finish(err error) {
	defer ex.dropLast()
	if ex.committed || err == nil {
		if err != nil && ex.r.Context().Err() == nil {
			ex.s.log.Debug("proxy: response cut off", slog.String("route", ex.rt.name), slog.Any("error", err))
			ex.abort()
		}
		return
	}
	if ex.r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	if ex.serveStale(err) || ex.enqueue(err) {
		return
	}
	if _, answered := asAnswer(err); answered && ex.last != nil {
		ex.writeLast()
		return
	}
	if rej, ok := sluicehttp.RejectionFor(err); ok {
		ex.s.log.Debug("proxy: request shed", slog.String("route", ex.rt.name), slog.String("reason", rej.Reason))
		rej.Write(ex.w)
		return
	}
	if ex.last != nil {
		ex.writeLast()
		return
	}
	ex.s.log.Debug("proxy: no upstream answered", slog.String("route", ex.rt.name), slog.Any("error", err))
	h := ex.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if ex.rt.hasRetry {
		h.Set(sluicehttp.HeaderRetry, "no")
	}
	ex.w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(ex.w, "bad gateway\n")
}

// writeLast gives the client the upstream's last failure answer.
func (ex *exchange) writeLast() {
	resp := ex.last
	ex.writeHeader(resp, true)
	if err := ex.copyBody(resp); err != nil {
		ex.dropLast()
		ex.abort()
	}
	ex.writeTrailers(resp)
}

// abort ends a response that broke after it was committed by cutting the
// client's connection (net/http does so for http.ErrAbortHandler), so that
// the client sees it cut off instead of a complete-looking short answer.
func (ex *exchange) abort() {
	panic(http.ErrAbortHandler)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// isTimeout reports whether err is a network deadline's: the read deadline
// that bounds a request body.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
