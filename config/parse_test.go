package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
	"go.yaml.in/yaml/v3"
)

func mustParse(t *testing.T, l config.Loader, src string) *config.Config {
	t.Helper()
	cfg, err := l.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// TestExample checks that examples/sluice.yaml, the example `sluice demo` runs,
// parses to exactly the values it spells out.
func TestExample(t *testing.T) {
	t.Parallel()
	l := config.Loader{LookupEnv: env()}
	cfg, err := l.Load(filepath.Join("..", "examples", "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		Listen:        "127.0.0.1:8080",
		Admin:         config.Admin{Listen: "127.0.0.1:9901"},
		Storage:       config.Storage{DLQ: config.Backend{URL: "bolt://./sluice-data/dlq.db"}},
		Log:           config.Log{Level: "info", Format: "text"},
		Server:        config.Server{ReadHeaderTimeout: config.DefaultReadHeaderTimeout, IdleTimeout: config.DefaultIdleTimeout, MaxHeaderBytes: config.DefaultMaxHeaderBytes},
		ShutdownGrace: config.DefaultShutdownGrace,
		Policies: map[string]config.Policy{
			"network": {
				Retry: &config.Retry{MaxAttempts: 5, Backoff: config.BackoffExponential, BaseDelay: time.Second,
					MaxDelay: 30 * time.Second, Jitter: config.JitterFull, Budget: &config.Budget{Ratio: 0.1}},
				CircuitBreaker: &config.CircuitBreaker{FailureRate: 0.5, Window: 300 * time.Second, MinimumCalls: 10,
					OpenFor: 30 * time.Second, HalfOpenCalls: 2},
				Bulkhead: &config.Bulkhead{MaxConcurrent: 50, MaxQueue: 100, MaxWait: time.Second},
				Timeout:  30 * time.Second,
			},
		},
		Routes: []config.Route{
			{
				Name:         "agents",
				Match:        config.Match{PathPrefix: "/agents/"},
				Upstreams:    []string{"http://127.0.0.1:9000", "http://127.0.0.1:9001"},
				Policy:       "network",
				OnExhausted:  config.OnExhaustedQueue,
				MaxRetryBody: config.MiB,
			},
			{
				Name:         "api",
				Match:        config.Match{PathPrefix: "/api/", Methods: []string{"GET", "HEAD"}},
				Upstreams:    []string{"http://127.0.0.1:9100"},
				Policy:       "network",
				Timeout:      2 * time.Second,
				RateLimit:    &config.RateLimit{Rate: 100, Per: time.Second, Burst: 20},
				Fallback:     &config.Fallback{StaleCache: 5 * time.Minute},
				OnExhausted:  config.OnExhaustedFail,
				MaxRetryBody: config.MiB,
			},
		},
	}
	// Compare as YAML: cfg also records that admin.token came from
	// ${SLUICE_ADMIN_TOKEN:-}, which want cannot spell.
	if got, want := dump(t, cfg), dump(t, &want); got != want {
		t.Errorf("example parsed to\n%s\nwant\n%s", got, want)
	}
	if len(cfg.Routes[0].UpstreamURLs()) != 2 || cfg.Routes[0].UpstreamURLs()[1].Host != "127.0.0.1:9001" {
		t.Errorf("UpstreamURLs() = %v", cfg.Routes[0].UpstreamURLs())
	}
}

func mustMarshal(c *config.Config) []byte {
	b, err := yaml.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

func dump(t *testing.T, c *config.Config) string {
	t.Helper()
	return string(mustMarshal(c))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, testLoader, route)
	want := config.Config{
		Listen:        config.DefaultListen,
		Admin:         config.Admin{Listen: config.DefaultAdminListen},
		Storage:       config.Storage{DLQ: config.Backend{URL: config.DefaultDLQ}},
		Log:           config.Log{Level: config.DefaultLogLevel, Format: config.DefaultLogFormat},
		Server:        config.Server{ReadHeaderTimeout: config.DefaultReadHeaderTimeout, IdleTimeout: config.DefaultIdleTimeout, MaxHeaderBytes: config.DefaultMaxHeaderBytes},
		ShutdownGrace: config.DefaultShutdownGrace,
		Routes: []config.Route{{
			Name:         "a",
			Match:        config.Match{PathPrefix: "/"},
			Upstreams:    []string{"http://127.0.0.1:9000"},
			OnExhausted:  config.OnExhaustedFail,
			MaxRetryBody: config.DefaultMaxRetryBody,
		}},
	}
	if !reflect.DeepEqual(cfg, &want) {
		t.Errorf("got\n%s\nwant\n%s", dump(t, cfg), dump(t, &want))
	}
	if config.DefaultMaxRetryBody != 1<<20 {
		t.Errorf("DefaultMaxRetryBody = %d, want 1MiB", config.DefaultMaxRetryBody)
	}

	// An explicit zero is kept, not replaced by the default.
	cfg = mustParse(t, testLoader, `shutdown_grace: 0s
routes:
  - name: a
    upstreams: [http://h]
    max_retry_body: 0
    rate_limit: {rate: 5}
`)
	if cfg.ShutdownGrace != 0 || cfg.Routes[0].MaxRetryBody != 0 {
		t.Errorf("explicit zeros: shutdown_grace %v, max_retry_body %v", cfg.ShutdownGrace, cfg.Routes[0].MaxRetryBody)
	}
	if rl := cfg.Routes[0].RateLimit; *rl != (config.RateLimit{Rate: 5, Per: time.Second}) {
		t.Errorf("rate_limit = %+v, want per defaulted to 1s", *rl)
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	l := config.Loader{LookupEnv: env("SLUICE_UPSTREAM", "https://backend.internal:8443", "SLUICE_ADMIN_TOKEN", "tok")}
	cfg := mustParse(t, l, string(config.DefaultYAML()))
	if got := cfg.Routes[0].Upstreams; len(got) != 1 || got[0] != "https://backend.internal:8443" {
		t.Errorf("upstreams = %v, want SLUICE_UPSTREAM", got)
	}
	if cfg.Admin.Token != "tok" || cfg.Listen != config.DefaultListen || cfg.Storage.DLQ.URL != config.DefaultDLQ {
		t.Errorf("default config: %+v", cfg)
	}
	cfg = mustParse(t, config.Loader{LookupEnv: env()}, string(config.DefaultYAML()))
	if got := cfg.Routes[0].Upstreams[0]; got != "http://127.0.0.1:9000" {
		t.Errorf("upstream without SLUICE_UPSTREAM = %q", got)
	}
	bad := config.Loader{LookupEnv: env("SLUICE_UPSTREAM", "ftp://x")}
	if _, err := bad.Parse(config.DefaultFile, config.DefaultYAML()); err == nil ||
		!strings.HasPrefix(err.Error(), config.DefaultFile+":") {
		t.Errorf("bad SLUICE_UPSTREAM: err = %v, want an error in %s", err, config.DefaultFile)
	}
	// Default reads the process environment, which this test does not
	// control; it must parse whenever the variables are unset or valid.
	if _, err := config.Default(); err != nil && os.Getenv("SLUICE_UPSTREAM") == "" {
		t.Errorf("Default: %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(path, []byte("listen: nope\n"+route), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil || err.Error() != path+`:1:9: listen: bad address "nope" (want host:port, such as 127.0.0.1:8080 or :8080)` {
		t.Errorf("Load error = %v", err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	l := config.Loader{LookupEnv: env("HOST", "10.0.0.1", "PORT", "9000", "EMPTY", "", "DUR", "250ms", "N", "4")}
	tests := []struct {
		value, want string
	}{
		{"http://${HOST}:${PORT}", "http://10.0.0.1:9000"},
		{"http://${MISSING:-localhost}:1", "http://localhost:1"},
		{"http://${EMPTY:-h}:1", "http://h:1"},
		{"http://h:1/$x/a$", "http://h:1/$x/a$"},
		{"http://h:1/$${HOST}", "http://h:1/${HOST}"},
		{"http://h:1/${EMPTY}x", "http://h:1/x"},
	}
	for _, tt := range tests {
		cfg := mustParse(t, l, "routes: [{name: a, upstreams: ['"+tt.value+"']}]\n")
		if got := cfg.Routes[0].Upstreams[0]; got != tt.want {
			t.Errorf("%q expanded to %q, want %q", tt.value, got, tt.want)
		}
	}
	// Typed values are expanded before they are parsed.
	cfg := mustParse(t, l, "policies: {p: {timeout: '${DUR}', retry: {max_attempts: '${N}'}}}\n"+route)
	if p := cfg.Policies["p"]; p.Timeout != 250*time.Millisecond || p.Retry.MaxAttempts != 4 {
		t.Errorf("typed expansion: timeout %v, max_attempts %d", p.Timeout, p.Retry.MaxAttempts)
	}
	// Keys are not expanded.
	errorLines(t, "'${HOST}': 1\n"+route)
}

func TestAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, testLoader, `policies:
  base: &base
    retry: &retry {max_attempts: 3, backoff: constant, base_delay: 1s}
    timeout: 5s
  derived:
    <<: *base
    timeout: 9s
  listed:
    retry:
      <<: [{max_attempts: 7}, *retry]
      base_delay: 2s
routes:
  - &r {name: a, upstreams: [http://h], policy: base}
  - {<<: *r, name: b, policy: derived}
`)
	base, derived, listed := cfg.Policies["base"], cfg.Policies["derived"], cfg.Policies["listed"]
	if derived.Timeout != 9*time.Second || derived.Retry.MaxAttempts != 3 || base.Timeout != 5*time.Second {
		t.Errorf("merge: base %+v, derived %+v", base, derived)
	}
	if !reflect.DeepEqual(*listed.Retry, config.Retry{MaxAttempts: 7, Backoff: config.BackoffConstant, BaseDelay: 2 * time.Second}) {
		t.Errorf("merge of a list: %+v (the first mapping listed wins; keys written win over merged ones)", *listed.Retry)
	}
	if r := cfg.Routes[1]; r.Name != "b" || r.Policy != "derived" || r.Upstreams[0] != "http://h" {
		t.Errorf("merged route: %+v", r)
	}
	if derived.Retry == base.Retry {
		t.Errorf("policies decoded from one anchor share a *Retry")
	}
}

func TestBudgetOff(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, testLoader, "policies: {p: {retry: {budget: off}}}\n"+route)
	if b := cfg.Policies["p"].Retry.Budget; b == nil || !b.Off {
		t.Fatalf("budget: off gave %+v", b)
	}
	if !strings.Contains(dump(t, cfg), "budget: \"off\"") {
		t.Errorf("marshalled budget: off as\n%s", dump(t, cfg))
	}
}

// TestRoundTrip checks that a Config marshalled to YAML parses back to the
// same Config.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srcs := map[string][]byte{"default": config.DefaultYAML()}
	example, err := os.ReadFile(filepath.Join("..", "examples", "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srcs["example"] = example
	srcs["everything"] = []byte(`listen: ":8080"
admin: {listen: "[::1]:9901", token: literal}
storage: {dlq: "rediss://user:pw@redis.internal:6380/2"}
log: {level: debug, format: json}
shutdown_grace: 1m30s
policies:
  all:
    retry: {max_attempts: 4, max_elapsed: 1m, backoff: decorrelated, base_delay: 50ms, max_delay: 2s, multiplier: 1.5,
      jitter: proportional, jitter_ratio: 0.25, budget: {ratio: 0.2, window: 10s, min_per_second: 0.5}, retry_on_status: [502, 503]}
    circuit_breaker: {failure_threshold: 5, failure_rate: 0.6, slow_call_duration: 2s, slow_call_rate: 0.9, window_calls: 100,
      minimum_calls: 10, open_for: 5s, max_open_for: 1m, half_open_calls: 3, success_threshold: 2, half_open_max_wait: 10s}
    bulkhead: {max_concurrent: 8, max_queue: 4, max_wait: 100ms}
    rate_limit: {rate: 0.5, per: 1m, burst: 3, smooth: true, max_wait: 2s}
  none: {retry: {budget: off}}
routes:
  - name: r-1
    match: {path_prefix: /x, host: "api.example.com:8443", methods: [POST, PROPFIND]}
    upstreams: ["https://[::1]:8443/base"]
    policy: all
    max_retry_body: 1536
    retry_methods: [POST]
    on_exhausted: queue
`)
	for name, src := range srcs {
		cfg := mustParse(t, config.Loader{LookupEnv: env()}, string(src))
		again := mustParse(t, config.Loader{LookupEnv: env()}, dump(t, cfg.Redacted()))
		if !reflect.DeepEqual(cfg.Redacted(), again.Redacted()) {
			t.Errorf("%s: round trip changed the config:\n%s\nbecame\n%s", name, dump(t, cfg), dump(t, again))
		}
	}
}

// TestAliasBomb checks that a small file whose aliases and merge keys
// expand exponentially is refused instead of decoded.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("x0: &a0 {max_attempts: 1}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	b.WriteString("policies: {p: {retry: *a9}}\n" + route)
	_, err := testLoader.Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "expands to more than 100000 values") {
		t.Errorf("err = %v", err)
	}
	// Lists of aliases are counted too.
	b.Reset()
	b.WriteString("x: &codes [")
	for code := 100; code < 600; code++ {
		fmt.Fprintf(&b, "%d, ", code)
	}
	b.WriteString("599]\npolicies:\n")
	for i := range 250 {
		fmt.Fprintf(&b, "  p%d: {retry: {retry_on_status: *codes}}\n", i)
	}
	b.WriteString(route)
	_, err = testLoader.Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "expands to more than 100000 values") {
		t.Errorf("err = %.300v", err)
	}
}
