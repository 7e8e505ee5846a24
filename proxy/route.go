package proxy

import (
	"cmp"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
)

// route is one configured route with its policy instances, as requests
// use it. It is immutable; a reload makes new routes around the same
// (updated) instances.
type route struct {
	s            *Server
	name         string
	prefix       string
	host         string // lower case; "" matches any host
	hostHasPort  bool
	methods      map[string]bool // nil matches any method
	retryMethods map[string]bool
	upstreams    []*upstream      // with pool: one per replica, in replica order
	pool         *routePool       // nil: upstreams are a primary and fallbacks
	admit        *sluice.Pipeline // limiters, bulkhead: before the body is read
	retry        *sluice.Pipeline // the retry policy: after it
	limiters     []sluice.Policy  // the rate limits, in order
	keyed        bool             // a limit needs the request (rate_limit.key)
	hasRetry     bool
	retryOn      func(error) bool // the route's retry decision, nil without retry
	failStatus   map[int]bool     // retry_on_status: also failures
	maxBody      int64
	queue        bool
	queueMethods map[string]bool // nil: every method but the safe ones
	bodyTimeout  time.Duration   // bounds reading the request body
	writeTimeout time.Duration   // bounds writing an answer; 0: none
	trustClient  bool            // pass the client's Sluice-* headers on
	cache        *cacheSlot      // nil without fallback.stale_cache
}

// upstream is one upstream of a route with its breaker and timeout.
type upstream struct {
	url     *url.URL
	name    string // the breaker's name, also used in logs
	breaker *breaker.Breaker
	pipe    *sluice.Pipeline // breaker, timeout
}

func newRoute(s *Server, cfg *config.Config, b builtRoute, c *cacheSlot) *route {
	rc := b.route
	rt := &route{
		s:           s,
		name:        rc.Name,
		prefix:      rc.Match.PathPrefix,
		host:        strings.ToLower(rc.Match.Host),
		limiters:    b.limits,
		hasRetry:    b.retry != nil,
		maxBody:     int64(rc.MaxRetryBody),
		queue:       rc.OnExhausted == config.OnExhaustedQueue,
		trustClient: rc.TrustClientHeaders,
		cache:       c,
	}
	var limit time.Duration // the route's timeout, 0 if none
	if b.timeout != nil {
		limit = b.timeout.Limit()
	}
	rt.bodyTimeout = cmp.Or(rc.BodyTimeout, limit, config.DefaultBodyTimeout)
	rt.writeTimeout = max(cfg.Server.WriteTimeout, limit)
	if len(rc.QueueMethods) > 0 {
		rt.queueMethods = map[string]bool{}
		for _, m := range rc.QueueMethods {
			rt.queueMethods[m] = true
		}
	}
	if rt.host != "" {
		_, _, err := net.SplitHostPort(rt.host)
		rt.hostHasPort = err == nil
	}
	if len(rc.Match.Methods) > 0 {
		rt.methods = map[string]bool{}
		for _, m := range rc.Match.Methods {
			rt.methods[m] = true
		}
	}
	rt.retryMethods = map[string]bool{}
	for _, m := range rc.RetryMethods {
		rt.retryMethods[m] = true
	}
	// Admission (limiters, bulkhead) runs before the request body is read,
	// so that shed requests cost no buffering; the retry runs after it,
	// since whether a request may be repeated depends on its body.
	admit := make([]sluice.Policy, 0, len(b.limits)+1)
	for _, l := range b.limits {
		admit = append(admit, l)
		if rl, ok := l.(*routeLimit); ok && rl.spec.key != "" {
			rt.keyed = true
		}
	}
	admit = append(admit, b.bulkhead)
	rt.admit = sluice.NewPipeline(admit...)
	rt.retry = sluice.NewPipeline(b.retry)
	rt.failStatus = map[int]bool{}
	if b.retry != nil {
		rt.retryOn = b.retry.Config().RetryOn
		for _, code := range cfg.Policies[rc.Policy].Retry.RetryOnStatus {
			rt.failStatus[code] = true
		}
	}
	rt.pool = b.pool
	for i, u := range rc.UpstreamURLs() {
		up := &upstream{url: u, name: u.Host}
		if rt.pool != nil {
			// The replica's breaker is the pool's; wrapping it in the
			// policy's breaker too would count each outcome twice.
			up.name = rt.pool.p.Replicas()[i].Breaker().Name()
		} else if b.breakers != nil {
			up.breaker = b.breakers[i]
			up.name = up.breaker.Name()
		}
		up.pipe = sluice.NewPipeline(up.breaker, b.timeout)
		rt.upstreams = append(rt.upstreams, up)
	}
	return rt
}

// matches reports whether r belongs to the route; p is r's cleaned path.
func (rt *route) matches(r *http.Request, p string) bool {
	if !strings.HasPrefix(p, rt.prefix) {
		return false
	}
	if rt.methods != nil && !rt.methods[r.Method] {
		return false
	}
	if rt.host == "" {
		return true
	}
	h := r.Host
	if !rt.hostHasPort {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
	}
	return strings.EqualFold(h, rt.host)
}

// match returns the first route r matches, or nil.
func (st *runtime) match(r *http.Request) *route {
	p := cleanPath(r.URL.Path)
	for _, rt := range st.routes {
		if rt.matches(r, p) {
			return rt
		}
	}
	return nil
}

// route returns the route named name, or nil.
func (st *runtime) route(name string) *route {
	for _, rt := range st.routes {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// cleanPath resolves "." and ".." elements and doubled slashes before
// routing, keeping a trailing slash, so that /api/../admin cannot pass as a
// request for /api/. A path that cleaning changes is then refused with 400
// by serveProxy (see ambiguousPath) if a route takes it, so what is
// forwarded is the path as sent, which is the path that was matched.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "/.") && !strings.Contains(p, "//") {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// ambiguousPath reports whether r's path could be read as another path by
// the upstream or a server behind it than the one the route matched: it has
// "." or ".." segments (also with path parameters, "..;"), empty segments
// ("//"), a backslash or NUL, an encoded slash or backslash (%2F, %5C), or
// an encoded dot, slash or backslash encoded once more (%252E). The proxy
// refuses such requests with 400 instead of guessing which reading the
// upstream will take. It does not allocate.
func ambiguousPath(r *http.Request) bool {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return false // "*" (OPTIONS *) or an authority (CONNECT)
	}
	if strings.ContainsAny(p, "\\\x00") || strings.Contains(p, "//") || hasEncoded(p, "2e", "2f", "5c") {
		return true
	}
	if hasEncoded(r.URL.RawPath, "2f", "5c") {
		return true
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// hasEncoded reports whether s holds "%" followed by one of the hex pairs
// given in lower case, in either case.
func hasEncoded(s string, pairs ...string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		for _, pair := range pairs {
			if lower(s[i+1]) == pair[0] && lower(s[i+2]) == pair[1] {
				return true
			}
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// queues reports whether a failed request with this method may go to the
// dead-letter queue: a method the route lists in queue_methods, or, when it
// lists none, any method but the safe ones (RFC 9110 §9.2.1), whose replayed
// answer nobody would read.
func (rt *route) queues(method string) bool {
	if rt.queueMethods != nil {
		return rt.queueMethods[method]
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// idempotent reports whether r may be sent more than once: its method is
// idempotent (RFC 9110 §9.2.2), it carries an Idempotency-Key, or the route
// lists its method in retry_methods.
func (rt *route) idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != "" {
		return true
	}
	return rt.retryMethods[r.Method]
}

// isFailure reports whether an upstream answer with this status is a
// failure that policies count and retries may repeat: 429, any 5xx, and
// the statuses of the policy's retry_on_status. Other answers, 4xx
// included, are the upstream's to give and go to the client as they are.
func (rt *route) isFailure(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || rt.failStatus[code]
}

// targetURL is r's URL on up: up's scheme and host, up's path (if any) as
// a prefix of r's, and r's query.
func targetURL(up *upstream, r *http.Request) *url.URL {
	u := *r.URL
	u.Scheme = up.url.Scheme
	u.Host = up.url.Host
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if p := up.url.Path; p != "" && p != "/" {
		u.Path = joinPath(p, r.URL.Path)
		if r.URL.RawPath != "" || up.url.RawPath != "" {
			u.RawPath = joinPath(up.url.EscapedPath(), r.URL.EscapedPath())
		} else {
			u.RawPath = ""
		}
	}
	return &u
}

// joinPath joins two path pieces with exactly one slash between them.
func joinPath(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs && b != "":
		return a + "/" + b
	}
	return a + b
}
