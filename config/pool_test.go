package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy/pool"
)

// TestParsePool checks that balance, outlier, health_check and weighted
// upstreams make a route's pool, with every key reaching pool.Config.
func TestParsePool(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, testLoader, `
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstreams:
      - http://127.0.0.1:9001
      - {url: "http://127.0.0.1:9002", weight: 2}
    balance: weighted
    outlier:
      consecutive_failures: 3
      success_rate: off
      base_ejection_time: 10s
      max_ejection_time: 60s
      max_ejection_percent: 34
      trial_requests: 2
      trial_successes: 4
    health_check:
      path: /healthz
      interval: 200ms
      timeout: 100ms
      healthy_threshold: 1
      unhealthy_threshold: 3
  - name: plain
    upstreams: [http://127.0.0.1:9003, http://127.0.0.1:9004]
`)
	r := cfg.Routes[0]
	if r.Pool == nil {
		t.Fatal("route with balance has no Pool")
	}
	if cfg.Routes[1].Pool != nil {
		t.Error("route without pool keys has a Pool; its upstreams must stay primary and fallbacks")
	}
	pc := config.PoolConfig(r)
	want := []pool.Endpoint{{Addr: "http://127.0.0.1:9001", Weight: 1}, {Addr: "http://127.0.0.1:9002", Weight: 2}}
	if pc.Name != "orders" || pc.Balancer != pool.Weighted || !slices.Equal(pc.Replicas, want) {
		t.Errorf("PoolConfig = %+v", pc)
	}
	o := pool.Outlier{ConsecutiveFailures: 3, SuccessRate: pool.SuccessRate{Disabled: true}, BaseEjectionTime: 10 * time.Second,
		MaxEjectionTime: time.Minute, MaxEjectionPercent: 34, TrialRequests: 2, TrialSuccesses: 4}
	if pc.Outlier != o {
		t.Errorf("Outlier = %+v, want %+v", pc.Outlier, o)
	}
	h := pool.Health{Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 3}
	if pc.Health != h || r.Pool.HealthPath != "/healthz" {
		t.Errorf("Health = %+v %q, want %+v /healthz", pc.Health, r.Pool.HealthPath, h)
	}
	if _, err := pool.New(pc); err != nil {
		t.Errorf("pool.New(PoolConfig) = %v", err)
	}
}

// TestParsePoolErrors checks that nonsense in a pool is refused with the
// file, line and field.
func TestParsePoolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"    balance: fastest\n", "sluice.yaml:4:14: routes[0].balance: unknown balance \"fastest\""},
		{"    outlier: {max_ejection_percent: 100}\n", "sluice.yaml:4:37: routes[0].outlier.max_ejection_percent: must be 1 to 99, got 100"},
		{"    health_check: {path: /h, interval: 1s, timeout: 1s}\n", "sluice.yaml:4:53: routes[0].health_check.timeout: must be less than interval (1s), got 1s"},
		{"    health_check: {path: h}\n", "routes[0].health_check.path: bad health check path \"h\""},
		{"    health_check: {interval: 1s}\n", "routes[0].health_check.path: required"},
		{"    outlier: {base_ejection_time: 60s, max_ejection_time: 10s}\n", "routes[0].outlier.max_ejection_time: must be at least base_ejection_time (1m0s), got 10s"},
		{"    balance: p2c\n    upstreams: [http://127.0.0.1:1, http://127.0.0.1:1]\n", "sluice.yaml:5:37: routes[0].upstreams[1]: duplicate upstream http://127.0.0.1:1 (first at line 5)"},
		{"    balance: p2c\n    upstreams: [{url: \"http://127.0.0.1:1\", weight: 0}]\n", "sluice.yaml:5:53: routes[0].upstreams[0].weight: must be at least 1, got 0"},
		{"    balance: p2c\n    upstreams: [{url: \"http://127.0.0.1:1\", weight: -2}]\n", "routes[0].upstreams[0].weight: must be at least 1, got -2"},
		{"    upstreams: [{url: \"http://127.0.0.1:1\", weight: 2}]\n", "sluice.yaml:4:17: routes[0].upstreams: a weight needs a pool"},
		{"    balance: p2c\n    upstreams: [{weight: 2}]\n", "routes[0].upstreams[0].url: required"},
	}
	for _, tt := range tests {
		src := "routes:\n  - name: a\n    match: {path_prefix: /}\n" + tt.src
		if !strings.Contains(tt.src, "upstreams") {
			src = "routes:\n  - name: a\n    upstreams: [http://127.0.0.1:9000]\n" + tt.src
		}
		lines := errorLines(t, src)
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, tt.want) }) {
			t.Errorf("%q:\n got %q\nwant one containing %q", tt.src, lines, tt.want)
		}
	}
}
