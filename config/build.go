package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// DefaultJitterRatio is the spread of `jitter: proportional` when
// jitter_ratio is left out: the SysManage resilience document's ±10 %.
const DefaultJitterRatio = 0.1

// DefaultOpenForMultiplier is how much a breaker's open period grows each
// time it opens again without having closed, when max_open_for is set (the
// file has no key for the factor; max_open_for alone asks for growth).
const DefaultOpenForMultiplier = 2

// RouteLimiterSuffix is appended to a route's name to name the limiter of
// the route's own rate_limit, which applies in addition to the policy's
// (named after the route alone).
const RouteLimiterSuffix = "/route"

// BuildOptions adjusts Build.
type BuildOptions struct {
	// Previous is the Built of the configuration running until now, for a
	// live reload. Breakers it holds that the new configuration no longer
	// names (a route or upstream removed) are removed from the registry once
	// the new configuration is applied, and retry budgets whose settings did
	// not change are carried over with their window. If nil, nothing is
	// removed or carried over.
	Previous *Built

	// NeverRetry, if set, names errors that must never be retried whatever
	// the retry policy or retry_on_status say: the proxy passes a predicate
	// for attempts whose response already reached the client. If nil, only
	// the usual rules apply.
	NeverRetry func(err error) bool

	// OnBreakerChange, if set, becomes the OnStateChange of every breaker
	// built, for logging. If nil, breakers announce nothing.
	OnBreakerChange func(breaker.StateChange)
}

// Built holds the policy instances Build made or updated for a Config, one
// BuiltRoute per route in the order of Config.Routes. The instances live in
// the registry; Built only points at them.
type Built struct {
	// Routes are the routes' instances, in the order of Config.Routes.
	Routes []BuiltRoute

	budgets map[string]builtBudget // retry name → its explicit budget
}

type builtBudget struct {
	cfg    retry.BudgetConfig
	budget *retry.RatioBudget
}

// BuiltRoute is the policy instances of one route. A section its policy does
// not have (and a route without a policy) leaves the field nil.
type BuiltRoute struct {
	// Route is the route as configured.
	Route Route
	// Limiters are the policy's limiter (named after the route) and then
	// the route's own (named route + RouteLimiterSuffix), each only if
	// configured.
	Limiters []*ratelimit.TokenBucket
	// Bulkhead bounds the route's concurrent requests; named after the route.
	Bulkhead *bulkhead.Bulkhead
	// Retry retries the route's requests; named after the route.
	Retry *retry.Retry
	// Breakers has one breaker per upstream, in the order of
	// Route.Upstreams, named by BreakerName; nil when the policy has no
	// circuit_breaker.
	Breakers []*breaker.Breaker
	// Timeout bounds each try of one upstream: the route's timeout, else
	// the policy's; nil when neither is set. It is registered under the
	// route's name; a changed limit replaces it (see registry.SetTimeout).
	Timeout *timeout.Timeout
}

// BreakerName returns the name of the breaker of the i-th upstream of a
// route: "route/host:port" as the upstream URL writes its host, with "#i"
// (1-based) added when two upstreams of the route share a host. A breaker
// per upstream host, not per route, is what an Envoy user expects from
// outlier detection: a failing primary does not shut the route's fallbacks
// out.
func BreakerName(r Route, i int) string {
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

// Build turns the policies of c into instances in reg, route by route, and
// returns them. Every route gets instances of its own, named after it (see
// BuiltRoute): policies are templates, so two routes naming one policy do
// not share a bulkhead or a breaker.
//
// Instances are made with the registry's Set methods, so building a changed
// Config into the registry of a running one applies each change in place
// and keeps the state that still applies: an open breaker stays open, a
// bulkhead keeps its permits, a limiter its tokens, a retry policy its
// statistics. Build first checks every policy configuration and changes
// nothing in reg when one is refused, so a reload is all or nothing.
//
// Zero knobs take the policy packages' defaults, with these translations:
// backoff linear is base_delay × n; a left-out backoff is exponential; a
// left-out base_delay, max_delay or multiplier comes from
// retry.DefaultBackoff (a max_delay below base_delay is raised to it);
// jitter proportional without jitter_ratio is ±DefaultJitterRatio;
// `budget: off` is retry.NoBudget; max_open_for makes open periods grow by
// DefaultOpenForMultiplier; a time window (window) wins over a count window
// (window_calls), which the parser never lets appear together anyway.
//
// The retry policies built never retry a rejection by a sluice policy
// (sluice.ErrRejected) nor what opts.NeverRetry names; with retry_on_status
// an upstream answer (a *sluice.StatusError) is retried exactly when its
// status is listed, and every other error as the shared classifier says.
func (c *Config) Build(reg *registry.Registry, opts BuildOptions) (*Built, error) {
	if reg == nil {
		return nil, errors.New("config: Build needs a registry")
	}
	plans := make([]routePlan, 0, len(c.Routes))
	var errs []error
	for i := range c.Routes {
		p, err := c.plan(c.Routes[i], opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plans = append(plans, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	out := &Built{Routes: make([]BuiltRoute, 0, len(plans)), budgets: map[string]builtBudget{}}
	keep := map[string]bool{}
	for _, p := range plans {
		br, err := p.apply(reg)
		if err != nil {
			return nil, err
		}
		if p.budget != nil {
			out.budgets[p.route.Name] = *p.budget
		}
		for _, name := range br.instanceNames() {
			keep[name] = true
		}
		out.Routes = append(out.Routes, br)
	}
	if prev := opts.Previous; prev != nil {
		// Forget the instances of routes (or policy sections) that are gone,
		// so that health and metrics stop listing them.
		for _, r := range prev.Routes {
			for _, b := range r.Breakers {
				if !keep["breaker:"+b.Name()] {
					reg.RemoveBreaker(b.Name())
				}
			}
			for _, l := range r.Limiters {
				if !keep["limiter:"+l.Name()] {
					reg.RemoveLimiter(l.Name())
				}
			}
			if r.Bulkhead != nil && !keep["bulkhead:"+r.Bulkhead.Name()] {
				reg.RemoveBulkhead(r.Bulkhead.Name())
			}
			if r.Retry != nil && !keep["retry:"+r.Retry.Name()] {
				reg.RemoveRetry(r.Retry.Name())
			}
			if r.Timeout != nil && !keep["timeout:"+r.Timeout.Name()] {
				reg.RemoveTimeout(r.Timeout.Name())
			}
		}
	}
	return out, nil
}

// instanceNames lists the route's registry instances as kind:name.
func (br BuiltRoute) instanceNames() []string {
	var out []string
	for _, b := range br.Breakers {
		out = append(out, "breaker:"+b.Name())
	}
	for _, l := range br.Limiters {
		out = append(out, "limiter:"+l.Name())
	}
	if br.Bulkhead != nil {
		out = append(out, "bulkhead:"+br.Bulkhead.Name())
	}
	if br.Retry != nil {
		out = append(out, "retry:"+br.Retry.Name())
	}
	if br.Timeout != nil {
		out = append(out, "timeout:"+br.Timeout.Name())
	}
	return out
}

// routePlan is a route's policy configurations, checked and ready to apply.
type routePlan struct {
	route    Route
	limiters []ratelimit.Config
	bulkhead *bulkhead.Config
	retry    *retry.Config
	budget   *builtBudget
	breakers []breaker.Config
	timeout  *timeout.Timeout
}

// plan translates and checks a route's policies without touching a
// registry.
func (c *Config) plan(r Route, opts BuildOptions) (routePlan, error) {
	p := routePlan{route: r}
	fail := func(kind string, err error) (routePlan, error) {
		return routePlan{}, fmt.Errorf("config: route %q: %s: %w", r.Name, kind, err)
	}
	var pol Policy
	if r.Policy != "" {
		var ok bool
		if pol, ok = c.Policies[r.Policy]; !ok {
			return fail("policy", fmt.Errorf("no policy named %q", r.Policy))
		}
	}
	if pol.RateLimit != nil {
		lc := LimiterConfig(*pol.RateLimit, r.Name)
		if _, err := ratelimit.New(lc); err != nil {
			return fail("rate_limit", err)
		}
		p.limiters = append(p.limiters, lc)
	}
	if r.RateLimit != nil {
		lc := LimiterConfig(*r.RateLimit, r.Name+RouteLimiterSuffix)
		if _, err := ratelimit.New(lc); err != nil {
			return fail("rate_limit", err)
		}
		p.limiters = append(p.limiters, lc)
	}
	if pol.Bulkhead != nil {
		bc := bulkhead.Config{
			Name:          r.Name,
			MaxConcurrent: pol.Bulkhead.MaxConcurrent,
			MaxQueue:      pol.Bulkhead.MaxQueue,
			MaxWait:       pol.Bulkhead.MaxWait,
		}
		if _, err := bulkhead.New(bc); err != nil {
			return fail("bulkhead", err)
		}
		p.bulkhead = &bc
	}
	if pol.Retry != nil {
		rc, bb, err := retryConfig(*pol.Retry, r.Name, opts)
		if err != nil {
			return fail("retry", err)
		}
		if err := rc.Validate(); err != nil {
			return fail("retry", err)
		}
		p.retry, p.budget = &rc, bb
	}
	if pol.CircuitBreaker != nil {
		for i := range r.Upstreams {
			bc := BreakerConfig(*pol.CircuitBreaker, BreakerName(r, i))
			bc.OnStateChange = opts.OnBreakerChange
			b, err := breaker.New(bc)
			if err != nil {
				return fail("circuit_breaker", err)
			}
			b.Close()
			p.breakers = append(p.breakers, bc)
		}
	}
	if d := cmpOr(r.Timeout, pol.Timeout); d > 0 {
		t, err := timeout.New(timeout.Config{Name: r.Name, Timeout: d})
		if err != nil {
			return fail("timeout", err)
		}
		p.timeout = t
	}
	return p, nil
}

func cmpOr[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// apply makes or updates the planned instances in reg.
func (p routePlan) apply(reg *registry.Registry) (BuiltRoute, error) {
	br := BuiltRoute{Route: p.route}
	if p.timeout != nil {
		t, err := reg.SetTimeout(p.timeout.Name(), timeout.Config{Timeout: p.timeout.Limit()})
		if err != nil {
			return BuiltRoute{}, err
		}
		br.Timeout = t
	}
	for _, lc := range p.limiters {
		l, err := reg.SetLimiter(lc.Name, lc)
		if err != nil {
			return BuiltRoute{}, err
		}
		br.Limiters = append(br.Limiters, l)
	}
	if p.bulkhead != nil {
		b, err := reg.SetBulkhead(p.bulkhead.Name, *p.bulkhead)
		if err != nil {
			return BuiltRoute{}, err
		}
		br.Bulkhead = b
	}
	if p.retry != nil {
		x, err := reg.SetRetry(p.retry.Name, *p.retry)
		if err != nil {
			return BuiltRoute{}, err
		}
		br.Retry = x
	}
	for _, bc := range p.breakers {
		b, err := reg.SetBreaker(bc.Name, bc)
		if err != nil {
			return BuiltRoute{}, err
		}
		br.Breakers = append(br.Breakers, b)
	}
	return br, nil
}

// LimiterConfig translates a rate_limit section into the ratelimit package's
// Config named name; zero fields keep that package's defaults. The sidecar
// and the simulator share it, so a file means the same in both.
func LimiterConfig(rl RateLimit, name string) ratelimit.Config {
	return ratelimit.Config{
		Name:    name,
		Rate:    rl.Rate,
		Per:     rl.Per,
		Burst:   rl.Burst,
		Smooth:  rl.Smooth,
		MaxWait: rl.MaxWait,
	}
}

// BreakerConfig translates a circuit_breaker section into the breaker
// package's Config named name: window picks a time-based window and
// window_calls a count-based one; max_open_for caps an open time that
// doubles each time the breaker opens again.
func BreakerConfig(cb CircuitBreaker, name string) breaker.Config {
	bc := breaker.Config{
		Name:                  name,
		FailureThreshold:      cb.FailureThreshold,
		FailureRateThreshold:  cb.FailureRate,
		SlowCallDuration:      cb.SlowCallDuration,
		SlowCallRateThreshold: cb.SlowCallRate,
		MinimumCalls:          cb.MinimumCalls,
		OpenFor:               cb.OpenFor,
		HalfOpenCalls:         cb.HalfOpenCalls,
		SuccessThreshold:      cb.SuccessThreshold,
		HalfOpenMaxWait:       cb.HalfOpenMaxWait,
	}
	switch {
	case cb.Window > 0:
		bc.WindowType = breaker.TimeWindow
		bc.WindowDuration = cb.Window
	case cb.WindowCalls > 0:
		bc.WindowType = breaker.CountWindow
		bc.WindowSize = cb.WindowCalls
	}
	if cb.MaxOpenFor > 0 {
		bc.OpenBackoff = breaker.Backoff{Multiplier: DefaultOpenForMultiplier, Max: cb.MaxOpenFor}
	}
	return bc
}

// RetryConfig translates a retry section into the retry package's Config
// named name; zero fields keep that package's defaults. never, if not nil,
// vetoes retrying an error (the sidecar passes its do-not-retry rule). The
// budget is left to the caller, which decides whether instances share one:
// budget: off gives retry.NoBudget, anything else the package default until
// the caller sets Budget (see BudgetConfig). The sidecar and the simulator
// share it, so a file means the same in both.
func RetryConfig(rc Retry, name string, never func(error) bool) retry.Config {
	out := retry.Config{
		Name:        name,
		MaxAttempts: rc.MaxAttempts,
		MaxElapsed:  rc.MaxElapsed,
		Backoff:     backoff(rc),
		RetryOn:     retryOn(rc.RetryOnStatus, never),
	}
	if rc.MaxDelay > 0 { // the cap on any delay, a server's Retry-After included
		out.RetryAfterMax = max(rc.MaxDelay, cmpOr(rc.BaseDelay, retry.DefaultBackoff().Base()))
	}
	switch rc.Jitter {
	case JitterNone:
		out.Jitter = retry.NoJitter
	case JitterFull:
		out.Jitter = retry.FullJitter
	case JitterEqual:
		out.Jitter = retry.EqualJitter
	case JitterProportional:
		out.Jitter = retry.Proportional(cmpOr(rc.JitterRatio, DefaultJitterRatio))
	}
	if rc.Budget != nil && rc.Budget.Off {
		out.Budget = retry.NoBudget{}
	}
	return out
}

// BudgetConfig returns the explicit budget of a retry section, and whether
// there is one (false for no budget key, which means the package default, and
// for budget: off).
func (rc Retry) BudgetConfig() (retry.BudgetConfig, bool) {
	b := rc.Budget
	if b == nil || b.Off {
		return retry.BudgetConfig{}, false
	}
	return retry.BudgetConfig{Ratio: b.Ratio, Window: b.Window, MinRetriesPerSecond: b.MinPerSecond}, true
}

// retryConfig translates a retry section for Build. The budget it returns is
// the explicit one it made or carried over from the previous build, nil for
// the package default or off.
func retryConfig(rc Retry, name string, opts BuildOptions) (retry.Config, *builtBudget, error) {
	out := RetryConfig(rc, name, opts.NeverRetry)
	bc, ok := rc.BudgetConfig()
	if !ok {
		return out, nil, nil
	}
	var bb *builtBudget
	if prev := opts.Previous; prev != nil {
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

func backoff(rc Retry) retry.Backoff {
	def := retry.DefaultBackoff()
	base := cmpOr(rc.BaseDelay, def.Base())
	maxDelay := max(cmpOr(rc.MaxDelay, def.Cap()), base)
	switch rc.Backoff {
	case BackoffLinear:
		return retry.Linear(base, base, maxDelay)
	case BackoffConstant:
		return retry.Constant(base)
	case BackoffDecorrelated:
		return retry.Decorrelated(base, maxDelay)
	}
	if rc.Backoff == "" && rc.BaseDelay == 0 && rc.MaxDelay == 0 && rc.Multiplier == 0 {
		return retry.Backoff{} // the package default
	}
	return retry.Exponential(base, cmpOr(rc.Multiplier, def.Multiplier()), maxDelay)
}

// retryOn decides which failed attempts are retried; see Build.
func retryOn(statuses []int, never func(error) bool) func(error) bool {
	statuses = slices.Clone(statuses)
	return func(err error) bool {
		if never != nil && never(err) {
			return false
		}
		if errors.Is(err, sluice.ErrRejected) {
			return false
		}
		var se *sluice.StatusError
		if len(statuses) > 0 && !errors.Is(err, timeout.ErrExceeded) && errors.As(err, &se) {
			return slices.Contains(statuses, se.Code)
		}
		return sluice.Classify(nil, err).Retryable
	}
}
