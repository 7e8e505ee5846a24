package retry

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
)

func mustSelector(t *testing.T, cfg SelectorConfig) *Selector {
	t.Helper()
	s, err := NewSelector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSelectorDefaultMapping(t *testing.T) {
	s := mustSelector(t, SelectorConfig{})
	for typ, want := range map[string]string{"network": "exponential", "database": "linear", "api": "adaptive", "other": "exponential"} {
		if got := s.For(typ).Best(); got != want {
			t.Errorf("%s starts with %s, want %s", typ, got, want)
		}
	}
	if s.For("network") != s.For("network") {
		t.Error("For returns a new policy for a known type")
	}
}

// env is a simulated dependency: each strategy succeeds with its own
// probability and costs its own attempts and time.
type env struct {
	success  []float64
	attempts []int
	elapsed  []time.Duration
}

func (e env) outcome(arm int, rnd *rand.Rand) armOutcome {
	ok := rnd.Float64() < e.success[arm]
	return armOutcome{Success: ok, Attempts: e.attempts[arm], Elapsed: e.elapsed[arm]}
}

// run plays rounds of choose-and-learn and returns how often each arm was
// chosen in the last `tail` rounds.
func run(p *TypePolicy, e env, rounds, tail int, seed uint64) []int {
	rnd := rand.New(rand.NewPCG(seed, 9))
	counts := make([]int, len(e.success))
	for i := range rounds {
		arm, _ := p.choose()
		p.record(arm, e.outcome(arm, rnd))
		if i >= rounds-tail {
			counts[arm]++
		}
	}
	return counts
}

// The database type starts with linear; in a world where exponential serves
// it better, the bandit moves to exponential and keeps exploring the others.
func TestSelectorConvergesAndKeepsExploring(t *testing.T) {
	s := mustSelector(t, SelectorConfig{Seed: 42})
	p := s.For("database")
	e := env{ // exponential, linear, adaptive
		success:  []float64{0.97, 0.80, 0.90},
		attempts: []int{2, 3, 2},
		elapsed:  []time.Duration{3 * time.Second, 3 * time.Second, 5 * time.Second},
	}
	counts := run(p, e, 6000, 2000, 1)
	if p.Best() != "exponential" {
		t.Errorf("prefers %s after 6000 rounds, want exponential (arms %+v)", p.Best(), p.Arms())
	}
	if share := float64(counts[0]) / 2000; share < 0.85 {
		t.Errorf("exponential chosen in %.2f of the last 2000 rounds, want >= 0.85", share)
	}
	// ε = 0.1 over 3 arms: each other arm about 3.3 % of rounds.
	for arm, c := range counts[1:] {
		if c < 20 {
			t.Errorf("arm %d chosen %d times in the last 2000 rounds: abandoned", arm+1, c)
		}
	}
}

// When the world changes, the recency-weighted estimates follow it: the
// strategy that became best takes over.
func TestSelectorAdaptsToChange(t *testing.T) {
	s := mustSelector(t, SelectorConfig{Seed: 7})
	p := s.For("network")
	good0 := env{success: []float64{0.99, 0.5, 0.5}, attempts: []int{1, 1, 1}, elapsed: []time.Duration{0, 0, 0}}
	run(p, good0, 3000, 0, 2)
	if p.Best() != "exponential" {
		t.Fatalf("prefers %s, want exponential", p.Best())
	}
	good2 := env{success: []float64{0.5, 0.5, 0.99}, attempts: []int{1, 1, 1}, elapsed: []time.Duration{0, 0, 0}}
	counts := run(p, good2, 8000, 2000, 3)
	if p.Best() != "adaptive" || counts[2] < 1700 {
		t.Errorf("after the change prefers %s, adaptive chosen %d of the last 2000; want adaptive, >= 1700", p.Best(), counts[2])
	}
}

func TestSelectorDeterministic(t *testing.T) {
	seq := func(seed uint64) string {
		p := mustSelector(t, SelectorConfig{Seed: seed}).For("api")
		var b strings.Builder
		for range 200 {
			arm, name := p.choose()
			b.WriteString(name[:1])
			p.record(arm, armOutcome{Success: arm == 1, Attempts: 1})
		}
		return b.String()
	}
	if seq(3) != seq(3) {
		t.Error("the same seed gives different choices")
	}
	if seq(3) == seq(4) {
		t.Error("different seeds give the same 200 choices")
	}
}

func TestSelectorExecute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustSelector(t, SelectorConfig{
			Strategies: []Strategy{
				{Name: "fast", Config: Config{MaxAttempts: 3, Backoff: Constant(time.Second), Jitter: NoJitter}},
				{Name: "slow", Config: Config{MaxAttempts: 3, Backoff: Constant(time.Minute), Jitter: NoJitter}},
			},
			Mapping: map[string]string{"db": "slow"},
			Seed:    1,
		})
		p := sluice.NewPipeline(s.For("db"))
		for range 300 {
			fn, _ := flaky(1, errFlaky)
			if err := p.Do(context.Background(), fn); err != nil {
				t.Fatal(err)
			}
		}
		arms := s.For("db").Arms()
		if s.For("db").Best() != "fast" {
			t.Errorf("prefers %s, want fast (arms %+v)", s.For("db").Best(), arms)
		}
		if arms[0].Pulls+arms[1].Pulls != 300 || arms[0].Retry.Name != "db/fast" || arms[0].Retry.Calls != arms[0].Pulls {
			t.Errorf("arms %+v", arms)
		}
	})
}

func TestNewSelectorRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  SelectorConfig
		want string
	}{
		{SelectorConfig{Epsilon: 1.5}, "SelectorConfig.Epsilon must be within [0, 1], got 1.5"},
		{SelectorConfig{Mapping: map[string]string{"x": "nope"}}, `SelectorConfig.Mapping["x"] names unknown strategy "nope"`},
		{SelectorConfig{Strategies: []Strategy{{Name: ""}}}, "SelectorConfig.Strategies[0].Name must not be empty"},
		{SelectorConfig{Strategies: []Strategy{{Name: "a"}, {Name: "a"}}}, `SelectorConfig.Strategies[1].Name "a" is a duplicate`},
		{SelectorConfig{Strategies: []Strategy{{Name: "a", Config: Config{MaxAttempts: -2}}}}, `SelectorConfig.Strategies[0] ("a"): retry: Config.MaxAttempts`},
	} {
		if _, err := NewSelector(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSelector = %v, want an error containing %q", err, tt.want)
		}
	}
}

func TestDefaultReward(t *testing.T) {
	for _, tt := range []struct {
		o    armOutcome
		want float64
	}{
		{armOutcome{Success: true, Attempts: 1}, 1},
		{armOutcome{Success: true, Attempts: 3, Elapsed: 10 * time.Second}, 0.7},
		{armOutcome{Success: false, Attempts: 1}, 0},
	} {
		if got := defaultReward(tt.o); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Errorf("defaultReward(%+v) = %v, want %v", tt.o, got, tt.want)
		}
	}
}

// The bandit learns from recorded outcomes alone: told that, for databases,
// exponential backoff succeeds and the others fail, it moves off the mapping's
// linear strategy. (This was ExampleSelector's second half when choose and
// record were exported.)
func TestSelectorLearnsFromRecordedOutcomes(t *testing.T) {
	sel := mustSelector(t, SelectorConfig{Seed: 1})
	for typ, want := range map[string]string{"network": "exponential", "database": "linear", "api": "adaptive"} {
		if got := sel.For(typ).Best(); got != want {
			t.Errorf("%s starts with %s, want %s", typ, got, want)
		}
	}
	db := sel.For("database")
	for range 200 {
		arm, name := db.choose()
		db.record(arm, armOutcome{Success: name == "exponential", Attempts: 2, Elapsed: time.Second})
	}
	if got := db.Best(); got != "exponential" {
		t.Errorf("database → %s after 200 outcomes, want exponential", got)
	}
}
