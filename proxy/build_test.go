package proxy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
	"github.com/sluice-go/sluice/timeout"
)

const buildYAML = `
policies:
  network:
    retry: {max_attempts: 5, backoff: exponential, base_delay: 1s, max_delay: 30s, jitter: full, budget: {ratio: 0.1}}
    circuit_breaker: {failure_threshold: 3, open_for: 30s, half_open_calls: 2}
    bulkhead: {max_concurrent: 50, max_queue: 100, max_wait: 1s}
    timeout: 30s
routes:
  - name: agents
    match: {path_prefix: /agents/}
    upstreams: [http://127.0.0.1:9000, http://127.0.0.1:9001]
    policy: network
    on_exhausted: queue
  - name: api
    match: {path_prefix: /api/, methods: [GET, HEAD]}
    upstreams: [http://127.0.0.1:9100]
    policy: network
    timeout: 2s
    rate_limit: {rate: 100, per: 1s, burst: 20}
`

func parseConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func buildFrom(t *testing.T, reg *registry.Registry, src string, prev *built) (*built, error) {
	t.Helper()
	return build(reg, parseConfig(t, src), buildOptions{previous: prev})
}

func TestBuild(t *testing.T) {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	b, err := buildFrom(t, reg, buildYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.routes) != 2 {
		t.Fatalf("routes = %d, want 2", len(b.routes))
	}
	agents, api := b.routes[0], b.routes[1]
	var names []string
	for _, br := range agents.breakers {
		names = append(names, br.Name())
	}
	if got := strings.Join(names, ","); got != "agents/127.0.0.1:9000,agents/127.0.0.1:9001" {
		t.Errorf("breakers = %s", got)
	}
	if agents.bulkhead.Name() != "agents" || agents.retry.Name() != "agents" {
		t.Errorf("bulkhead %q, retry %q; want both named agents", agents.bulkhead.Name(), agents.retry.Name())
	}
	if len(agents.limiters) != 0 {
		t.Errorf("agents limiters = %d, want 0", len(agents.limiters))
	}
	if len(api.limiters) != 1 || api.limiters[0].Name() != "api"+routeLimiterSuffix {
		t.Errorf("api limiters = %v, want one named api/route", api.limiters)
	} else if c := api.limiters[0].Config(); c.Rate != 100 || c.Burst != 20 || c.Per != time.Second {
		t.Errorf("api limiter config = %+v", c)
	}
	if agents.timeout.Limit() != 30*time.Second || api.timeout.Limit() != 2*time.Second {
		t.Errorf("timeouts = %v, %v; want 30s (policy) and 2s (route override)", agents.timeout.Limit(), api.timeout.Limit())
	}
	rc := agents.retry.Config()
	if rc.MaxAttempts != 5 || rc.Backoff != retry.Exponential(time.Second, rc.Backoff.Multiplier(), 30*time.Second) {
		t.Errorf("retry config = attempts %d, backoff %v", rc.MaxAttempts, rc.Backoff)
	}
	if _, ok := agents.retry.Budget().(*retry.RatioBudget); !ok {
		t.Errorf("budget = %T, want *retry.RatioBudget", agents.retry.Budget())
	}
	if c := agents.bulkhead.Config(); c.MaxConcurrent != 50 || c.MaxQueue != 100 || c.MaxWait != time.Second {
		t.Errorf("bulkhead config = %+v", c)
	}
	// Everything is findable in the registry by name.
	if got, ok := reg.LookupBreaker("agents/127.0.0.1:9001"); !ok || got != agents.breakers[1] {
		t.Error("fallback upstream's breaker not registered")
	}
	if _, ok := reg.LookupLimiter("api/route"); !ok {
		t.Error("route limiter not registered")
	}
}

func TestBuildReloadKeepsOpenBreakerOpen(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	reg := registry.New(registry.Config{Clock: clock})
	b1, err := buildFrom(t, reg, buildYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	br := b1.routes[0].breakers[0]
	budget1 := b1.routes[0].retry.Budget()
	for range 3 {
		p, err := br.Allow()
		if err != nil {
			t.Fatal(err)
		}
		p.Done(breaker.Failure, 0)
	}
	if s := br.State(); s != breaker.StateOpen {
		t.Fatalf("state after 3 failures = %v, want open", s)
	}
	changed := strings.Replace(buildYAML, "open_for: 30s", "open_for: 45s", 1)
	changed = strings.Replace(changed, "max_concurrent: 50", "max_concurrent: 7", 1)
	b2, err := buildFrom(t, reg, changed, b1)
	if err != nil {
		t.Fatal(err)
	}
	if b2.routes[0].breakers[0] != br {
		t.Fatal("reload built a new breaker instead of updating the running one")
	}
	if s := br.State(); s != breaker.StateOpen {
		t.Errorf("state after reload = %v, want still open", s)
	}
	if got := br.Config().OpenFor; got != 45*time.Second {
		t.Errorf("OpenFor after reload = %v, want 45s", got)
	}
	if got := b2.routes[0].bulkhead.Config().MaxConcurrent; got != 7 {
		t.Errorf("bulkhead MaxConcurrent after reload = %d, want 7", got)
	}
	budget2 := b2.routes[0].retry.Budget()
	if budget2 != budget1 {
		t.Error("an unchanged retry budget was not carried over")
	}
	b3, err := buildFrom(t, reg, strings.Replace(buildYAML, "ratio: 0.1", "ratio: 0.2", 1), b2)
	if err != nil {
		t.Fatal(err)
	}
	if b3.routes[0].retry.Budget() == budget2 {
		t.Error("a changed retry budget was carried over")
	}
}

func TestBuildRemovesDroppedBreakers(t *testing.T) {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	b1, err := buildFrom(t, reg, buildYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := strings.Replace(buildYAML, "[http://127.0.0.1:9000, http://127.0.0.1:9001]", "[http://127.0.0.1:9000]", 1)
	if _, err := buildFrom(t, reg, one, b1); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.LookupBreaker("agents/127.0.0.1:9001"); ok {
		t.Error("the breaker of a removed upstream is still registered")
	}
	if _, ok := reg.LookupBreaker("agents/127.0.0.1:9000"); !ok {
		t.Error("the breaker of a kept upstream was removed")
	}
}

func TestBuildIsAllOrNothing(t *testing.T) {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	b1, err := buildFrom(t, reg, buildYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, strings.Replace(buildYAML, "max_concurrent: 50", "max_concurrent: 9", 1))
	// A value the parser cannot produce but a hand-made Config can: the
	// policy package refuses it, and nothing of the reload is applied.
	bad := cfg.Policies["network"]
	bad.Bulkhead.MaxConcurrent = -1
	_, err = build(reg, cfg, buildOptions{previous: b1})
	if err == nil || !strings.Contains(err.Error(), "MaxConcurrent") {
		t.Fatalf("err = %v, want a bulkhead MaxConcurrent error", err)
	}
	if got := b1.routes[0].bulkhead.Config().MaxConcurrent; got != 50 {
		t.Errorf("MaxConcurrent = %d after a refused build, want 50 unchanged", got)
	}
	if _, err := build(nil, &config.Config{}, buildOptions{}); err == nil {
		t.Error("Build with a nil registry succeeded")
	}
}

func TestBuildRetryOn(t *testing.T) {
	reg := registry.New(registry.Config{})
	cfg := parseConfig(t, `
policies:
  p: {retry: {max_attempts: 3, retry_on_status: [503]}}
  q: {retry: {max_attempts: 3}}
routes:
  - {name: a, upstreams: ["http://127.0.0.1:1"], policy: p}
  - {name: b, upstreams: ["http://127.0.0.1:1"], policy: q}
`)
	final := errors.New("already answered")
	b, err := build(reg, cfg, buildOptions{neverRetry: func(err error) bool { return errors.Is(err, final) }})
	if err != nil {
		t.Fatal(err)
	}
	withStatus, plain := b.routes[0].retry.Config().RetryOn, b.routes[1].retry.Config().RetryOn
	tests := []struct {
		name       string
		err        error
		want, plan bool // with retry_on_status [503]; without
	}{
		{"listed status", &sluice.StatusError{Code: 503}, true, true},
		{"unlisted retryable status", &sluice.StatusError{Code: 502}, false, true},
		{"non-retryable status", &sluice.StatusError{Code: 500}, false, false},
		{"network error", errors.New("connection reset"), true, true},
		{"timeout is not an upstream answer", &timeout.Error{Limit: time.Second, Err: &sluice.StatusError{Code: 504}}, true, true},
		{"rejection", fmt.Errorf("shed: %w", sluice.ErrRejected), false, false},
		{"never", errors.Join(final, &sluice.StatusError{Code: 503}), false, false},
	}
	for _, tt := range tests {
		if got := withStatus(tt.err); got != tt.want {
			t.Errorf("%s: with retry_on_status = %v, want %v", tt.name, got, tt.want)
		}
		if got := plain(tt.err); got != tt.plan {
			t.Errorf("%s: without retry_on_status = %v, want %v", tt.name, got, tt.plan)
		}
	}
}

func TestBreakerName(t *testing.T) {
	r := config.Route{Name: "r", Upstreams: []string{"http://h:1", "http://h:1/v2", "https://other"}}
	want := []string{"r/h:1#1", "r/h:1#2", "r/other"}
	for i, w := range want {
		if got := breakerName(r, i); got != w {
			t.Errorf("BreakerName(%d) = %q, want %q", i, got, w)
		}
	}
}

func TestBuildForgetsRemovedRoutesAndRegistersTimeouts(t *testing.T) {
	reg := registry.New(registry.Config{Clock: sluicetest.NewFakeClock(time.Time{})})
	b1, err := buildFrom(t, reg, buildYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func() map[string]bool {
		s := reg.Snapshot()
		m := map[string]bool{}
		for _, x := range s.Timeouts {
			m["timeout:"+x.Name] = true
		}
		for _, x := range s.Retries {
			m["retry:"+x.Name] = true
		}
		for _, x := range s.Bulkheads {
			m["bulkhead:"+x.Name] = true
		}
		for _, x := range s.Limiters {
			m["limiter:"+x.Name] = true
		}
		return m
	}
	before := names()
	for _, want := range []string{"timeout:agents", "timeout:api", "retry:api", "bulkhead:api", "limiter:api/route"} {
		if !before[want] {
			t.Errorf("after the first build the registry lacks %s: %v", want, before)
		}
	}
	if got := b1.routes[1].timeout.Limit(); got != 2*time.Second {
		t.Errorf("api timeout = %v, want the route's 2s", got)
	}
	// Drop the api route and change agents' timeout.
	onlyAgents := buildYAML[:strings.Index(buildYAML, "  - name: api")]
	onlyAgents = strings.Replace(onlyAgents, "timeout: 30s", "timeout: 10s", 1)
	b2, err := buildFrom(t, reg, onlyAgents, b1)
	if err != nil {
		t.Fatal(err)
	}
	after := names()
	for _, gone := range []string{"timeout:api", "retry:api", "bulkhead:api", "limiter:api/route"} {
		if after[gone] {
			t.Errorf("%s of the removed route is still registered", gone)
		}
	}
	for _, kept := range []string{"timeout:agents", "retry:agents", "bulkhead:agents"} {
		if !after[kept] {
			t.Errorf("%s of the kept route was removed", kept)
		}
	}
	tm, _ := reg.Timeout("agents", timeout.Config{})
	if tm != b2.routes[0].timeout || tm.Limit() != 10*time.Second {
		t.Errorf("registered agents timeout = %v, want the rebuilt 10s one", tm.Limit())
	}
}
