package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/ratelimit"
)

// cachedAnswer is a good answer to a GET, kept to be served stale.
type cachedAnswer struct {
	status int
	header http.Header
	body   []byte
	age    time.Duration // the upstream's Age when it was stored
}

// cacheSlot holds a route's stale cache across reloads: a reload that
// keeps fallback.stale_cache keeps the cache and its answers; one that
// changes it starts a new cache in the same slot. The registry lists the
// slot, which reports the statistics of the cache in it.
type cacheSlot struct {
	name     string
	staleFor time.Duration
	c        atomic.Pointer[cache.Cache[*cachedAnswer]]
}

// Name returns the route's name, the cache's name in the registry.
func (c *cacheSlot) Name() string { return c.name }

// Stats returns the statistics of the route's current cache.
func (c *cacheSlot) Stats() cache.Stats { return c.c.Load().Stats() }

func newStaleCache(name string, staleFor time.Duration, opts Options, s *Server) (*cache.Cache[*cachedAnswer], error) {
	return cache.New[*cachedAnswer](cache.Config{
		Name:         name,
		TTL:          cache.NeverFresh,
		StaleIfError: staleFor,
		MaxEntries:   opts.CacheEntries,
		Clock:        s.clock,
		ServeStale:   func(context.Context, error) bool { return true },
	})
}

// put stores a good answer whose whole body is data.
func (c *cacheSlot) put(key string, resp *http.Response, data []byte) {
	h := resp.Header.Clone()
	removeHopHeaders(h)
	var age time.Duration
	if v := h.Get("Age"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			age = time.Duration(n) * time.Second
		}
		h.Del("Age")
	}
	c.c.Load().Put(key, &cachedAnswer{status: resp.StatusCode, header: h, body: data, age: age})
}

// stale returns the answer kept for key if it is within the route's
// stale_cache window, and how old it is.
func (c *cacheSlot) stale(ctx context.Context, key string, cause error) (*cachedAnswer, time.Duration, bool) {
	v, info, err := c.c.Load().Get(ctx, key, func(context.Context) (*cachedAnswer, error) { return nil, cause })
	if err != nil || info.Outcome != cache.Stale || v == nil {
		return nil, 0, false
	}
	return v, info.Age + v.age, true
}

// cacheableAnswer reports whether a good answer may be kept for other
// clients: a 2xx other than 206, not marked no-store or private, setting
// no cookie, varying on nothing but Accept-Encoding (which is part of the
// key), and not announced bigger than limit.
func cacheableAnswer(resp *http.Response, limit int64) bool {
	if resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusPartialContent {
		return false
	}
	if resp.ContentLength > limit || len(resp.Header["Set-Cookie"]) > 0 {
		return false
	}
	for _, v := range resp.Header.Values("Cache-Control") {
		if tokenIn(v, "no-store") || tokenIn(v, "private") {
			return false
		}
	}
	for _, v := range resp.Header.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Accept-Encoding") {
				return false
			}
		}
	}
	return true
}

// serveStale answers from the route's stale cache, if it holds an answer
// for the request within its window. A rate-limited request is not served
// stale: the limit is the client's to respect.
func (ex *exchange) serveStale(err error) bool {
	if ex.cacheKey == "" || errors.Is(err, ratelimit.ErrLimited) {
		return false
	}
	ans, age, ok := ex.rt.cache.stale(ex.r.Context(), ex.cacheKey, err)
	if !ok {
		return false
	}
	h := ex.w.Header()
	copyHeader(h, ans.header)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	h.Set(HeaderFallback, FallbackStaleCache)
	ex.committed = true
	ex.w.WriteHeader(ans.status)
	_, _ = ex.w.Write(ans.body)
	return true
}

func (s *Server) maxCacheBody() int64 {
	if s.opts.MaxCacheBody > 0 {
		return s.opts.MaxCacheBody
	}
	return DefaultMaxCacheBody
}
