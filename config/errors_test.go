package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/config"
)

// env is a fixed environment for tests, so they need no t.Setenv.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var testLoader = config.Loader{LookupEnv: env("TOKEN", "s3cret", "EMPTY", "", "PORT", "9000", "DUR", "250ms")}

// errorLines parses src and returns its errors, one string each.
func errorLines(t *testing.T, src string) []string {
	t.Helper()
	cfg, err := testLoader.Parse("sluice.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want errors; got %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a Config with an error")
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want config.Errors: %v", err, err)
	}
	if got := err.Error(); got != strings.Join(linesOf(errs), "\n") {
		t.Errorf("Errors.Error() = %q, not its errors one per line", got)
	}
	return linesOf(errs)
}

func linesOf(errs config.Errors) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// route is a valid minimal routes section, appended to cases that test
// something else.
const route = `
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown backoff", `policies:
  network:
    retry:
      backoff: expo
` + route, []string{
			`sluice.yaml:4:16: policies.network.retry.backoff: unknown backoff "expo" (want exponential, linear, constant, decorrelated)`,
		}},
		{"unknown key with hint", "listn: :80\n" + route, []string{
			`sluice.yaml:1:1: listn: unknown key (did you mean listen?)`,
		}},
		{"unknown key without hint", "policies:\n  p: {zzz: 1}\n" + route, []string{
			`sluice.yaml:2:7: policies.p.zzz: unknown key (want one of bulkhead, circuit_breaker, rate_limit, retry, timeout)`,
		}},
		{"duplicate key", "listen: :80\nlisten: :81\n" + route, []string{
			`sluice.yaml:2:1: listen: duplicate key (first at line 1)`,
		}},
		{"wrong kinds", "admin: [1]\nstorage: x\npolicies:\n  p:\n    timeout: {a: 1}\n" + route, []string{
			`sluice.yaml:1:8: admin: want a mapping, got a list`,
			`sluice.yaml:2:10: storage: want a mapping, got "x"`,
			`sluice.yaml:5:14: policies.p.timeout: want a duration, got a mapping`,
		}},
		{"empty value", "listen:\n" + route, []string{
			`sluice.yaml:1:8: listen: want an address, got an empty value`,
		}},
		{"durations", `policies:
  p:
    timeout: 30
    retry: {base_delay: soon, max_delay: -1s, max_elapsed: 0s}
` + route, []string{
			`sluice.yaml:3:14: policies.p.timeout: bad duration "30": missing unit (write 30s, 30ms or 1m30s)`,
			`sluice.yaml:4:25: policies.p.retry.base_delay: bad duration "soon" (want a Go duration such as 30s, 500ms or 1m30s)`,
			`sluice.yaml:4:42: policies.p.retry.max_delay: must not be negative, got -1s`,
			`sluice.yaml:4:60: policies.p.retry.max_elapsed: must be greater than 0, got 0s`,
		}},
		{"numbers", `policies:
  p:
    retry: {max_attempts: five, multiplier: 0.5, jitter: proportional, jitter_ratio: 1.5}
    circuit_breaker: {failure_rate: 0, slow_call_rate: .nan, minimum_calls: 0}
    bulkhead: {max_concurrent: 2.5, max_queue: -1}
` + route, []string{
			`sluice.yaml:3:27: policies.p.retry.max_attempts: want an integer, got "five"`,
			`sluice.yaml:3:45: policies.p.retry.multiplier: must be at least 1, got 0.5`,
			`sluice.yaml:3:86: policies.p.retry.jitter_ratio: must be greater than 0 and at most 1, got 1.5`,
			`sluice.yaml:4:37: policies.p.circuit_breaker.failure_rate: must be greater than 0 and at most 1, got 0`,
			`sluice.yaml:4:56: policies.p.circuit_breaker.slow_call_rate: want a number, got ".nan"`,
			`sluice.yaml:4:77: policies.p.circuit_breaker.minimum_calls: must be at least 1, got 0`,
			`sluice.yaml:5:32: policies.p.bulkhead.max_concurrent: want an integer, got "2.5"`,
			`sluice.yaml:5:48: policies.p.bulkhead.max_queue: must not be negative, got -1`,
		}},
		{"bulkhead max_wait without a queue", `policies:
  p:
    bulkhead: {max_concurrent: 5, max_wait: 1s}
  q:
    bulkhead: {max_concurrent: 5, max_queue: 0, max_wait: 200ms}
  ok:
    bulkhead: {max_concurrent: 5, max_queue: 10, max_wait: 1s}
` + route, []string{
			`sluice.yaml:3:45: policies.p.bulkhead.max_wait: needs max_queue above 0: without a queue no caller waits (max_queue is 0)`,
			`sluice.yaml:5:59: policies.q.bulkhead.max_wait: needs max_queue above 0: without a queue no caller waits (max_queue is 0)`,
		}},
		{"retry cross checks", `policies:
  p:
    retry: {base_delay: 2s, max_delay: 1s, jitter: full, jitter_ratio: 0.2}
  q:
    retry: {jitter_ratio: 0.2, retry_on_status: [503, 503, 700, x]}
` + route, []string{
			`sluice.yaml:3:40: policies.p.retry.max_delay: must be at least base_delay (2s), got 1s`,
			`sluice.yaml:3:72: policies.p.retry.jitter_ratio: applies only to jitter: proportional (jitter is full)`,
			`sluice.yaml:5:27: policies.q.retry.jitter_ratio: applies only to jitter: proportional; set jitter too`,
			`sluice.yaml:5:55: policies.q.retry.retry_on_status[1]: duplicate status 503 (first at line 5)`,
			`sluice.yaml:5:60: policies.q.retry.retry_on_status[2]: bad HTTP status 700 (want 100 to 599)`,
			`sluice.yaml:5:65: policies.q.retry.retry_on_status[3]: want an integer, got "x"`,
		}},
		{"budget", `policies:
  p: {retry: {budget: none}}
  q: {retry: {budget: {ratio: 0, window: 0s, min_per_second: -1}}}
  r: {retry: {budget: [off]}}
` + route, []string{
			`sluice.yaml:2:23: policies.p.retry.budget: want a mapping (ratio, window, min_per_second) or "off", got "none"`,
			`sluice.yaml:3:31: policies.q.retry.budget.ratio: must be greater than 0 and at most 1, got 0`,
			`sluice.yaml:3:42: policies.q.retry.budget.window: must be greater than 0, got 0s`,
			`sluice.yaml:3:62: policies.q.retry.budget.min_per_second: must be greater than 0, got -1`,
			`sluice.yaml:4:23: policies.r.retry.budget: want a mapping, got a list`,
		}},
		{"breaker cross checks", `policies:
  p:
    circuit_breaker:
      window: 60s
      window_calls: 10
      minimum_calls: 20
      open_for: 30s
      max_open_for: 10s
      half_open_calls: 2
      success_threshold: 3
      slow_call_rate: 0.5
` + route, []string{
			`sluice.yaml:5:21: policies.p.circuit_breaker.window_calls: set window (a time-based window) or window_calls (a count-based one), not both`,
			`sluice.yaml:6:22: policies.p.circuit_breaker.minimum_calls: must be at most window_calls (10), got 20: the window never holds that many calls`,
			`sluice.yaml:8:21: policies.p.circuit_breaker.max_open_for: must be at least open_for (30s), got 10s`,
			`sluice.yaml:10:26: policies.p.circuit_breaker.success_threshold: must be at most half_open_calls (2), got 3: the breaker could never close`,
			`sluice.yaml:11:23: policies.p.circuit_breaker.slow_call_rate: needs slow_call_duration, the time above which a call is slow`,
		}},
		{"rate limit", `policies:
  p: {rate_limit: {per: 1s, burst: 0, smooth: yes}}
  q: {rate_limit: {rate: -5}}
` + route, []string{
			`sluice.yaml:2:19: policies.p.rate_limit.rate: required: the number of calls allowed every per (default 1s)`,
			`sluice.yaml:2:36: policies.p.rate_limit.burst: must be at least 1, got 0`,
			`sluice.yaml:2:47: policies.p.rate_limit.smooth: want true or false, got "yes"`,
			`sluice.yaml:3:26: policies.q.rate_limit.rate: must be greater than 0, got -5`,
		}},
		{"policy names", "policies:\n  a.b: {}\n  -x: {}\n" + route, []string{
			`sluice.yaml:2:3: policies.a.b: bad name "a.b" (want letters, digits, _ or -, starting with a letter or digit)`,
			`sluice.yaml:3:3: policies.-x: bad name "-x" (want letters, digits, _ or -, starting with a letter or digit)`,
		}},
		{"addresses", `listen: localhost
admin: {listen: "127.0.0.1:99999"}
` + route, []string{
			`sluice.yaml:1:9: listen: bad address "localhost" (want host:port, such as 127.0.0.1:8080 or :8080)`,
			`sluice.yaml:2:17: admin.listen: bad address "127.0.0.1:99999": bad port "99999" (want 0 to 65535)`,
		}},
		{"admin exposed without token", "admin: {listen: 0.0.0.0:9901, token: '${EMPTY}'}\n" + route, []string{
			`sluice.yaml:1:17: admin.listen: the admin API on 0.0.0.0:9901 is reachable from other machines; set admin.token (for example token: ${SLUICE_ADMIN_TOKEN}) or listen on a loopback address`,
		}},
		{"admin on the proxy's address", "listen: 127.0.0.1:9901\n" + route, []string{
			`sluice.yaml:1:9: listen: the proxy and the admin server cannot both listen on 127.0.0.1:9901`,
		}},
		{"storage", "storage: {dlq: 'postgres://x'}\n" + route, []string{
			`sluice.yaml:1:16: storage.dlq: unsupported storage URL "postgres://x" (want bolt://PATH or a Redis URL: redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://… (TLS), redis-sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…]/MASTER[/DB], redis-cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…] (rediss-sentinel://, rediss-cluster:// for TLS))`,
		}},
		{"redis storage", "storage: {dlq: 'redis://h:6379/zero'}\n" + route, []string{
			`sluice.yaml:1:16: storage.dlq: bad storage URL "redis://h:6379/zero": database "zero" is not a number`,
		}},
		{"log", "log: {level: verbose, format: xml}\n" + route, []string{
			`sluice.yaml:1:14: log.level: unknown log level "verbose" (want debug, info, warn, error)`,
			`sluice.yaml:1:31: log.format: unknown log format "xml" (want text, json)`,
		}},
		{"no routes", "listen: :80\n", []string{
			`sluice.yaml:1:1: routes: at least one route is required`,
		}},
		{"empty routes", "routes: []\n", []string{
			`sluice.yaml:1:9: routes: at least one route is required`,
		}},
		{"empty file", "", []string{
			`sluice.yaml:1: routes: at least one route is required`,
		}},
		{"top level not a mapping", "- a\n- b\n", []string{
			`sluice.yaml:1:1: want a mapping, got a list`,
		}},
		{"route errors", `policies:
  network: {}
routes:
  - name: api
    match: {path_prefix: api/, host: "bad host", methods: [get, GET, GET]}
    upstreams: [http://127.0.0.1:9000, "ftp://x", "http://u:p@h", "http://h/?q=1", "http://127.0.0.1:9000", "http://h:99999", "/rel"]
    policy: netwrk
    on_exhausted: retry
    max_retry_body: 1MB2
    retry_methods: POST
    timeout: 0s
    fallback: {}
  - name: api
    upstreams: []
    policy: nothing_like_it
  - {}
  - just a string
  - name: bad name
    upstreams: [http://h]
`, []string{
			`sluice.yaml:5:26: routes[0].match.path_prefix: bad path prefix "api/" (want a path starting with /, without query or spaces)`,
			`sluice.yaml:5:38: routes[0].match.host: bad host "bad host" (want a host name or IP, optionally with :port)`,
			`sluice.yaml:5:60: routes[0].match.methods[0]: method "get" must be upper case (GET)`,
			`sluice.yaml:5:70: routes[0].match.methods[2]: duplicate method GET (first at line 5)`,
			`sluice.yaml:6:40: routes[0].upstreams[1]: bad upstream URL "ftp://x": want an http:// or https:// URL`,
			`sluice.yaml:6:51: routes[0].upstreams[2]: bad upstream URL "http://u:p@h": credentials in upstream URLs are not supported`,
			`sluice.yaml:6:67: routes[0].upstreams[3]: bad upstream URL "http://h/?q=1": an upstream URL has no query or fragment`,
			`sluice.yaml:6:84: routes[0].upstreams[4]: duplicate upstream http://127.0.0.1:9000 (first at line 6)`,
			`sluice.yaml:6:109: routes[0].upstreams[5]: bad upstream URL "http://h:99999": bad port "99999" (want 0 to 65535)`,
			`sluice.yaml:6:127: routes[0].upstreams[6]: bad upstream URL "/rel": want an http:// or https:// URL`,
			`sluice.yaml:7:13: routes[0].policy: unknown policy "netwrk" (did you mean network?)`,
			`sluice.yaml:8:19: routes[0].on_exhausted: unknown on_exhausted "retry" (want queue, fail)`,
			`sluice.yaml:9:21: routes[0].max_retry_body: bad size "1MB2": unknown unit "MB2" (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`,
			`sluice.yaml:10:20: routes[0].retry_methods: want a list, got "POST" (write [POST])`,
			`sluice.yaml:11:14: routes[0].timeout: must be greater than 0, got 0s`,
			`sluice.yaml:12:15: routes[0].fallback.stale_cache: required: how long the last good answer may be served`,
			`sluice.yaml:13:11: routes[1].name: duplicate route name "api" (first at line 4)`,
			`sluice.yaml:14:16: routes[1].upstreams: at least one upstream is required`,
			`sluice.yaml:15:13: routes[1].policy: unknown policy "nothing_like_it" (defined: network)`,
			`sluice.yaml:16:5: routes[2].name: required: every route has a name`,
			`sluice.yaml:16:5: routes[2].upstreams: required: at least one upstream URL`,
			`sluice.yaml:17:5: routes[3]: want a mapping, got "just a string"`,
			`sluice.yaml:18:11: routes[4].name: bad name "bad name" (want letters, digits, _ or -, starting with a letter or digit)`,
		}},
		{"policy reference without policies", `routes:
  - name: a
    upstreams: [http://h]
    policy: p
`, []string{
			`sluice.yaml:4:13: routes[0].policy: unknown policy "p" (no policies are defined)`,
		}},
		{"missing environment variable", `admin: {token: "${NOT_SET}"}
policies:
  p: {timeout: "${DUR}x", retry: {max_attempts: "${PORT"}}
` + route, []string{
			`sluice.yaml:1:16: admin.token: environment variable NOT_SET is not set (write ${NOT_SET:-default} to give a default)`,
			`sluice.yaml:3:16: policies.p.timeout: bad duration "250msx" (want a Go duration such as 30s, 500ms or 1m30s)`,
			`sluice.yaml:3:49: policies.p.retry.max_attempts: unterminated ${ in "${PORT"`,
		}},
		{"bad variable name", "listen: '${1X}'\n" + route, []string{
			`sluice.yaml:1:9: listen: bad environment variable name "1X" in ${1X} (want letters, digits and _, not starting with a digit)`,
		}},
		{"non-scalar key", "? [a]\n: 1\n" + route, []string{
			`sluice.yaml:1:3: keys must be plain strings, got a list`,
		}},
		{"bad merge", "base: &b [1]\n", []string{
			`sluice.yaml:1:1: base: unknown key (want one of admin, instance_id, listen, log, policies, routes, server, shutdown_grace, storage)`,
			`sluice.yaml:1:1: routes: at least one route is required`,
		}},
		{"merge of a scalar", "policies:\n  p:\n    <<: 5\n" + route, []string{
			`sluice.yaml:3:9: policies.p: merge key (<<) wants a mapping or a list of mappings, got "5"`,
		}},
		{"cyclic merge", "policies:\n  p: &a\n    <<: *a\n" + route, []string{
			`sluice.yaml:3:9: policies.p: merge keys (<<) nested too deeply`,
		}},
		{"unknown key in merged mapping", `x: &shared {max_attempts: 3, bogus: 1}
policies:
  p:
    retry: {<<: *shared}
` + route, []string{
			`sluice.yaml:1:1: x: unknown key (want one of admin, instance_id, listen, log, policies, routes, server, shutdown_grace, storage)`,
			`sluice.yaml:1:30: policies.p.retry.bogus: unknown key (want one of backoff, base_delay, budget, jitter, jitter_ratio, max_attempts, max_delay, max_elapsed, multiplier, retry_on_status)`,
		}},
		{"syntax error", "listen: :80\nadmin: {listen: x\nroutes: []\n", []string{
			`sluice.yaml:2: invalid YAML: did not find expected ',' or '}'`,
		}},
		{"syntax error in a block", "listen: :80\nadmin:\n  - x\n bad: 2\n", []string{
			`sluice.yaml:4: invalid YAML: did not find expected key`,
		}},
		{"scanner error", "listen: :80\n  admin: 2\n", []string{
			`sluice.yaml:2: invalid YAML: mapping values are not allowed in this context`,
		}},
		{"unknown anchor", "listen: :80\nadmin: *nope\n", []string{
			`sluice.yaml:2:8: invalid YAML: unknown anchor 'nope' referenced`,
		}},
		{"control character", "listen: :80\nadmin: \x01\n", []string{
			`sluice.yaml:2:8: invalid YAML: control characters are not allowed`,
		}},
		{"two documents", route + "---\nlisten: :80\n", []string{
			`sluice.yaml:5:1: a config file holds one YAML document; found a second one here`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := errorLines(t, tt.src)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "f.yaml", Line: 3, Column: 7, Field: "a.b", Msg: "bad"}, "f.yaml:3:7: a.b: bad"},
		{config.Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{config.Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	errs := config.Errors{tests[0].err, tests[1].err}
	if got, want := errs.Error(), "f.yaml:3:7: a.b: bad\nf.yaml:3: bad"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var one config.Error
	if !errors.As(error(errs), &one) || one != tests[0].err {
		t.Errorf("errors.As(Errors, *Error) = %v, want the first error", one)
	}
}
