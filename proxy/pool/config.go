package pool

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultDecayTime           = 10 * time.Second
	DefaultInitialLatency      = 30 * time.Millisecond
	DefaultConsecutiveFailures = 5
	DefaultInterval            = 10 * time.Second
	DefaultStdevFactor         = 1.9
	DefaultMinRequests         = 100
	DefaultMinHosts            = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 300 * time.Second
	DefaultMaxEjectionPercent  = 50
	DefaultTrialRequests       = 1
	DefaultTrialSuccesses      = 3
	DefaultCheckTimeout        = time.Second
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 2
)

// Limits that catch a misplaced unit before it allocates a large sequence.
const (
	maxWeight      = 10000
	maxTotalWeight = 1 << 16 // the weighted balancer's sequence length
	maxReplicas    = 1 << 12
)

// Balancer names how a pool chooses among its replicas.
type Balancer uint8

const (
	// P2C (the zero value) draws two replicas at random and takes the one
	// with the lower cost: (outstanding requests + 1) × peak-EWMA latency,
	// divided by the replica's weight.
	P2C Balancer = iota
	// RoundRobin takes the replicas in turn, ignoring weights and load.
	RoundRobin
	// Weighted takes the replicas in turn in proportion to their weights,
	// in smooth weighted round-robin order (no replica gets its whole share
	// in one burst).
	Weighted
)

var balancerNames = [...]string{"p2c", "round_robin", "weighted"}

// String returns the balancer's configuration name: "p2c", "round_robin"
// or "weighted".
func (b Balancer) String() string {
	if int(b) < len(balancerNames) {
		return balancerNames[b]
	}
	return fmt.Sprintf("Balancer(%d)", uint8(b))
}

// ParseBalancer returns the Balancer named s ("p2c", "round_robin",
// "weighted"; "" is p2c), or an error listing the names.
func ParseBalancer(s string) (Balancer, error) {
	if s == "" {
		return P2C, nil
	}
	for i, n := range balancerNames {
		if s == n {
			return Balancer(i), nil
		}
	}
	return 0, fmt.Errorf("pool: unknown balancer %q (want %s)", s, strings.Join(balancerNames[:], ", "))
}

// Endpoint is one replica as configured: its address and weight.
type Endpoint struct {
	// Addr names the replica (for the proxy, its base URL). It must be
	// unique in the pool; it names the replica's breaker.
	Addr string
	// Weight is the replica's share of traffic relative to the others,
	// 1 to 10000. The Weighted balancer sends traffic in proportion to it;
	// P2C divides a replica's cost by it; RoundRobin ignores it. If zero, 1.
	Weight int
}

// Config configures a Pool. Only Replicas is required; every other field
// documents what its zero value means.
type Config struct {
	// Name names the pool (the proxy's route) in errors and breaker names:
	// replica breakers are named Name + "/" + Addr.
	Name string

	// Replicas are the pool's members; at least one.
	Replicas []Endpoint

	// Balancer chooses among the replicas. The zero value is P2C.
	Balancer Balancer

	// DecayTime is the time constant of the latency estimate: a sample's
	// weight falls by 1/e every DecayTime, and a replica without traffic
	// looks faster over time at that rate, so that it is tried again. If
	// zero, 10 s.
	DecayTime time.Duration

	// InitialLatency is the latency estimate of a replica that has not
	// answered yet. If zero, 30 ms.
	InitialLatency time.Duration

	// Outlier configures ejection of replicas that fail.
	Outlier Outlier

	// Health configures active health checks; see Pool.StartChecks. The
	// zero value checks nothing.
	Health Health

	// Rand is the source of P2C's random draws, for tests and simulations
	// that must repeat; the pool serialises its use with a mutex. If nil,
	// math/rand/v2's global source, which needs no lock.
	Rand *rand.Rand

	// Clock is the replica breakers' clock, for the breaker methods that
	// read it (State, Stats: the health report and metrics). The pool's own
	// decisions take the time as an argument; with the system clock the
	// breakers also arm runtime timers from those times, so a simulation
	// passing virtual times must give a Clock of the same time
	// (sluicetest.FakeClock). If nil, the system clock.
	Clock sluice.Clock

	// OnStateChange, if set, receives every state change of every
	// replica's breaker (closed, open = ejected, half-open = on trial); see
	// breaker.Config.OnStateChange. StateChange.Name is the breaker's name.
	OnStateChange func(breaker.StateChange)
}

// Outlier configures passive ejection: replicas whose own traffic fails are
// taken out of rotation for a while.
type Outlier struct {
	// Disabled turns ejection off: replicas stay in rotation whatever
	// their outcomes (active health checks can still take them out).
	Disabled bool

	// ConsecutiveFailures ejects a replica after that many failures in a
	// row. If zero, 5.
	ConsecutiveFailures int

	// SuccessRate ejects replicas whose success rate over an Interval is
	// well below the pool's.
	SuccessRate SuccessRate

	// Interval is the period of the success-rate analysis, which also
	// forgives one past ejection of each replica that stayed in rotation
	// throughout. If zero, 10 s.
	Interval time.Duration

	// BaseEjectionTime is the first ejection's length; the n-th ejection
	// of a replica lasts n × BaseEjectionTime, up to MaxEjectionTime. If
	// zero, 30 s.
	BaseEjectionTime time.Duration

	// MaxEjectionTime caps one ejection; it must be at least
	// BaseEjectionTime. If zero, 300 s (or BaseEjectionTime if larger).
	MaxEjectionTime time.Duration

	// MaxEjectionPercent caps the share of the pool that ejection may take
	// out of rotation (replicas down by health checks count against it).
	// At least one replica may be ejected from a pool of two or more, and
	// at least one always stays. If zero, 50.
	MaxEjectionPercent int

	// TrialRequests is the number of requests an ejected replica takes at
	// once when its ejection ends (its breaker's half-open calls). If zero, 1.
	TrialRequests int

	// TrialSuccesses is the number of trial successes that return it to
	// rotation; one trial failure ejects it again, for longer. If zero, 3.
	TrialSuccesses int
}

// SuccessRate configures the success-rate analysis. Each Interval, the
// replicas in rotation with at least MinRequests outcomes are compared; if
// there are at least MinHosts of them, those whose success rate is below
// mean − StdevFactor × standard deviation are ejected, worst first.
type SuccessRate struct {
	// Disabled turns the analysis off.
	Disabled bool
	// StdevFactor is how many standard deviations below the mean a replica
	// must fall. If zero, 1.9.
	StdevFactor float64
	// MinRequests is the outcomes a replica needs in an interval to take
	// part. If zero, 100.
	MinRequests int
	// MinHosts is the replicas that must take part for the analysis to run.
	// If zero, 5.
	MinHosts int
}

// Health configures active health checks: each replica is checked every
// Interval, at most one check at a time.
type Health struct {
	// Interval is the time between two checks of a replica. Zero turns
	// checks off.
	Interval time.Duration
	// Timeout bounds one check; it must be at most Interval. If zero, 1 s
	// (or Interval, if shorter).
	Timeout time.Duration
	// HealthyThreshold is the checks in a row that must pass for a replica
	// marked down to go on trial. An ejected replica that is not down goes
	// on trial after one passing check. If zero, 2.
	HealthyThreshold int
	// UnhealthyThreshold is the checks in a row that must fail to mark a
	// replica down. If zero, 2.
	UnhealthyThreshold int
}

// settings is a validated Config with its defaults applied.
type settings struct {
	cfg            Config
	tau            float64 // DecayTime in ns
	initial        float64 // InitialLatency in ns
	consecutive    int64
	srDisabled     bool
	stdevFactor    float64
	minRequests    int64
	minHosts       int
	interval       time.Duration
	baseEject      time.Duration
	maxEject       time.Duration
	maxEjected     int32
	trialRequests  int
	trialSuccesses int
	check          Health
}

type errs []error

func (e *errs) bad(field, rule string, got any) {
	*e = append(*e, fmt.Errorf("pool: Config.%s must %s, got %v", field, rule, got))
}

// Validate reports whether cfg is valid: nil, or an error naming each
// invalid field and the rule it breaks. New returns the same error.
func (cfg Config) Validate() error {
	var e errs
	if len(cfg.Replicas) == 0 {
		e = append(e, errors.New("pool: Config.Replicas must name at least one replica"))
	}
	if len(cfg.Replicas) > maxReplicas {
		e.bad("Replicas", fmt.Sprintf("hold at most %d replicas", maxReplicas), len(cfg.Replicas))
	}
	seen := map[string]int{}
	total := 0
	for i, r := range cfg.Replicas {
		field := fmt.Sprintf("Replicas[%d]", i)
		if r.Addr == "" {
			e.bad(field+".Addr", "be set", `""`)
		} else if j, dup := seen[r.Addr]; dup {
			e.bad(field+".Addr", fmt.Sprintf("differ from Replicas[%d].Addr", j), r.Addr)
		}
		seen[r.Addr] = i
		if r.Weight < 0 || r.Weight > maxWeight {
			e.bad(field+".Weight", fmt.Sprintf("be between 0 and %d", maxWeight), r.Weight)
		}
		total += max(r.Weight, 1)
	}
	if cfg.Balancer == Weighted && total > maxTotalWeight {
		e.bad("Replicas", fmt.Sprintf("have weights summing to at most %d for the weighted balancer", maxTotalWeight), total)
	}
	if int(cfg.Balancer) >= len(balancerNames) {
		e.bad("Balancer", "be P2C, RoundRobin or Weighted", cfg.Balancer)
	}
	nonNeg := func(field string, d time.Duration) {
		if d < 0 {
			e.bad(field, "be >= 0", d)
		}
	}
	nonNeg("DecayTime", cfg.DecayTime)
	nonNeg("InitialLatency", cfg.InitialLatency)
	o := cfg.Outlier
	if o.ConsecutiveFailures < 0 {
		e.bad("Outlier.ConsecutiveFailures", "be >= 0", o.ConsecutiveFailures)
	}
	sr := o.SuccessRate
	if !(sr.StdevFactor >= 0) || math.IsInf(sr.StdevFactor, 0) {
		e.bad("Outlier.SuccessRate.StdevFactor", "be a finite number >= 0", sr.StdevFactor)
	}
	if sr.MinRequests < 0 {
		e.bad("Outlier.SuccessRate.MinRequests", "be >= 0", sr.MinRequests)
	}
	if sr.MinHosts < 0 {
		e.bad("Outlier.SuccessRate.MinHosts", "be >= 0", sr.MinHosts)
	}
	nonNeg("Outlier.Interval", o.Interval)
	nonNeg("Outlier.BaseEjectionTime", o.BaseEjectionTime)
	nonNeg("Outlier.MaxEjectionTime", o.MaxEjectionTime)
	if base := cmp.Or(o.BaseEjectionTime, DefaultBaseEjectionTime); o.MaxEjectionTime > 0 && o.MaxEjectionTime < base {
		e.bad("Outlier.MaxEjectionTime", fmt.Sprintf("be >= BaseEjectionTime (%v)", base), o.MaxEjectionTime)
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		e.bad("Outlier.MaxEjectionPercent", "be between 0 and 100", o.MaxEjectionPercent)
	}
	if o.TrialRequests < 0 {
		e.bad("Outlier.TrialRequests", "be >= 0", o.TrialRequests)
	}
	if o.TrialSuccesses < 0 {
		e.bad("Outlier.TrialSuccesses", "be >= 0", o.TrialSuccesses)
	}
	h := cfg.Health
	nonNeg("Health.Interval", h.Interval)
	nonNeg("Health.Timeout", h.Timeout)
	if h.Interval > 0 && h.Timeout > h.Interval {
		e.bad("Health.Timeout", fmt.Sprintf("be <= Interval (%v)", h.Interval), h.Timeout)
	}
	if h.HealthyThreshold < 0 {
		e.bad("Health.HealthyThreshold", "be >= 0", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 0 {
		e.bad("Health.UnhealthyThreshold", "be >= 0", h.UnhealthyThreshold)
	}
	return errors.Join(e...)
}

func newSettings(cfg Config) (*settings, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o, sr, h := cfg.Outlier, cfg.Outlier.SuccessRate, cfg.Health
	s := &settings{
		cfg:            cfg,
		tau:            float64(cmp.Or(cfg.DecayTime, DefaultDecayTime)),
		initial:        float64(cmp.Or(cfg.InitialLatency, DefaultInitialLatency)),
		consecutive:    int64(cmp.Or(o.ConsecutiveFailures, DefaultConsecutiveFailures)),
		srDisabled:     sr.Disabled || o.Disabled,
		stdevFactor:    cmp.Or(sr.StdevFactor, DefaultStdevFactor),
		minRequests:    int64(cmp.Or(sr.MinRequests, DefaultMinRequests)),
		minHosts:       cmp.Or(sr.MinHosts, DefaultMinHosts),
		interval:       cmp.Or(o.Interval, DefaultInterval),
		baseEject:      cmp.Or(o.BaseEjectionTime, DefaultBaseEjectionTime),
		trialRequests:  cmp.Or(o.TrialRequests, DefaultTrialRequests),
		trialSuccesses: cmp.Or(o.TrialSuccesses, DefaultTrialSuccesses),
		check:          h,
	}
	if o.Disabled {
		s.consecutive = math.MaxInt64
	}
	s.maxEject = max(cmp.Or(o.MaxEjectionTime, DefaultMaxEjectionTime), s.baseEject)
	s.maxEjected = ejectionCap(len(cfg.Replicas), cmp.Or(o.MaxEjectionPercent, DefaultMaxEjectionPercent))
	if h.Interval > 0 {
		s.check.Timeout = min(cmp.Or(h.Timeout, DefaultCheckTimeout), h.Interval)
		s.check.HealthyThreshold = cmp.Or(h.HealthyThreshold, DefaultHealthyThreshold)
		s.check.UnhealthyThreshold = cmp.Or(h.UnhealthyThreshold, DefaultUnhealthyThreshold)
	}
	return s, nil
}

// ejectionCap returns how many of n replicas ejection may take out of
// rotation at pct percent: at least one of two or more, never all.
func ejectionCap(n, pct int) int32 {
	if n < 2 {
		return 0
	}
	c := n * pct / 100
	return int32(min(max(c, 1), n-1))
}

// ejectionTime returns the length of a replica's n-th ejection (n >= 1).
func (s *settings) ejectionTime(n int) time.Duration {
	if n > int(s.maxEject/s.baseEject) {
		return s.maxEject
	}
	return min(time.Duration(n)*s.baseEject, s.maxEject)
}

// downHold is how long a replica marked down by its checks stays open
// without a further failed check: two check periods (each at most
// Interval + Timeout apart), so that failing checks keep it open while they
// run, and it goes on trial by itself if they stop.
func (s *settings) downHold() time.Duration {
	if s.check.Interval == 0 {
		return s.baseEject // results from checks of the caller's own
	}
	return 2 * (s.check.Interval + s.check.Timeout)
}
