package config_test

import (
	"errors"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/retry"
)

// max_delay caps a server's Retry-After for every backoff, constant
// included: a constant 20 ms backoff with max_delay 2s waits a Retry-After
// of 1 s as 1 s (plus its spread), not as 20 ms.
func TestRetryConfigConstantBackoffMaxDelayCapsRetryAfter(t *testing.T) {
	cfg := mustParse(t, config.Loader{}, `
policies:
  p: {retry: {max_attempts: 3, backoff: constant, base_delay: 20ms, max_delay: 2s, jitter: none, budget: off}}
routes:
  - {name: a, upstreams: ["http://127.0.0.1:1"], policy: p}
`)
	r, err := retry.New(config.RetryConfig(*cfg.Policies["p"].Retry, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().RetryAfterMax; got != 2*time.Second {
		t.Errorf("RetryAfterMax = %v, want max_delay 2s", got)
	}
	for _, tc := range []struct {
		hint, lo, hi time.Duration
	}{{time.Second, time.Second, 1100 * time.Millisecond}, {time.Minute, 2 * time.Second, 2200 * time.Millisecond}} {
		c := r.BeginAt(time.Unix(0, 0), nil)
		wait, final := c.FailedAt(t.Context(), time.Unix(0, 0), &sluice.StatusError{Code: 503, RetryAfterHint: tc.hint})
		if final != nil || wait < tc.lo || wait > tc.hi {
			t.Errorf("Retry-After %v: waited %v (final %v), want within [%v, %v]", tc.hint, wait, final, tc.lo, tc.hi)
		}
	}
}

const validateYAML = `
policies:
  p:
    retry: {max_attempts: 3, budget: {ratio: 0.1}}
    circuit_breaker: {failure_threshold: 3}
    bulkhead: {max_concurrent: 5}
    rate_limit: {rate: 10}
    timeout: 1s
  unused: {bulkhead: {max_concurrent: 4}}
routes:
  - {name: a, upstreams: ["http://127.0.0.1:1"], policy: p, rate_limit: {rate: 5}}
  - {name: b, upstreams: ["http://127.0.0.1:2"], policy: p}
  - {name: c, upstreams: ["http://127.0.0.1:3"]}
`

// TestValidate: every rule a policy package keeps is checked through that
// package's own Validate, route by route, naming the route and the section;
// values the parser cannot produce are set by hand.
func TestValidate(t *testing.T) {
	if err := mustParse(t, config.Loader{}, validateYAML).Validate(); err != nil {
		t.Fatalf("a valid configuration: %v", err)
	}
	tests := []struct {
		name  string
		spoil func(c *config.Config)
		want  []string // substrings of the error, in order
	}{
		{"bulkhead above the package's cap", func(c *config.Config) { c.Policies["p"].Bulkhead.MaxConcurrent = 100_000_000 },
			[]string{`config: route "a": bulkhead: `, "MaxConcurrent", `config: route "b": bulkhead: `}},
		{"policy rate_limit", func(c *config.Config) { c.Policies["p"].RateLimit.Rate = -1 },
			[]string{`config: route "a": rate_limit: `}},
		{"route rate_limit", func(c *config.Config) { c.Routes[0].RateLimit.Burst = -1 },
			[]string{`config: route "a": rate_limit: `}},
		{"retry", func(c *config.Config) { c.Policies["p"].Retry.MaxAttempts = -1 },
			[]string{`config: route "a": retry: `, "MaxAttempts"}},
		{"retry budget", func(c *config.Config) { c.Policies["p"].Retry.Budget.Ratio = math.NaN() },
			[]string{`config: route "a": retry: `, "Ratio"}},
		{"circuit_breaker", func(c *config.Config) { c.Policies["p"].CircuitBreaker.FailureRate = 2 },
			[]string{`config: route "a": circuit_breaker: `, "FailureRateThreshold"}},
		{"missing policy", func(c *config.Config) { c.Routes[2].Policy = "gone" },
			[]string{`config: route "c": policy: no policy named "gone"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, config.Loader{}, validateYAML)
			tt.spoil(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			msg := err.Error()
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", err, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
	// A policy no route names is not instantiated, so it is not refused.
	c := mustParse(t, config.Loader{}, validateYAML)
	c.Policies["unused"].Bulkhead.MaxConcurrent = -1
	if err := c.Validate(); err != nil {
		t.Errorf("an unused policy's settings were refused: %v", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (config.Policy{}).Validate("x"); err != nil {
		t.Errorf("the empty policy: %v", err)
	}
	err := config.Policy{Bulkhead: &config.Bulkhead{MaxQueue: -1}, Retry: &config.Retry{MaxAttempts: -1}}.Validate("x")
	if err == nil || !strings.HasPrefix(err.Error(), "bulkhead: ") {
		t.Errorf("err = %v, want the first section's refusal, prefixed bulkhead:", err)
	}
}

// TestParsePolicies: a file of policies alone is valid for ParsePolicies,
// errors keep the file's own positions, and whatever else the file holds
// is checked as Parse checks it.
func TestParsePolicies(t *testing.T) {
	l := config.Loader{}
	ps, err := l.ParsePolicies("p.yaml", []byte("policies:\n  mine:\n    retry: {max_attempts: 2, budget: off}\n"))
	if err != nil || len(ps) != 1 || ps["mine"].Retry == nil || ps["mine"].Retry.MaxAttempts != 2 {
		t.Fatalf("policies only: %v, %v", ps, err)
	}
	if _, err := l.Parse("p.yaml", []byte("policies:\n  mine: {}\n")); err == nil {
		t.Error("Parse accepted a file without routes")
	}
	_, err = l.ParsePolicies("bad.yaml", []byte("policies:\n  mine:\n    retry: {backoff: expo}\n"))
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line != 3 || es[0].Field != "policies.mine.retry.backoff" {
		t.Errorf("bad backoff: err = %v, want one error at bad.yaml:3 on policies.mine.retry.backoff", err)
	}
	if _, err := l.ParsePolicies("r.yaml", []byte("routes: []\n")); err == nil {
		t.Error("an empty routes list was accepted")
	}
	if _, err := l.ParsePolicies("r.yaml", []byte("policies: {p: {}}\nroutes:\n  - {name: a, upstreams: [\"ftp://x\"]}\n")); err == nil {
		t.Error("a bad route in a policies file was accepted")
	}
	ps, err = l.ParsePolicies(config.DefaultFile, config.DefaultYAML())
	if _, ok := ps["default"]; err != nil || !ok {
		t.Errorf("the default file: %v, %v", ps, err)
	}
	if ps, err := l.ParsePolicies("empty.yaml", nil); err != nil || len(ps) != 0 {
		t.Errorf("an empty file: %v, %v; want no policies and no error", ps, err)
	}
}

// TestImportsNoRegistry keeps config the schema: it may import the policy
// packages for their Config types, but nothing that holds instances.
func TestImportsNoRegistry(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch strings.TrimPrefix(dep, "github.com/sluice-go/sluice/") {
		case "registry", "proxy", "sim", "health", "metrics", "sluicehttp", "dlq":
			t.Errorf("config depends on %s", dep)
		}
	}
}
