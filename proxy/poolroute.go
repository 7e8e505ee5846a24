package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy/pool"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/sluicehttp"
)

// This file runs the upstreams of a route that has a pool (balance,
// outlier or health_check): one pool.Pool per route, each replica's
// ejection state a breaker registered in the registry, so that the health
// report, metrics and dashboard list the replicas. The replica breakers
// stay local even with storage.breakers: the pool drives each through the
// breaker's Shared link, which a breaker has only one of.

// maxTried bounds the replicas an exchange remembers as tried, so that
// retries go elsewhere; beyond it, later retries may meet a replica again.
const maxTried = 8

// routePool is a route's pool with what it needs beside it: the active
// health checks and the settings it was made from, to tell on a reload
// whether it can carry over with its ejection state.
type routePool struct {
	p       *pool.Pool
	checker *pool.Checker // nil without health_check
	key     poolKey
}

// poolKey is everything a pool is made from; a reload with the same key
// keeps the pool.
type poolKey struct {
	replicas []pool.Endpoint
	balancer pool.Balancer
	outlier  pool.Outlier
	health   pool.Health
	path     string
}

func (k poolKey) same(o poolKey) bool {
	return slices.Equal(k.replicas, o.replicas) && k.balancer == o.balancer &&
		k.outlier == o.outlier && k.health == o.health && k.path == o.path
}

// close stops the checks, then the replica breakers' timers.
func (rp *routePool) close() {
	if rp.checker != nil {
		_ = rp.checker.Close()
	}
	_ = rp.p.Close()
}

// breakers returns the replica breakers, in replica order.
func (rp *routePool) breakers() []*breaker.Breaker {
	out := make([]*breaker.Breaker, 0, len(rp.p.Replicas()))
	for _, r := range rp.p.Replicas() {
		out = append(out, r.Breaker())
	}
	return out
}

// makePool returns the pool of route r: the previous build's when its
// settings did not change, else a new one with its checks started (with
// transport for the checks' client). A new pool's breakers replace
// any of the same names in reg when applied (see registerPool).
func makePool(r config.Route, opts buildOptions, transport http.RoundTripper) (*routePool, bool, error) {
	pc := config.PoolConfig(r)
	key := poolKey{pc.Replicas, pc.Balancer, pc.Outlier, pc.Health, r.Pool.HealthPath}
	if prev := opts.previous; prev != nil {
		if old, ok := prev.pools[r.Name]; ok && old.key.same(key) {
			return old, false, nil
		}
	}
	pc.OnStateChange = opts.onBreakerChange
	p, err := pool.New(pc)
	if err != nil {
		return nil, false, err
	}
	rp := &routePool{p: p, key: key}
	if key.path != "" && pc.Health.Interval > 0 {
		check, err := pool.HTTPCheck(&http.Client{Transport: transport}, key.path)
		if err == nil {
			rp.checker, err = p.StartChecks(check)
		}
		if err != nil {
			_ = p.Close()
			return nil, false, err
		}
	}
	return rp, true, nil
}

// registerPool puts a new pool's replica breakers in reg, replacing those
// of the same names (an earlier pool's, whose state does not carry over).
func registerPool(reg *registry.Registry, rp *routePool) error {
	for _, b := range rp.breakers() {
		if old, ok := reg.LookupBreaker(b.Name()); ok && old != b {
			reg.RemoveBreaker(b.Name())
		}
		if _, ok := reg.LookupBreaker(b.Name()); ok {
			continue
		}
		if err := reg.AddBreaker(b); err != nil {
			return err
		}
	}
	return nil
}

// noReplicaError is the error of an attempt the pool had no replica for:
// a rejection like an open breaker's, so that the route's fallbacks (stale
// cache, queue) apply and the client gets 503.
type noReplicaError struct{}

func (noReplicaError) Error() string { return "proxy: " + pool.ErrNoReplica.Error() }

func (noReplicaError) Is(target error) bool {
	return target == pool.ErrNoReplica || target == breaker.ErrOpen || target == sluice.ErrRejected
}

// attemptPool is one attempt of the retry policy on a pool route: a
// replica the exchange has not tried yet (if there is one), through the
// route's timeout, its outcome and time to the answer's header reported to
// the pool.
func (ex *exchange) attemptPool(ctx context.Context) error {
	if ex.committed {
		return errCommitted
	}
	p := ex.rt.pool.p
	a, err := p.PickAt(time.Now(), ex.tried[:ex.ntried]...)
	if err != nil {
		return noReplicaError{}
	}
	if ex.ntried < maxTried {
		ex.tried[ex.ntried] = a.Replica()
		ex.ntried++
	}
	up := ex.rt.upstreams[a.Replica().Index()]
	start := time.Now()
	ex.answeredAt = time.Time{}
	err = up.pipe.Do(ctx, func(ctx context.Context) error { return ex.try(ctx, up) })
	end := cmpTime(ex.answeredAt, time.Now())
	a.DoneAt(time.Now(), end.Sub(start), ex.outcome(err))
	return err
}

// cmpTime returns t, or def when t is zero.
func cmpTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// outcome classifies an attempt's error for the pool: the client's own
// cancellation, and an attempt never sent, count neither way; a 5xx
// answer, a connection that failed or broke, and a timeout count against
// the replica; any other answer is a success.
func (ex *exchange) outcome(err error) pool.Outcome {
	switch {
	case err == nil:
		return pool.Success
	case ex.r.Context().Err() != nil, errors.Is(err, errCommitted), errors.Is(err, sluicehttp.ErrBodyNotRewindable):
		return pool.Ignored
	}
	if ae, ok := asAnswer(err); ok && ae.code < 500 {
		return pool.Success
	}
	return pool.Failure
}
