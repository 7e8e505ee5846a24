package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// This file turns a config.Config into the sidecar's policy instances in a
// registry, route by route, and carries what still applies across a
// reload. config says what a policy section means (its translations into
// the policy packages' Configs); the rules here are the sidecar's own: an
// instance per route, a breaker per upstream, the route limiter's name,
// what a retry must never repeat, and what a reload keeps.

// routeLimiterSuffix is appended to a route's name to name the limiter of
// the route's own rate_limit, which applies in addition to the policy's
// (named after the route alone).
const routeLimiterSuffix = "/route"

// buildOptions adjusts build.
type buildOptions struct {
	// previous is the built of the configuration running until now, for a
	// live reload. Instances it holds that the new configuration no longer
	// names (a route, an upstream or a policy section removed) are removed
	// from the registry once the new configuration is applied, and retry
	// budgets whose settings did not change are carried over with their
	// window. If nil, nothing is removed or carried over.
	previous *built

	// neverRetry, if set, names errors that must never be retried whatever
	// the retry policy or retry_on_status say: the Server passes its rule
	// for attempts that cannot be repeated. If nil, only the rules of
	// config.RetryConfig apply.
	neverRetry func(err error) bool

	// onBreakerChange, if set, becomes the OnStateChange of every breaker
	// built, for logging. If nil, breakers announce nothing.
	onBreakerChange func(breaker.StateChange)

	// limits is storage.ratelimit's Redis client: if set, every rate
	// limit is kept on it, shared by the fleet. If nil, limits are
	// in-process token buckets.
	limits *sharedClient

	// breakers is storage.breakers' Redis client: if set, every breaker
	// shares its state with the fleet through it (shareBreaker). If nil,
	// breakers are local.
	breakers *sharedClient

	// instance names this process in the shared breakers' records.
	instance string

	// clock and log are given to the limits build makes outside the
	// registry (shared or keyed ones).
	clock sluice.Clock
	log   *slog.Logger

	// transport carries the pools' health checks (the Server's transport
	// to the upstreams). If nil, http.DefaultTransport.
	transport http.RoundTripper
}

// built holds the policy instances build made or updated for a Config, one
// builtRoute per route in the order of Config.Routes. The instances live in
// the registry; built only points at them.
type built struct {
	routes  []builtRoute
	budgets map[string]builtBudget // retry name → its explicit budget
	limits  map[string]*routeLimit // limits outside the registry, by name
	// shared holds the shared breakers' links, by breaker name; empty
	// without storage.breakers.
	shared map[string]*sharedBreaker
	// pools holds the routes' replica pools, by route name.
	pools map[string]*routePool
}

// closeUnused closes the limits and the breaker syncs of b that next does
// not hold any more. A sync's breaker, if still running (requests on the
// old routes), goes on by its local rules.
func (b *built) closeUnused(next *built) {
	for name, l := range b.limits {
		if next == nil || next.limits[name] != l {
			l.close()
		}
	}
	for name, sb := range b.shared {
		if next == nil || next.shared[name] != sb {
			_ = sb.sync.Close()
		}
	}
	for name, rp := range b.pools {
		if next == nil || next.pools[name] != rp {
			rp.close()
		}
	}
}

type builtBudget struct {
	cfg    retry.BudgetConfig
	budget *retry.RatioBudget
}

// builtRoute is the policy instances of one route. A section its policy
// does not have (and a route without a policy) leaves the field nil.
type builtRoute struct {
	route config.Route
	// limiters are the in-process token buckets among the route's limits,
	// registered in the registry: the policy's limiter (named after the
	// route) and then the route's own (named route + routeLimiterSuffix),
	// each only if configured and neither shared nor keyed.
	limiters []*ratelimit.TokenBucket
	// limits are all of the route's limits in order, as policies: the
	// token buckets of limiters, and the routeLimits of shared or keyed
	// limits.
	limits   []sluice.Policy
	bulkhead *bulkhead.Bulkhead // named after the route
	retry    *retry.Retry       // named after the route
	// breakers has one breaker per upstream, in the order of
	// route.Upstreams, named by breakerName; nil when the policy has no
	// circuit_breaker.
	breakers []*breaker.Breaker
	// timeout bounds each try of one upstream: the route's timeout, else
	// the policy's; nil when neither is set. It is registered under the
	// route's name; a changed limit replaces it (see registry.SetTimeout).
	timeout *timeout.Timeout
	// pool is the route's replica pool; nil for a route without one.
	pool *routePool
}

// breakerName returns the name of the breaker of the i-th upstream of a
// route: "route/host:port" as the upstream URL writes its host, with "#i"
// (1-based) added when two upstreams of the route share a host. A breaker
// per upstream host, not per route, is what an Envoy user expects from
// outlier detection: a failing primary does not shut the route's fallbacks
// out.
func breakerName(r config.Route, i int) string {
	host := func(s string) string {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return s
		}
		return u.Host
	}
	h := host(r.Upstreams[i])
	for j := range r.Upstreams {
		if j != i && host(r.Upstreams[j]) == h {
			return r.Name + "/" + h + "#" + strconv.Itoa(i+1)
		}
	}
	return r.Name + "/" + h
}

// build turns the policies of cfg into instances in reg, route by route,
// and returns them. Every route gets instances of its own, named after it
// (see builtRoute): policies are templates, so two routes naming one policy
// do not share a bulkhead or a breaker.
//
// Instances are made with the registry's Set methods, so building a changed
// Config into the registry of a running one applies each change in place
// and keeps the state that still applies: an open breaker stays open, a
// bulkhead keeps its permits, a limiter its tokens, a retry policy its
// statistics. build first checks the whole configuration (cfg.Validate)
// and changes nothing in reg when it is refused, so a reload is all or
// nothing.
//
// The retry policies built follow config.RetryConfig and never retry what
// opts.neverRetry names.
func build(reg *registry.Registry, cfg *config.Config, opts buildOptions) (*built, error) {
	if reg == nil {
		return nil, errors.New("proxy: build needs a registry")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	plans := make([]routePlan, 0, len(cfg.Routes))
	var errs []error
	for _, r := range cfg.Routes {
		p, err := plan(reg, cfg, r, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: route %q: %w", r.Name, err))
			continue
		}
		plans = append(plans, p)
	}
	if len(errs) > 0 {
		closeNewPools(plans)
		return nil, errors.Join(errs...)
	}

	out := &built{routes: make([]builtRoute, 0, len(plans)), budgets: map[string]builtBudget{},
		limits: map[string]*routeLimit{}, shared: map[string]*sharedBreaker{}, pools: map[string]*routePool{}}
	keep := map[string]bool{}
	for _, p := range plans {
		br, err := p.apply(reg, out, opts)
		if err != nil {
			closeNewPools(plans)
			out.closeUnused(opts.previous)
			return nil, err
		}
		if p.budget != nil {
			out.budgets[p.route.Name] = *p.budget
		}
		for _, name := range br.instanceNames() {
			keep[name] = true
		}
		out.routes = append(out.routes, br)
	}
	if prev := opts.previous; prev != nil {
		prev.removeExcept(reg, keep)
	}
	return out, nil
}

// removeExcept forgets the instances of b that keep does not name (as
// kind:name), so that health and metrics stop listing routes, upstreams
// and policy sections that are gone.
func (b *built) removeExcept(reg *registry.Registry, keep map[string]bool) {
	for _, r := range b.routes {
		for _, x := range r.allBreakers() {
			if !keep["breaker:"+x.Name()] {
				reg.RemoveBreaker(x.Name())
			}
		}
		for _, l := range r.limiters {
			if !keep["limiter:"+l.Name()] {
				reg.RemoveLimiter(l.Name())
			}
		}
		if r.bulkhead != nil && !keep["bulkhead:"+r.bulkhead.Name()] {
			reg.RemoveBulkhead(r.bulkhead.Name())
		}
		if r.retry != nil && !keep["retry:"+r.retry.Name()] {
			reg.RemoveRetry(r.retry.Name())
		}
		if r.timeout != nil && !keep["timeout:"+r.timeout.Name()] {
			reg.RemoveTimeout(r.timeout.Name())
		}
	}
}

// instanceNames lists the route's registry instances as kind:name.
func (br builtRoute) instanceNames() []string {
	var out []string
	for _, b := range br.allBreakers() {
		out = append(out, "breaker:"+b.Name())
	}
	for _, l := range br.limiters {
		out = append(out, "limiter:"+l.Name())
	}
	if br.bulkhead != nil {
		out = append(out, "bulkhead:"+br.bulkhead.Name())
	}
	if br.retry != nil {
		out = append(out, "retry:"+br.retry.Name())
	}
	if br.timeout != nil {
		out = append(out, "timeout:"+br.timeout.Name())
	}
	return out
}

// routePlan is a route's policy configurations, checked and ready to apply.
type routePlan struct {
	route    config.Route
	limiters []limitSpec
	bulkhead *bulkhead.Config
	retry    *retry.Config
	budget   *builtBudget
	breakers []breaker.Config
	// shared holds, beside each of breakers, its link to the fleet (nil
	// without storage.breakers).
	shared  []*sharedBreaker
	timeout *timeout.Config
	// pool is the route's replica pool; newPool marks one made for this
	// build (not carried over), which a failed build closes.
	pool    *routePool
	newPool bool
}

// plan translates a route's policies, already validated, into the
// configurations of its instances, without changing the registry (it
// reads it for the breakers' links). Only making a new retry budget or a
// breaker sync can still fail.
func plan(reg *registry.Registry, cfg *config.Config, r config.Route, opts buildOptions) (routePlan, error) {
	p := routePlan{route: r}
	pol := cfg.Policies[r.Policy] // the zero Policy for a route without one
	if pol.RateLimit != nil {
		p.limiters = append(p.limiters, limitSpec{config.LimiterConfig(*pol.RateLimit, r.Name), pol.RateLimit.Key, opts.limits})
	}
	if r.RateLimit != nil {
		p.limiters = append(p.limiters, limitSpec{config.LimiterConfig(*r.RateLimit, r.Name+routeLimiterSuffix), r.RateLimit.Key, opts.limits})
	}
	if pol.Bulkhead != nil {
		bc := config.BulkheadConfig(*pol.Bulkhead, r.Name)
		p.bulkhead = &bc
	}
	if pol.Retry != nil {
		rc, bb, err := retryConfig(*pol.Retry, r.Name, opts)
		if err != nil {
			return routePlan{}, fmt.Errorf("retry: %w", err)
		}
		p.retry, p.budget = &rc, bb
	}
	if r.Pool != nil {
		rp, fresh, err := makePool(r, opts, opts.transport)
		if err != nil {
			return routePlan{}, fmt.Errorf("pool: %w", err)
		}
		p.pool, p.newPool = rp, fresh
	}
	if pol.CircuitBreaker != nil && r.Pool == nil {
		for i := range r.Upstreams {
			bc := config.BreakerConfig(*pol.CircuitBreaker, breakerName(r, i))
			bc.OnStateChange = opts.onBreakerChange
			var sb *sharedBreaker
			if opts.breakers != nil {
				var err error
				if sb, err = shareBreaker(reg, bc, opts); err != nil {
					return routePlan{}, err
				}
				bc.Shared = sb.sync
			}
			p.breakers = append(p.breakers, bc)
			p.shared = append(p.shared, sb)
		}
	}
	if d := cmp.Or(r.Timeout, pol.Timeout); d > 0 {
		p.timeout = &timeout.Config{Name: r.Name, Timeout: d}
	}
	return p, nil
}

// apply makes or updates the planned instances in reg, and the limits
// outside the registry in out (reusing those of opts.previous whose spec
// did not change).
func (p routePlan) apply(reg *registry.Registry, out *built, opts buildOptions) (builtRoute, error) {
	br := builtRoute{route: p.route, pool: p.pool}
	if p.pool != nil {
		if err := registerPool(reg, p.pool); err != nil {
			return builtRoute{}, err
		}
		out.pools[p.route.Name] = p.pool
	}
	if p.timeout != nil {
		t, err := reg.SetTimeout(p.timeout.Name, timeout.Config{Timeout: p.timeout.Timeout})
		if err != nil {
			return builtRoute{}, err
		}
		br.timeout = t
	}
	for _, spec := range p.limiters {
		if spec.shared == nil && spec.key == "" {
			l, err := reg.SetLimiter(spec.cfg.Name, spec.cfg)
			if err != nil {
				return builtRoute{}, err
			}
			br.limiters = append(br.limiters, l)
			br.limits = append(br.limits, l)
			continue
		}
		rl, err := reuseLimit(spec, opts)
		if err != nil {
			return builtRoute{}, err
		}
		out.limits[spec.cfg.Name] = rl
		br.limits = append(br.limits, rl)
	}
	if p.bulkhead != nil {
		b, err := reg.SetBulkhead(p.bulkhead.Name, *p.bulkhead)
		if err != nil {
			return builtRoute{}, err
		}
		br.bulkhead = b
	}
	if p.retry != nil {
		x, err := reg.SetRetry(p.retry.Name, *p.retry)
		if err != nil {
			return builtRoute{}, err
		}
		br.retry = x
	}
	for i, bc := range p.breakers {
		b, err := setBreaker(reg, bc)
		if err != nil {
			return builtRoute{}, err
		}
		br.breakers = append(br.breakers, b)
		if sb := p.shared[i]; sb != nil {
			sb.b.Store(b)
			out.shared[bc.Name] = sb
		}
	}
	return br, nil
}

// allBreakers returns the route's breakers: those per upstream and the
// replica breakers of its pool.
func (br builtRoute) allBreakers() []*breaker.Breaker {
	if br.pool == nil {
		return br.breakers
	}
	return append(slices.Clone(br.breakers), br.pool.breakers()...)
}

// closeNewPools closes the pools a failed build made.
func closeNewPools(plans []routePlan) {
	for _, p := range plans {
		if p.newPool {
			p.pool.close()
		}
	}
}

// setBreaker makes or updates the breaker bc names. One whose link to the
// fleet changes (sharing turned on or off, another Redis, another mode) is
// made anew, since a breaker keeps its Config.Shared for life: it loses its
// local state, and its old sync stops with it.
func setBreaker(reg *registry.Registry, bc breaker.Config) (*breaker.Breaker, error) {
	if old, ok := reg.LookupBreaker(bc.Name); ok && old.Config().Shared != bc.Shared {
		reg.RemoveBreaker(bc.Name)
	}
	return reg.SetBreaker(bc.Name, bc)
}

// reuseLimit returns the previous build's limit of spec's name when its
// spec is the same, and a new one otherwise.
func reuseLimit(spec limitSpec, opts buildOptions) (*routeLimit, error) {
	if prev := opts.previous; prev != nil {
		if old, ok := prev.limits[spec.cfg.Name]; ok && old.spec.same(spec) {
			return old, nil
		}
	}
	rl, err := newRouteLimit(spec, opts.clock, cmp.Or(opts.log, slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("config: rate limit %q: %w", spec.cfg.Name, err)
	}
	return rl, nil
}

// retryConfig translates a retry section for build: config.RetryConfig,
// with opts.neverRetry vetoing first, and the explicit budget made anew or
// carried over from the previous build when its settings did not change.
// The budget it returns is nil for the package default or off.
func retryConfig(rc config.Retry, name string, opts buildOptions) (retry.Config, *builtBudget, error) {
	out := config.RetryConfig(rc, name)
	if never := opts.neverRetry; never != nil {
		inner := out.RetryOn
		out.RetryOn = func(err error) bool { return !never(err) && inner(err) }
	}
	bc, ok := rc.BudgetConfig()
	if !ok {
		return out, nil, nil
	}
	var bb *builtBudget
	if prev := opts.previous; prev != nil {
		if old, found := prev.budgets[name]; found && old.cfg == bc {
			bb = &old
		}
	}
	if bb == nil {
		rb, err := retry.NewBudget(bc)
		if err != nil {
			return retry.Config{}, nil, err
		}
		bb = &builtBudget{cfg: bc, budget: rb}
	}
	out.Budget = bb.budget
	return out, bb, nil
}
