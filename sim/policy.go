package sim

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
)

// The built-in policies, in the order reports list them.
const (
	PolicyNone                = "none"
	PolicyNaive               = "naive"
	PolicyNoBudgetExponential = "no-budget-exponential"
	PolicySluiceDefault       = "sluice-default"
)

// PolicyOriginalNetwork is the former name of PolicyNoBudgetExponential,
// still accepted wherever a built-in policy is named; reports use the new
// name.
//
// Deprecated: use PolicyNoBudgetExponential.
const PolicyOriginalNetwork = "original-network"

// BuiltinPolicies returns the names of the built-in policies.
func BuiltinPolicies() []string {
	return []string{PolicyNone, PolicyNaive, PolicyNoBudgetExponential, PolicySluiceDefault}
}

// noBudgetExponentialYAML is exponential backoff with no retry budget, the
// network policy of the SysManage resilience document, in the sidecar's
// schema: 5 attempts, exponential from 1 s, ×2, capped at 30 s, ±10 %
// jitter, no budget, and its breaker: 5 consecutive failures, 60 s open, 3
// successes to close. That document's breaker let every call through while
// half-open; 1000 probes at once stands for that.
const noBudgetExponentialYAML = `
policies:
  no-budget-exponential:
    retry:
      max_attempts: 5
      backoff: exponential
      base_delay: 1s
      max_delay: 30s
      multiplier: 2
      jitter: proportional
      jitter_ratio: 0.1
      budget: off
    circuit_breaker:
      failure_threshold: 5
      open_for: 60s
      success_threshold: 3
      half_open_calls: 1000
    timeout: 30s
`

// spec is a policy ready to be instantiated once per simulated client: the
// package configurations, validated, with the sidecar's zero values turned
// into the packages' defaults.
type spec struct {
	name     string
	retry    *retry.Config // defaults filled in; nil means no retry
	budget   budgetSpec
	breaker  *breaker.Config
	bulkhead *bulkhead.Config // defaults filled in
	limiter  *ratelimit.Config
	timeout  time.Duration // per attempt; 0 means none of its own
	// sidecar says the policy runs in sluice's sidecar, whose answers mark
	// failures final (Sluice-Reject, Sluice-Retry: no) for the layer above;
	// the other built-ins stand for plain retry libraries.
	sidecar bool
	// checks says each instance runs active health checks that put its
	// open breaker on trial when one passes (PolicySluiceDefaultChecks).
	checks bool
}

type budgetSpec struct {
	off   bool
	ratio retry.BudgetConfig
}

func (b budgetSpec) build() retry.Budget {
	if b.off {
		return retry.NoBudget{}
	}
	rb, err := retry.NewBudget(b.ratio)
	if err != nil {
		panic(err) // validated when the spec was built
	}
	return rb
}

// builtinSpec returns the spec of a built-in policy.
func builtinSpec(name string) (*spec, error) {
	switch name {
	case PolicyNone:
		return &spec{name: name}, nil
	case PolicyNaive:
		rc, err := filled(retry.Config{Name: name, MaxAttempts: 4, Backoff: retry.Constant(0), Jitter: retry.NoJitter, Budget: retry.NoBudget{}})
		if err != nil {
			return nil, err
		}
		return &spec{name: name, retry: rc, budget: budgetSpec{off: true}}, nil
	case PolicyNoBudgetExponential, PolicyOriginalNetwork:
		specs, err := parsePolicies("<"+PolicyNoBudgetExponential+">", []byte(noBudgetExponentialYAML))
		if err != nil {
			return nil, err
		}
		specs[0].sidecar = false // a plain retry library, not a sidecar
		return specs[0], nil
	case PolicySluiceDefaultChecks:
		s, err := builtinSpec(PolicySluiceDefault)
		if err != nil {
			return nil, err
		}
		s.name, s.checks = name, true
		return s, nil
	case PolicySluiceDefault:
		// The embedded configuration `sluice serve` runs without a file,
		// read with an empty environment so the result never varies.
		l := config.Loader{LookupEnv: func(string) (string, bool) { return "", false }}
		c, err := l.Parse(config.DefaultFile, config.DefaultYAML())
		if err != nil {
			return nil, err
		}
		p, ok := c.Policies["default"]
		if !ok {
			return nil, errors.New("sim: the default configuration has no policy named default")
		}
		s, err := specFromConfig(name, p)
		if s != nil {
			s.sidecar = true
		}
		return s, err
	}
	return nil, fmt.Errorf("sim: unknown policy %q (built-in policies: %v, and %s)", name, BuiltinPolicies(), PolicySluiceDefaultChecks)
}

// LoadPolicies reads a file in the sidecar's schema and returns the names of
// the policies it defines, in name order, checking that each can be
// simulated. A file may hold only a policies section; routes are optional.
func LoadPolicies(path string) ([]string, error) {
	specs, err := loadPolicyFile(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names, nil
}

func loadPolicyFile(path string) ([]*spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return parsePolicies(filepath.Base(path), data)
}

// parsePolicies reads the policies section of a file in the sidecar's
// schema (config.Loader.ParsePolicies: routes may be left out) and builds a
// spec for each policy, in name order.
func parsePolicies(filename string, data []byte) ([]*spec, error) {
	policies, err := config.Loader{}.ParsePolicies(filename, data)
	if err != nil {
		return nil, err
	}
	if len(policies) == 0 {
		return nil, fmt.Errorf("sim: %s defines no policies", filename)
	}
	names := slices.Sorted(maps.Keys(policies))
	specs := make([]*spec, 0, len(names))
	for _, n := range names {
		s, err := specFromConfig(n, policies[n])
		if err != nil {
			return nil, fmt.Errorf("sim: %s: policies.%s: %w", filename, n, err)
		}
		s.sidecar = true
		specs = append(specs, s)
	}
	return specs, nil
}

// specFromConfig turns one policy of the sidecar's schema into package
// configurations. Zero fields stay zero where the package has a default, so
// each default lives once, in its package.
func specFromConfig(name string, p config.Policy) (*spec, error) {
	if err := p.Validate(name); err != nil {
		return nil, err
	}
	s := &spec{name: name, timeout: p.Timeout}
	if r := p.Retry; r != nil {
		rc, err := filled(config.RetryConfig(*r, name))
		if err != nil {
			return nil, err
		}
		s.retry = rc
		s.budget.off = r.Budget != nil && r.Budget.Off
		s.budget.ratio, _ = r.BudgetConfig()
	}
	if c := p.CircuitBreaker; c != nil {
		bc := config.BreakerConfig(*c, name)
		s.breaker = &bc
	}
	if c := p.Bulkhead; c != nil {
		// The simulator reads the bulkhead's limits with the package's
		// defaults filled in, which only an instance shows.
		bh, err := bulkhead.New(config.BulkheadConfig(*c, name))
		if err != nil {
			return nil, err
		}
		bc := bh.Config()
		s.bulkhead = &bc
	}
	if c := p.RateLimit; c != nil {
		lc := config.LimiterConfig(*c, name)
		s.limiter = &lc
	}
	return s, nil
}

// filled validates cfg and returns it with the retry package's defaults
// filled in.
func filled(cfg retry.Config) (*retry.Config, error) {
	r, err := retry.New(cfg)
	if err != nil {
		return nil, err
	}
	out := r.Config()
	return &out, nil
}

// resolvePolicies returns the specs to simulate: the named built-ins (all of
// them when names is empty) followed by every policy of every file.
func resolvePolicies(names, files []string) ([]*spec, error) {
	if len(names) == 0 {
		names = BuiltinPolicies()
	}
	var out []*spec
	seen := map[string]string{}
	add := func(s *spec, from string) error {
		if prev, dup := seen[s.name]; dup {
			return fmt.Errorf("sim: policy %q is defined twice (%s and %s)", s.name, prev, from)
		}
		seen[s.name] = from
		out = append(out, s)
		return nil
	}
	for _, n := range names {
		s, err := builtinSpec(n)
		if err != nil {
			return nil, err
		}
		if err := add(s, "built-in"); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		specs, err := loadPolicyFile(f)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			if err := add(s, f); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
