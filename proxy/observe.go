package proxy

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/sluicehttp"
)

// observer keeps the sidecar's request metrics (metrics.Proxy): for each
// request the route, the status class and outcome of its answer, its
// duration, and the tries sent to each upstream. The metrics of a route
// and of an upstream are resolved on their first request and kept in
// copy-on-write maps keyed by name, so that a route rebuilt by a reload
// keeps its series and a request allocates nothing: its recorder comes
// from a pool, and the lookups are reads of immutable maps.
type observer struct {
	m         *metrics.Proxy
	routes    atomic.Pointer[map[string]*metrics.ProxyRoute]
	upstreams atomic.Pointer[map[upstreamKey]*metrics.ProxyUpstream]
	mu        sync.Mutex // serialises the copies of the maps
	pool      sync.Pool  // *recorder
}

type upstreamKey struct{ route, upstream string }

func newObserver() *observer {
	o := &observer{m: metrics.NewProxy()}
	o.pool.New = func() any { return new(recorder) }
	return o
}

// route returns the metrics of the route named name.
func (o *observer) route(name string) *metrics.ProxyRoute {
	if m := o.routes.Load(); m != nil {
		if r, ok := (*m)[name]; ok {
			return r
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.routes.Load()
	if old != nil {
		if r, ok := (*old)[name]; ok {
			return r
		}
	}
	next := make(map[string]*metrics.ProxyRoute, 1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	r := o.m.Route(name)
	next[name] = r
	o.routes.Store(&next)
	return r
}

// upstream returns the try counter of upstream (host:port) on route.
func (o *observer) upstream(route, upstream string) *metrics.ProxyUpstream {
	k := upstreamKey{route, upstream}
	if m := o.upstreams.Load(); m != nil {
		if u, ok := (*m)[k]; ok {
			return u
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.upstreams.Load()
	if old != nil {
		if u, ok := (*old)[k]; ok {
			return u
		}
	}
	next := make(map[upstreamKey]*metrics.ProxyUpstream, 1)
	if old != nil {
		for kk, v := range *old {
			next[kk] = v
		}
	}
	u := o.route(route).Upstream(upstream)
	next[k] = u
	o.upstreams.Store(&next)
	return u
}

// recorder is the client's ResponseWriter as a route's exchange sees it:
// it notes the status written, the tries made and the policies' final
// error, and records them when the request is done. It unwraps to the
// server's ResponseWriter, so that http.ResponseController (flushing,
// hijacking an upgrade) reaches the real connection.
type recorder struct {
	http.ResponseWriter
	s     *Server
	route *metrics.ProxyRoute
	name  string // the route's name
	start time.Time
	code  int
	tries int
	err   error
}

// observe starts the recording of a request that rt serves; pass the
// recorder to rt.serve as its ResponseWriter and call done when it
// returns.
func (s *Server) observe(w http.ResponseWriter, rt *route) *recorder {
	rec := s.obs.pool.Get().(*recorder)
	*rec = recorder{ResponseWriter: w, s: s, route: s.obs.route(rt.name), name: rt.name, start: s.clock.Now()}
	return rec
}

// done records the request and returns the recorder to the pool. It runs
// deferred, also when the handler aborts a broken answer.
func (rec *recorder) done() {
	rec.route.Observe(rec.code, rec.outcome(), rec.s.clock.Now().Sub(rec.start))
	s := rec.s
	*rec = recorder{}
	s.obs.pool.Put(rec)
}

// Unwrap returns the server's ResponseWriter, for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// WriteHeader notes the first final status (or 101 Switching Protocols).
func (rec *recorder) WriteHeader(code int) {
	if rec.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.code = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.ResponseWriter.Write(p)
}

// noteResult tells the recorder of w (if w is one) the error the route's
// policies ended with.
func noteResult(w http.ResponseWriter, err error) {
	if rec, ok := w.(*recorder); ok {
		rec.err = err
	}
}

// noteTry counts one try of up by the route whose recorder is w.
func noteTry(w http.ResponseWriter, up *upstream) {
	rec, ok := w.(*recorder)
	if !ok {
		return
	}
	rec.tries++
	rec.s.obs.upstream(rec.name, up.url.Host).Attempt()
}

// outcome tells what became of the request, following the order in which
// the exchange chooses its answer: queued, stale, the upstream's answer,
// a policy's rejection, a failure.
func (rec *recorder) outcome() metrics.Outcome {
	if rec.code == 0 {
		return metrics.OutcomeCanceled
	}
	h := rec.Header()
	switch {
	case errors.Is(rec.err, errBodyTimeout):
		return metrics.OutcomeBodyTimeout
	case rec.code == http.StatusAccepted && h.Get(HeaderQueued) != "":
		return metrics.OutcomeQueued
	case h.Get(HeaderFallback) == FallbackStaleCache:
		return metrics.OutcomeStale
	case rec.err == nil && rec.tries == 0 && h.Get(sluicehttp.HeaderReject) != "":
		return rejectionOutcome(h.Get(sluicehttp.HeaderReject)) // refused before any try (an upgrade)
	case rec.err == nil:
		return rec.answered()
	}
	var se *streamError
	if errors.As(rec.err, &se) || errors.Is(rec.err, errCommitted) {
		return metrics.OutcomeError
	}
	if _, answered := asAnswer(rec.err); answered {
		return rec.answered()
	}
	if rej, ok := sluicehttp.RejectionFor(rec.err); ok && rej.Status == rec.code {
		return rejectionOutcome(rej.Reason)
	}
	return metrics.OutcomeError
}

// answered is the outcome of an upstream's answer given to the client.
func (rec *recorder) answered() metrics.Outcome {
	if rec.tries > 1 {
		return metrics.OutcomeRetried
	}
	return metrics.OutcomeProxied
}

func rejectionOutcome(reason string) metrics.Outcome {
	switch reason {
	case sluicehttp.ReasonCircuitOpen:
		return metrics.OutcomeCircuitOpen
	case sluicehttp.ReasonBulkheadFull:
		return metrics.OutcomeBulkheadFull
	case sluicehttp.ReasonRateLimited:
		return metrics.OutcomeRateLimited
	case sluicehttp.ReasonTimeout:
		return metrics.OutcomeTimeout
	case sluicehttp.ReasonBudgetExhausted:
		return metrics.OutcomeBudgetExhausted
	}
	return metrics.OutcomeRejected
}
