package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome is what became of one request through the sidecar, the outcome
// label of sluice_proxy_requests_total.
type Outcome uint8

// The outcomes of a proxied request.
const (
	// OutcomeProxied: an upstream's answer, on the first try.
	OutcomeProxied Outcome = iota
	// OutcomeRetried: an upstream's answer after more than one try (a
	// retry, or a fallback upstream).
	OutcomeRetried
	// OutcomeCircuitOpen: refused because every breaker of the route was open.
	OutcomeCircuitOpen
	// OutcomeBulkheadFull: refused by the route's bulkhead.
	OutcomeBulkheadFull
	// OutcomeRateLimited: refused by a rate limiter.
	OutcomeRateLimited
	// OutcomeTimeout: answered 504 because the timeout passed.
	OutcomeTimeout
	// OutcomeBudgetExhausted: refused by the retry budget.
	OutcomeBudgetExhausted
	// OutcomeRejected: refused by another sluice policy.
	OutcomeRejected
	// OutcomeQueued: stored in the dead-letter queue and answered 202.
	OutcomeQueued
	// OutcomeStale: answered from the stale cache.
	OutcomeStale
	// OutcomeError: no usable answer: no upstream answered (502), the
	// request body could not be read (400), or the answer broke off.
	OutcomeError
	// OutcomeCanceled: the client left before any answer was written.
	OutcomeCanceled
	// OutcomeBodyTimeout: answered 408 because the request body did not
	// arrive within the route's body_timeout.
	OutcomeBodyTimeout

	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"proxied", "retried", "circuit-open", "bulkhead-full", "rate-limited", "timeout",
	"budget-exhausted", "rejected", "queued", "stale", "error", "canceled",
	"body-timeout",
}

// String returns the outcome's label value.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// codeClasses are the code label's values: the status class, or "none"
// when nothing was written.
var codeClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func codeClass(code int) int {
	if code < 100 || code > 599 {
		return 0
	}
	return code / 100
}

// The sidecar's request families; Proxy exports them.
var proxyFamilies = []Family{
	{"sluice_proxy_requests_total", counter, "Requests the sidecar answered, by route, status class (2xx...; none when the client left first) and outcome.", []string{"route", "code", "outcome"}},
	{"sluice_proxy_request_duration_seconds", histogram, "Time from a request's arrival to the end of its answer, by route.", []string{"route"}},
	{"sluice_proxy_upstream_attempts_total", counter, "Requests sent to each upstream of a route: every try, retries and fallbacks included.", []string{"route", "upstream"}},
}

// ProxyFamilies returns the families a Proxy exports, in a fixed order.
// The slice is a copy.
func ProxyFamilies() []Family {
	out := make([]Family, len(proxyFamilies))
	for i, f := range proxyFamilies {
		f.Labels = append([]string(nil), f.Labels...)
		out[i] = f
	}
	return out
}

// Proxy holds the sidecar's own request metrics, the RED set of a
// reverse proxy: requests by route, status class and outcome, a latency
// histogram per route, and tries per upstream. Unlike the Collector's
// families these are live counters, since nothing else keeps them. Resolve
// a route's metrics once with Route and keep them: recording then
// allocates nothing. It is safe for concurrent use; pass it as
// Config.Proxy to export it.
type Proxy struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	attempts *prometheus.CounterVec
}

var _ prometheus.Collector = (*Proxy)(nil)

// NewProxy returns an empty Proxy.
func NewProxy() *Proxy {
	f := proxyFamilies
	return &Proxy{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: f[0].Name, Help: f[0].Help}, f[0].Labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: f[1].Name, Help: f[1].Help, Buckets: prometheus.DefBuckets}, f[1].Labels),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: f[2].Name, Help: f[2].Help}, f[2].Labels),
	}
}

// Describe sends the descriptors of the Proxy's families.
func (p *Proxy) Describe(ch chan<- *prometheus.Desc) {
	p.requests.Describe(ch)
	p.duration.Describe(ch)
	p.attempts.Describe(ch)
}

// Collect sends the Proxy's current values.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	p.requests.Collect(ch)
	p.duration.Collect(ch)
	p.attempts.Collect(ch)
}

// Route returns the metrics of the route named name. Two calls with one
// name share their series, so a route rebuilt by a reload keeps counting
// where it was.
func (p *Proxy) Route(name string) *ProxyRoute {
	return &ProxyRoute{p: p, name: name, duration: p.duration.WithLabelValues(name)}
}

// ProxyRoute records the requests of one route. Its (status class,
// outcome) series are created on first use, so that only the
// combinations that happen are exported.
type ProxyRoute struct {
	p        *Proxy
	name     string
	duration prometheus.Observer
	counts   [len(codeClasses)][numOutcomes]atomic.Pointer[counterRef]
}

type counterRef struct{ c prometheus.Counter }

// Observe records one request answered with status code (0 if nothing
// was written) and outcome o, d after it arrived.
func (r *ProxyRoute) Observe(code int, o Outcome, d time.Duration) {
	if o >= numOutcomes {
		o = OutcomeError
	}
	class := codeClass(code)
	slot := &r.counts[class][o]
	ref := slot.Load()
	if ref == nil {
		ref = &counterRef{r.p.requests.WithLabelValues(r.name, codeClasses[class], o.String())}
		if !slot.CompareAndSwap(nil, ref) {
			ref = slot.Load()
		}
	}
	ref.c.Inc()
	r.duration.Observe(d.Seconds())
}

// Upstream returns the counter of tries this route sends to upstream (its
// host:port). Resolve it once and keep it.
func (r *ProxyRoute) Upstream(upstream string) *ProxyUpstream {
	return &ProxyUpstream{c: r.p.attempts.WithLabelValues(r.name, upstream)}
}

// ProxyUpstream counts the tries a route sends to one of its upstreams.
type ProxyUpstream struct{ c prometheus.Counter }

// Attempt counts one try.
func (u *ProxyUpstream) Attempt() { u.c.Inc() }
