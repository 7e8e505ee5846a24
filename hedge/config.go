package hedge

import (
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
)

// Defaults and limits of a Config.
const (
	// DefaultMaxHedges is the number of extra attempts a call may get when
	// Config.MaxHedges is zero.
	DefaultMaxHedges = 1
	// MaxMaxHedges is the largest Config.MaxHedges accepted: beyond a few
	// hedges a call only multiplies the load on a dependency that is slow
	// everywhere.
	MaxMaxHedges = 10
	// DefaultWindow is the span of recent latencies the percentile delay is
	// computed over when Config.Window is zero.
	DefaultWindow = 10 * time.Second
	// DefaultMinSamples is the number of latencies the window must hold
	// before the percentile replaces the fixed delay, when
	// Config.MinSamples is zero.
	DefaultMinSamples = 100
)

// Budget is what a Hedge asks before it starts an extra attempt, so that
// hedges and retries share one allowance of extra load. Every budget of
// package retry (*retry.RatioBudget, *retry.TokenBudget, retry.NoBudget)
// has this method; a Hedge only spends from the budget, whatever feeds it
// (the Retry using it) earns. It must be safe for concurrent use.
type Budget interface {
	// AllowRetryAt reports whether one extra attempt may start at now, and
	// counts it if so. wait is how long until one may; the Hedge does not
	// use it.
	AllowRetryAt(now time.Time) (ok bool, wait time.Duration)
}

// Event describes a hedge being started, for Config.OnHedge.
type Event struct {
	// Name is Config.Name.
	Name string
	// Attempt is the hedge's attempt index, what Attempt reports to it: 1
	// for the first hedge.
	Attempt int
	// Delay is the delay in effect for the call: the hedge started this
	// long after the attempt before it.
	Delay time.Duration
}

// Config configures a Hedge. Delay is required; everything else has a
// default.
type Config struct {
	// Name identifies the Hedge in events and statistics.
	Name string

	// Delay is how long an attempt may go unanswered before the next one
	// starts. With Percentile set it is the delay used until the window
	// holds MinSamples latencies. It must be greater than zero.
	Delay time.Duration

	// Percentile, if not zero, makes the delay follow the policy's own
	// recent latency: the delay is this percentile (0.95 for the 95th) of
	// the latencies of recent first attempts, within [MinDelay, MaxDelay].
	// It must be within (0, 1).
	Percentile float64
	// MinDelay and MaxDelay bound a percentile delay; MaxDelay zero means no
	// upper bound. Neither may be negative, and MaxDelay, if set, must not
	// be below MinDelay.
	MinDelay, MaxDelay time.Duration
	// Window is the span of the latencies a percentile delay is computed
	// over; it moves a fifth of itself at a time. If zero, DefaultWindow.
	Window time.Duration
	// MinSamples is the number of latencies the window must hold before the
	// percentile replaces Delay. If zero, DefaultMinSamples.
	MinSamples int

	// MaxHedges is the number of extra attempts a call may get, each one
	// Delay after the attempt before it. If zero, DefaultMaxHedges; at most
	// MaxMaxHedges.
	MaxHedges int

	// Budget, if not nil, is asked before each hedge; a refusal means no
	// more hedges for that call (its attempts go on). Give it the budget of
	// the Retry in the same pipeline so hedges count against retries.
	Budget Budget

	// Classifier decides which failures of an attempt leave the call to the
	// others (see the package documentation). If nil,
	// sluice.DefaultClassifier.
	Classifier *sluice.Classifier

	// Clock is the source of time; nil means the system clock. With another
	// Clock each call that may hedge costs a goroutine to wait for the
	// delay, which the system clock's timers spare.
	Clock sluice.Clock

	// OnHedge, if not nil, is called on the hedge's goroutine just before
	// each hedge starts. Leaving it nil costs nothing.
	OnHedge func(Event)
}

// Validate reports the first field of c that is out of range, naming it and
// the rule it breaks, or nil.
func (c Config) Validate() error {
	switch {
	case c.Delay <= 0:
		return fmt.Errorf("hedge: Config.Delay must be > 0 (the delay before a hedge, or with Percentile the delay until there are enough samples), got %v", c.Delay)
	case c.Percentile != 0 && !(c.Percentile > 0 && c.Percentile < 1):
		return fmt.Errorf("hedge: Config.Percentile must be within (0, 1), or 0 for the fixed Delay, got %v", c.Percentile)
	case c.MinDelay < 0:
		return fmt.Errorf("hedge: Config.MinDelay must be >= 0, got %v", c.MinDelay)
	case c.MaxDelay < 0:
		return fmt.Errorf("hedge: Config.MaxDelay must be >= 0 (0 means no bound), got %v", c.MaxDelay)
	case c.MaxDelay > 0 && c.MaxDelay < c.MinDelay:
		return fmt.Errorf("hedge: Config.MaxDelay (%v) must not be below Config.MinDelay (%v)", c.MaxDelay, c.MinDelay)
	case c.Window < 0:
		return fmt.Errorf("hedge: Config.Window must be >= 0 (0 means %v), got %v", DefaultWindow, c.Window)
	case c.MinSamples < 0:
		return fmt.Errorf("hedge: Config.MinSamples must be >= 0 (0 means %d), got %d", DefaultMinSamples, c.MinSamples)
	case c.MaxHedges < 0 || c.MaxHedges > MaxMaxHedges:
		return fmt.Errorf("hedge: Config.MaxHedges must be within [0, %d] (0 means %d), got %d", MaxMaxHedges, DefaultMaxHedges, c.MaxHedges)
	}
	if c.Percentile == 0 && (c.MinDelay != 0 || c.MaxDelay != 0 || c.Window != 0 || c.MinSamples != 0) {
		return fmt.Errorf("hedge: Config.MinDelay, MaxDelay, Window and MinSamples apply only with Config.Percentile, which is 0")
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxHedges == 0 {
		c.MaxHedges = DefaultMaxHedges
	}
	if c.Percentile != 0 {
		if c.Window == 0 {
			c.Window = DefaultWindow
		}
		if c.MinSamples == 0 {
			c.MinSamples = DefaultMinSamples
		}
	}
	return c
}
