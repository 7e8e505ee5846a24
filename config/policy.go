package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// This file says what a policy section means in the policy packages' own
// terms: each translation is pure (a section and a name in, a package
// Config out), and Validate checks the results with the packages' own
// Validate methods. The sidecar and the simulator both start from here, so
// a file means the same in both.

// DefaultJitterRatio is the spread of `jitter: proportional` when
// jitter_ratio is left out: the SysManage resilience document's ±10 %.
const DefaultJitterRatio = 0.1

// DefaultOpenForMultiplier is how much a breaker's open period grows each
// time it opens again without having closed, when max_open_for is set (the
// file has no key for the factor; max_open_for alone asks for growth).
const DefaultOpenForMultiplier = 2

// Validate checks every route's policy settings against the rules of the
// policy packages (their Config's Validate), which the parser does not
// repeat: a value the schema allows, such as a bulkhead larger than the
// bulkhead package accepts, is refused here. It reports the first refusal
// of each route, as
//
//	config: route "api": bulkhead: bulkhead: Config.MaxConcurrent ...
//
// joined with errors.Join, and nil when every route's policies are valid.
// A route naming a policy that does not exist (which Parse never lets
// through, but a Config made by hand can hold) is refused too. Validate
// builds nothing: the sidecar runs it before touching a running
// configuration, and `sluice validate` runs it after Load.
func (c *Config) Validate() error {
	var errs []error
	for _, r := range c.Routes {
		if err := c.validateRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("config: route %q: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// validateRoute checks one route's policy and its own rate_limit, in the
// order the sidecar applies them.
func (c *Config) validateRoute(r Route) error {
	var p Policy
	if r.Policy != "" {
		var ok bool
		if p, ok = c.Policies[r.Policy]; !ok {
			return fmt.Errorf("policy: no policy named %q", r.Policy)
		}
	}
	if p.RateLimit != nil {
		if err := LimiterConfig(*p.RateLimit, r.Name).Validate(); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	if r.RateLimit != nil {
		if err := LimiterConfig(*r.RateLimit, r.Name).Validate(); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	p.RateLimit = nil // checked above
	return p.Validate(r.Name)
}

// Validate checks each section of p, translated for instances named name,
// with its policy package's rules, in the order rate_limit, bulkhead,
// retry (and its budget), circuit_breaker. It returns the first refusal,
// prefixed with the section's key ("bulkhead: ..."), or nil. (A timeout
// has no rule beyond the parser's: at least zero.)
func (p Policy) Validate(name string) error {
	if p.RateLimit != nil {
		if err := LimiterConfig(*p.RateLimit, name).Validate(); err != nil {
			return fmt.Errorf("rate_limit: %w", err)
		}
	}
	if p.Bulkhead != nil {
		if err := BulkheadConfig(*p.Bulkhead, name).Validate(); err != nil {
			return fmt.Errorf("bulkhead: %w", err)
		}
	}
	if p.Retry != nil {
		if err := RetryConfig(*p.Retry, name).Validate(); err != nil {
			return fmt.Errorf("retry: %w", err)
		}
		if bc, ok := p.Retry.BudgetConfig(); ok {
			// The retry package checks a budget's settings only in
			// NewBudget; the budget made here is dropped.
			if _, err := retry.NewBudget(bc); err != nil {
				return fmt.Errorf("retry: %w", err)
			}
		}
	}
	if p.CircuitBreaker != nil {
		if err := BreakerConfig(*p.CircuitBreaker, name).Validate(); err != nil {
			return fmt.Errorf("circuit_breaker: %w", err)
		}
	}
	return nil
}

// LimiterConfig translates a rate_limit section into the ratelimit package's
// Config named name; zero fields keep that package's defaults.
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

// BulkheadConfig translates a bulkhead section into the bulkhead package's
// Config named name; zero fields keep that package's defaults.
func BulkheadConfig(b Bulkhead, name string) bulkhead.Config {
	return bulkhead.Config{
		Name:          name,
		MaxConcurrent: b.MaxConcurrent,
		MaxQueue:      b.MaxQueue,
		MaxWait:       b.MaxWait,
	}
}

// BreakerConfig translates a circuit_breaker section into the breaker
// package's Config named name: window picks a time-based window and
// window_calls a count-based one (a time window wins, though the parser
// never lets both appear); max_open_for caps an open time that grows by
// DefaultOpenForMultiplier each time the breaker opens again.
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
// named name; zero fields keep that package's defaults, with these
// translations: backoff linear is base_delay × n; a left-out backoff is
// exponential; a left-out base_delay, max_delay or multiplier comes from
// retry.DefaultBackoff (a max_delay below base_delay is raised to it), and
// max_delay also caps a server's Retry-After; jitter proportional without
// jitter_ratio is ±DefaultJitterRatio; `budget: off` is retry.NoBudget.
//
// RetryOn never retries a rejection by a sluice policy (sluice.ErrRejected);
// with retry_on_status an upstream answer (a *sluice.StatusError) is
// retried exactly when its status is listed, and every other error as the
// shared classifier says.
//
// An explicit budget is left to the caller, which decides whether
// instances share one (see Retry.BudgetConfig): until it sets Budget, the
// package default applies.
func RetryConfig(rc Retry, name string) retry.Config {
	out := retry.Config{
		Name:        name,
		MaxAttempts: rc.MaxAttempts,
		MaxElapsed:  rc.MaxElapsed,
		Backoff:     backoff(rc),
		RetryOn:     retryOn(rc.RetryOnStatus),
	}
	if rc.MaxDelay > 0 { // the cap on any delay, a server's Retry-After included
		out.RetryAfterMax = max(rc.MaxDelay, cmp.Or(rc.BaseDelay, retry.DefaultBackoff().Base()))
	}
	switch rc.Jitter {
	case JitterNone:
		out.Jitter = retry.NoJitter
	case JitterFull:
		out.Jitter = retry.FullJitter
	case JitterEqual:
		out.Jitter = retry.EqualJitter
	case JitterProportional:
		out.Jitter = retry.Proportional(cmp.Or(rc.JitterRatio, DefaultJitterRatio))
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

func backoff(rc Retry) retry.Backoff {
	def := retry.DefaultBackoff()
	base := cmp.Or(rc.BaseDelay, def.Base())
	maxDelay := max(cmp.Or(rc.MaxDelay, def.Cap()), base)
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
	return retry.Exponential(base, cmp.Or(rc.Multiplier, def.Multiplier()), maxDelay)
}

// retryOn decides which failed attempts are retried; see RetryConfig.
func retryOn(statuses []int) func(error) bool {
	statuses = slices.Clone(statuses)
	return func(err error) bool {
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
