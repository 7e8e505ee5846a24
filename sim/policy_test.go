package sim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/retry"
)

func TestBuiltinSpecs(t *testing.T) {
	for _, name := range BuiltinPolicies() {
		s, err := builtinSpec(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.name != name {
			t.Errorf("%s: spec named %q", name, s.name)
		}
	}
	naive, _ := builtinSpec(PolicyNaive)
	if naive.retry.MaxAttempts != 4 || !naive.budget.off || naive.breaker != nil {
		t.Errorf("naive = %+v, want 4 attempts, no budget, no breaker", naive)
	}
	if w, _ := naive.retry.Delay(1, 0, newRand(1)); w != 0 {
		t.Errorf("naive waits %v before a retry, want 0", w)
	}
	orig, _ := builtinSpec(PolicyNoBudgetExponential)
	if orig.retry.MaxAttempts != 5 || !orig.budget.off || orig.retry.Jitter != retry.Proportional(orig.retry.Jitter.Ratio()) ||
		orig.retry.Backoff.Base() != time.Second || orig.retry.Backoff.Cap() != 30*time.Second {
		t.Errorf("no-budget-exponential retry = %+v", orig.retry)
	}
	if b := orig.breaker; b == nil || b.FailureThreshold != 5 || b.OpenFor != 60*time.Second {
		t.Errorf("no-budget-exponential breaker = %+v, want 5 failures, 60s open", b)
	}
	def, _ := builtinSpec(PolicySluiceDefault)
	// The embedded default configuration, whatever it says, must reach the
	// simulator unchanged.
	l := config.Loader{LookupEnv: func(string) (string, bool) { return "", false }}
	c, err := l.Parse(config.DefaultFile, config.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policies["default"]
	if def.retry == nil || p.Retry == nil || def.retry.MaxAttempts != max(p.Retry.MaxAttempts, retry.DefaultMaxAttempts*boolInt(p.Retry.MaxAttempts == 0)) {
		t.Errorf("sluice-default retry %+v does not follow the default configuration %+v", def.retry, p.Retry)
	}
	if (def.breaker == nil) != (p.CircuitBreaker == nil) || (def.bulkhead == nil) != (p.Bulkhead == nil) || def.timeout != p.Timeout {
		t.Errorf("sluice-default %+v does not follow the default configuration %+v", def, p)
	}
	if _, err := builtinSpec("bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown policy: err = %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSpecFromConfig(t *testing.T) {
	specs, err := parsePolicies("p.yaml", []byte(`
policies:
  a:
    retry: {base_delay: 200ms}
    circuit_breaker: {failure_rate: 0.5, window: 30s, max_open_for: 2m}
    rate_limit: {rate: 10, burst: 5, max_wait: 100ms}
    timeout: 2s
  b:
    retry: {backoff: linear, base_delay: 1s, max_delay: 3s, jitter: none, budget: off, retry_on_status: [503]}
    circuit_breaker: {window_calls: 20}
    bulkhead: {max_queue: 3}
  c:
    retry: {backoff: decorrelated, jitter: equal, budget: {ratio: 0.2, min_per_second: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || specs[0].name != "a" || specs[1].name != "b" || specs[2].name != "c" {
		t.Fatalf("specs = %v, want a, b, c in order", specs)
	}
	a, b, c := specs[0], specs[1], specs[2]

	// Exponential with only the base set: the retry package's multiplier
	// and cap.
	def := retry.DefaultBackoff()
	if k := a.retry.Backoff; k != retry.Exponential(200*time.Millisecond, def.Multiplier(), def.Cap()) {
		t.Errorf("a: backoff %v", k)
	}
	if a.retry.MaxAttempts != retry.DefaultMaxAttempts || a.retry.Jitter != retry.FullJitter || a.budget.off {
		t.Errorf("a: retry %+v budget %+v, want package defaults", a.retry, a.budget)
	}
	if br := a.breaker; br.WindowType != breaker.TimeWindow || br.WindowDuration != 30*time.Second || br.OpenBackoff.Max != 2*time.Minute || br.OpenBackoff.Multiplier != 2 {
		t.Errorf("a: breaker %+v", br)
	}
	if a.limiter == nil || a.limiter.Rate != 10 || a.limiter.Burst != 5 || a.limiter.MaxWait != 100*time.Millisecond || a.timeout != 2*time.Second {
		t.Errorf("a: limiter %+v timeout %v", a.limiter, a.timeout)
	}

	if k := b.retry.Backoff; k != retry.Linear(k.Base(), time.Second, 3*time.Second) {
		t.Errorf("b: backoff %v", k)
	}
	if !b.budget.off || b.retry.Jitter != retry.NoJitter {
		t.Errorf("b: budget %+v jitter %v", b.budget, b.retry.Jitter)
	}
	if b.retry.RetryOn(&sluice.StatusError{Code: 502}) || !b.retry.RetryOn(&sluice.StatusError{Code: 503}) {
		t.Error("b: retry_on_status [503] should retry 503 only among statuses")
	}
	if b.retry.RetryOn(errCallerGaveUp) != sluice.Classify(context.Background(), errCallerGaveUp).Retryable {
		t.Error("b: errors without a status should go to the classifier")
	}
	if b.breaker.WindowType != breaker.CountWindow || b.breaker.WindowSize != 20 {
		t.Errorf("b: breaker %+v", b.breaker)
	}
	if b.bulkhead.MaxQueue != 3 || b.bulkhead.MaxConcurrent == 0 {
		t.Errorf("b: bulkhead %+v, want queue 3 and the package's default limit", b.bulkhead)
	}

	if k := c.retry.Backoff; k != retry.Decorrelated(k.Base(), k.Cap()) {
		t.Errorf("c: backoff %v", k)
	}
	if c.budget.ratio.Ratio != 0.2 || c.budget.ratio.MinRetriesPerSecond != 1 {
		t.Errorf("c: budget %+v", c.budget)
	}
}

func TestPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	only := write("only.yaml", "policies:\n  mine:\n    retry: {max_attempts: 2, budget: off}\n")
	full := write("full.yaml", string(config.DefaultYAML()))
	bad := write("bad.yaml", "policies:\n  mine:\n    retry: {backoff: expo}\n")
	routesNoPolicy := write("routes.yaml", "routes: []\n")

	names, err := LoadPolicies(only)
	if err != nil || len(names) != 1 || names[0] != "mine" {
		t.Fatalf("LoadPolicies(policies only) = %v, %v", names, err)
	}
	if names, err := LoadPolicies(full); err != nil || len(names) != 1 || names[0] != "default" {
		t.Fatalf("LoadPolicies(full file) = %v, %v", names, err)
	}
	_, err = LoadPolicies(bad)
	var es config.Errors
	if !errors.As(err, &es) || !strings.Contains(err.Error(), "bad.yaml:3:") || !strings.Contains(err.Error(), "expo") {
		t.Errorf("bad file: err = %v, want a config error at bad.yaml:3", err)
	}
	if _, err := LoadPolicies(routesNoPolicy); err == nil {
		t.Error("a file with an empty routes list and no policy: want an error")
	}
	if _, err := LoadPolicies(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}

	rep, err := Run(context.Background(), Options{Scenario: ScenarioOutage, Seed: 3, Clients: 1, Policies: []string{PolicyNone}, PolicyFiles: []string{only}})
	if err != nil {
		t.Fatal(err)
	}
	mine := rep.Result("mine", "")
	if len(rep.Results) != 2 || mine == nil {
		t.Fatalf("results %v, want none and mine", rep.Results)
	}
	// Two attempts and no budget or breaker: every call during the outage
	// is sent twice (less a few at the edges of the window).
	if a := mine.AmplificationIncident; a < 1.97 || a > 2 {
		t.Errorf("mine: amplification during the outage %v, want 2", a)
	}

	_, err = Run(context.Background(), Options{Scenario: ScenarioOutage, PolicyFiles: []string{only, only}})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a policy defined twice: err = %v", err)
	}
}

// TestPolicyFileErrors: a file of policies alone is read as written (no
// route is added to it), so its errors are its own, and a setting a policy
// package refuses names the policy and the section.
func TestPolicyFileErrors(t *testing.T) {
	_, err := parsePolicies("p.yaml", []byte("policies:\n  mine:\n    retry: {backoff: expo}\n"))
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "policies.mine.retry.backoff" {
		t.Errorf("err = %v, want only the backoff's error", err)
	}
	_, err = parsePolicies("p.yaml", []byte("policies:\n  mine:\n    bulkhead: {max_concurrent: 100000000}\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "sim: p.yaml: policies.mine: bulkhead: ") || !strings.Contains(err.Error(), "MaxConcurrent") {
		t.Errorf("err = %v, want the bulkhead's refusal under policies.mine", err)
	}
	if _, err := parsePolicies("p.yaml", []byte("listen: 127.0.0.1:8080\n")); err == nil || !strings.Contains(err.Error(), "defines no policies") {
		t.Errorf("a file without policies: err = %v", err)
	}
}
