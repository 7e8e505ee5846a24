package test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// Status is the value the scripted dependency returns.
type Status struct {
	Agent   string
	Version int
}

// unknown is the fallback default.
var unknown = Status{Agent: "unknown"}

type agentKey struct{}

func withAgent(ctx context.Context, agent string) context.Context {
	return context.WithValue(ctx, agentKey{}, agent)
}

func agentOf(ctx context.Context) string {
	s, _ := ctx.Value(agentKey{}).(string)
	return s
}

// errUnavailable is what the dependency returns during an outage: a 503,
// which the shared classifier calls retryable.
var errUnavailable error = &sluice.StatusError{Code: 503}

// Modes of the scripted dependency.
const (
	healthy = iota // answers Status{agent, version}
	failing        // returns errUnavailable
	hanging        // blocks until its context ends
)

// upstream is a scripted flaky dependency. Its script is changed between
// steps; it counts every call that reaches it.
type upstream struct {
	mu      sync.Mutex
	mode    int
	version int
	latency time.Duration // virtual time each call takes before answering
	calls   int
	gate    chan struct{} // if set, calls wait for it to close (or their context)
}

func (u *upstream) set(mode, version int) {
	u.mu.Lock()
	u.mode, u.version = mode, version
	u.mu.Unlock()
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func (u *upstream) fetch(ctx context.Context) (Status, error) {
	u.mu.Lock()
	u.calls++
	mode, version, latency, gate := u.mode, u.version, u.latency, u.gate
	u.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Status{}, ctx.Err()
		}
	}
	if latency > 0 {
		tm := time.NewTimer(latency)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return Status{}, ctx.Err()
		}
	}
	switch mode {
	case failing:
		return Status{}, errUnavailable
	case hanging:
		<-ctx.Done()
		return Status{}, ctx.Err()
	}
	return Status{Agent: agentOf(ctx), Version: version}, nil
}

func (u *upstream) do(ctx context.Context) error {
	_, err := u.fetch(ctx)
	return err
}

// stackConfig holds the configuration of the canonical pipeline
// fallback → retry → breaker → bulkhead → timeout.
type stackConfig struct {
	fallback fallback.Config[Status]
	retry    retry.Config
	breaker  breaker.Config
	bulkhead bulkhead.Config
	timeout  time.Duration
}

// defaultStack is the configuration most scenarios start from: exact
// (unjittered, unbudgeted) retries so that calls can be counted, a breaker
// that trips on 5 consecutive failures, and a last-good store per agent.
func defaultStack() stackConfig {
	return stackConfig{
		fallback: fallback.Config[Status]{
			Name:        "agents",
			LastGoodTTL: time.Hour,
			Key:         agentOf,
			Default:     &unknown,
		},
		retry: retry.Config{
			Name:        "agents",
			MaxAttempts: 3,
			Backoff:     retry.Constant(100 * time.Millisecond),
			Jitter:      retry.NoJitter,
			Budget:      retry.NoBudget{},
		},
		breaker: breaker.Config{
			Name:             "agents",
			FailureThreshold: 5,
			OpenFor:          10 * time.Second,
			HalfOpenCalls:    1,
			SuccessThreshold: 2,
		},
		bulkhead: bulkhead.Config{Name: "agents", MaxConcurrent: 4},
		timeout:  time.Second,
	}
}

// stack is the canonical pipeline with handles on each policy. Build it
// inside the synctest bubble, so that every policy reads the bubble's clock.
type stack struct {
	fb      *fallback.Fallback[Status]
	rt      *retry.Retry
	br      *breaker.Breaker
	bh      *bulkhead.Bulkhead
	to      *timeout.Timeout
	p       *sluice.Pipeline
	retries atomic.Int64 // OnRetry calls
}

func newStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	s := &stack{}
	var err error
	if s.fb, err = fallback.New(cfg.fallback); err != nil {
		t.Fatal(err)
	}
	cfg.retry.OnRetry = func(retry.Event) { s.retries.Add(1) }
	if s.rt, err = retry.New(cfg.retry); err != nil {
		t.Fatal(err)
	}
	if s.br, err = breaker.New(cfg.breaker); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.br.Close() })
	if s.bh, err = bulkhead.New(cfg.bulkhead); err != nil {
		t.Fatal(err)
	}
	s.to = timeout.After(cfg.timeout)
	s.p = sluice.NewPipeline(s.fb, s.rt, s.br, s.bh, s.to)
	return s
}

// get runs one call for agent through the stack and returns the value, how
// the fallback answered, and the virtual time it took.
func (s *stack) get(t *testing.T, up *upstream, agent string) (Status, fallback.Outcome, time.Duration) {
	t.Helper()
	var o fallback.Outcome
	ctx := fallback.WithOutcome(withAgent(t.Context(), agent), &o)
	start := time.Now()
	v, err := sluice.Get(ctx, s.p, up.fetch)
	if err != nil {
		t.Fatalf("Get(%s): %v (the fallback should always answer)", agent, err)
	}
	return v, o, time.Since(start)
}

// sleepUntil sleeps, in the bubble's virtual time, until at.
func sleepUntil(t *testing.T, at time.Time) {
	t.Helper()
	d := time.Until(at)
	if d < 0 {
		t.Fatalf("step scheduled %v in the past", -d)
	}
	time.Sleep(d)
}

// matchesAll reports the first target err does not match under errors.Is.
func matchesAll(err error, targets ...error) error {
	for _, target := range targets {
		if !errors.Is(err, target) {
			return target
		}
	}
	return nil
}
