package retry

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sluice-go/sluice"
)

// Strategy is one retry configuration a Selector can choose for an operation
// type: an arm of its bandit.
type Strategy struct {
	// Name identifies the strategy, e.g. "exponential".
	Name string
	// Config is the retry policy the strategy runs. Its Name is replaced by
	// "<operation type>/<strategy name>", so statistics stay apart. If its
	// Budget is nil, the strategies of one operation type share one default
	// budget, so exploring does not multiply the retries a type may make.
	Config Config
}

// DefaultStrategies are the SysManage resilience document's three strategies:
// "exponential" (the Network policy), "linear" (3 attempts, 1 s, 2 s, 3 s...
// capped at 60 s) and "adaptive" (the Network policy with Adaptive set).
func DefaultStrategies() []Strategy {
	adaptive := Network()
	adaptive.Adaptive = true
	return []Strategy{
		{Name: "exponential", Config: Network()},
		{Name: "linear", Config: Config{MaxAttempts: 3, Backoff: Linear(time.Second, time.Second, 60*time.Second), Jitter: Proportional(0.1)}},
		{Name: "adaptive", Config: adaptive},
	}
}

// DefaultMapping is the SysManage resilience document's starting strategy per operation
// type: network → exponential, database → linear, api → adaptive.
func DefaultMapping() map[string]string {
	return map[string]string{"network": "exponential", "database": "linear", "api": "adaptive"}
}

// armOutcome is what a Selector learns from one call made with a strategy.
type armOutcome struct {
	// Success reports whether the call succeeded.
	Success bool
	// Attempts is the number of attempts the call made.
	Attempts int
	// Elapsed is the call's duration, waits included.
	Elapsed time.Duration
}

// defaultReward scores an outcome: 1 for a success, 0 for a failure, less
// 0.1 per retry and 0.01 per second spent, so that among strategies that
// succeed equally often the one that needs fewer attempts and less time wins.
func defaultReward(o armOutcome) float64 {
	r := 0.0
	if o.Success {
		r = 1
	}
	return r - 0.1*float64(max(o.Attempts-1, 0)) - 0.01*o.Elapsed.Seconds()
}

// SelectorConfig configures a Selector. The zero SelectorConfig is valid: the
// SysManage resilience document's strategies and mapping, and ε = 0.1.
//
// A call's outcome is scored 1 for a success, 0 for a failure, less 0.1 per
// retry and 0.01 per second spent, so that among strategies that succeed
// equally often the one that needs fewer attempts and less time wins.
type SelectorConfig struct {
	// Strategies are the arms. If empty, DefaultStrategies().
	Strategies []Strategy
	// Mapping names the strategy an operation type starts with. If nil,
	// DefaultMapping(). A type not listed starts with the first strategy.
	Mapping map[string]string
	// Epsilon is the share of calls that explore a strategy chosen at
	// random; the others go to the strategy with the best estimated reward.
	// If zero, 0.1. It must be within [0, 1]; use a tiny value rather than
	// none, or a strategy that once looked worse is never tried again.
	Epsilon float64
	// Seed seeds each operation type's random source (mixed with the type's
	// name), so a Selector's choices are reproducible.
	Seed uint64
	// Clock measures the calls' durations and is passed to strategies whose
	// Config.Clock is nil. If nil, the system clock.
	Clock sluice.Clock
}

// Selector chooses, per operation type, which retry strategy to use, and
// learns from the outcomes which one serves that type best: an ε-greedy
// bandit whose estimates follow recent outcomes (a recency-weighted mean,
// with a step of at least 1/100), so it adapts when a dependency changes.
// Unlike the SysManage resilience document's rule, which never tried a strategy again once
// another looked better, every strategy keeps being tried on a share
// ε/len(Strategies) of calls.
//
// A Selector is safe for concurrent use.
type Selector struct {
	cfg SelectorConfig

	mu    sync.Mutex
	types map[string]*TypePolicy
}

// NewSelector returns a Selector, or an error naming the field of cfg that is
// out of range.
func NewSelector(cfg SelectorConfig) (*Selector, error) {
	if len(cfg.Strategies) == 0 {
		cfg.Strategies = DefaultStrategies()
	} else {
		cfg.Strategies = append([]Strategy(nil), cfg.Strategies...)
	}
	seen := map[string]bool{}
	for i, st := range cfg.Strategies {
		if st.Name == "" {
			return nil, fmt.Errorf("retry: SelectorConfig.Strategies[%d].Name must not be empty", i)
		}
		if seen[st.Name] {
			return nil, fmt.Errorf("retry: SelectorConfig.Strategies[%d].Name %q is a duplicate", i, st.Name)
		}
		seen[st.Name] = true
		if err := st.Config.Validate(); err != nil {
			return nil, fmt.Errorf("retry: SelectorConfig.Strategies[%d] (%q): %w", i, st.Name, err)
		}
	}
	if cfg.Mapping == nil {
		cfg.Mapping = DefaultMapping()
	}
	m := make(map[string]string, len(cfg.Mapping))
	for typ, name := range cfg.Mapping {
		if !seen[name] {
			return nil, fmt.Errorf("retry: SelectorConfig.Mapping[%q] names unknown strategy %q", typ, name)
		}
		m[typ] = name
	}
	cfg.Mapping = m
	if !(cfg.Epsilon >= 0 && cfg.Epsilon <= 1) {
		return nil, fmt.Errorf("retry: SelectorConfig.Epsilon must be within [0, 1], got %v", cfg.Epsilon)
	}
	cfg.Epsilon = cmp.Or(cfg.Epsilon, 0.1)
	return &Selector{cfg: cfg, types: map[string]*TypePolicy{}}, nil
}

// For returns the policy for an operation type, making it on first use. Calls
// through it are run by the strategy the bandit chooses, and their outcomes
// teach it.
func (s *Selector) For(opType string) *TypePolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.types[opType]; ok {
		return p
	}
	p := newTypePolicy(s.cfg, opType)
	s.types[opType] = p
	return p
}

// TypePolicy is the Selector's policy for one operation type. It is a
// sluice.Policy; Best and Arms show what its bandit has learned.
type TypePolicy struct {
	opType string
	eps    float64
	clock  sluice.Clock
	def    int // the arm the mapping starts with

	retries []*Retry     // by arm; built lazily, since arms may never run
	budget  *RatioBudget // shared by the arms whose Config.Budget is nil

	mu    sync.Mutex // guards the fields below and retries' creation
	rnd   *rand.Rand
	arms  []armState
	strat []Strategy
}

type armState struct {
	pulls int64
	mean  float64
}

// minStep bounds the estimates' step size from below, so they keep following
// recent outcomes: roughly the last 100 outcomes of an arm count.
const minStep = 0.01

func newTypePolicy(cfg SelectorConfig, opType string) *TypePolicy {
	h := fnv.New64a()
	h.Write([]byte(opType))
	p := &TypePolicy{
		opType:  opType,
		eps:     cfg.Epsilon,
		clock:   sluice.ClockOr(cfg.Clock),
		rnd:     rand.New(rand.NewPCG(cfg.Seed, h.Sum64())),
		arms:    make([]armState, len(cfg.Strategies)),
		strat:   cfg.Strategies,
		retries: make([]*Retry, len(cfg.Strategies)),
	}
	p.budget, _ = NewBudget(BudgetConfig{}) // the zero config is valid
	if name, ok := cfg.Mapping[opType]; ok {
		for i, st := range cfg.Strategies {
			if st.Name == name {
				p.def = i
			}
		}
	}
	return p
}

// choose picks the strategy for the next call: with probability ε one at
// random, otherwise the one with the best estimated reward (the mapping's
// strategy until it has been measured). It returns the arm's index and name.
func (p *TypePolicy) choose() (arm int, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rnd.Float64() < p.eps {
		arm = p.rnd.IntN(len(p.arms))
	} else {
		arm = p.greedyLocked()
	}
	return arm, p.strat[arm].Name
}

func (p *TypePolicy) greedyLocked() int {
	if p.arms[p.def].pulls == 0 {
		return p.def
	}
	best, bestMean := p.def, math.Inf(-1)
	for i, a := range p.arms {
		if a.pulls > 0 && a.mean > bestMean {
			best, bestMean = i, a.mean
		}
	}
	return best
}

// record teaches the bandit the outcome of a call made with arm.
func (p *TypePolicy) record(arm int, o armOutcome) {
	r := defaultReward(o)
	p.mu.Lock()
	defer p.mu.Unlock()
	if arm < 0 || arm >= len(p.arms) {
		return
	}
	a := &p.arms[arm]
	a.pulls++
	step := max(1/float64(a.pulls), minStep)
	a.mean += step * (r - a.mean)
}

// Best returns the name of the strategy the bandit currently prefers.
func (p *TypePolicy) Best() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.strat[p.greedyLocked()].Name
}

// ArmStats describes one strategy of a TypePolicy.
type ArmStats struct {
	// Name is the strategy's name.
	Name string
	// Pulls is the number of outcomes recorded for it.
	Pulls int64
	// MeanReward is its estimated reward, 0 before any outcome.
	MeanReward float64
	// Retry holds the statistics of its retry policy, zero if it never ran.
	Retry Stats
}

// Arms returns the state of every strategy, in the Selector's order.
func (p *TypePolicy) Arms() []ArmStats {
	p.mu.Lock()
	out := make([]ArmStats, len(p.arms))
	rs := append([]*Retry(nil), p.retries...)
	for i, a := range p.arms {
		out[i] = ArmStats{Name: p.strat[i].Name, Pulls: a.pulls, MeanReward: a.mean}
	}
	p.mu.Unlock()
	for i, r := range rs {
		if r != nil {
			out[i].Retry = r.Stats()
		}
	}
	return out
}

func (p *TypePolicy) retryFor(arm int) (*Retry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.retries[arm]; r != nil {
		return r, nil
	}
	cfg := p.strat[arm].Config
	cfg.Name = p.opType + "/" + p.strat[arm].Name
	if cfg.Clock == nil {
		cfg.Clock = p.clock
	}
	if cfg.Budget == nil {
		cfg.Budget = p.budget
	}
	r, err := New(cfg)
	if err != nil {
		return nil, err // unreachable: NewSelector validated the config
	}
	p.retries[arm] = r
	return r, nil
}

// Execute runs next under the strategy the bandit picks and records the outcome.
// Calls that end because the caller's context ended teach nothing.
func (p *TypePolicy) Execute(ctx context.Context, next sluice.Next) error {
	arm, _ := p.choose()
	r, err := p.retryFor(arm)
	if err != nil {
		return err
	}
	start := p.clock.Now()
	attempts, err := r.execute(ctx, next)
	if ctx.Err() == nil {
		p.record(arm, armOutcome{Success: err == nil, Attempts: attempts, Elapsed: p.clock.Now().Sub(start)})
	}
	return err
}
