package config_test

import (
	"errors"
	"fmt"

	"github.com/sluice-go/sluice/config"
)

func Example() {
	cfg, err := config.Parse("sluice.yaml", []byte(`
policies:
  network:
    retry: {max_attempts: 5, backoff: exponential, base_delay: 1s, max_delay: 30s, jitter: full}
    timeout: 30s
routes:
  - name: api
    match: {path_prefix: /api/}
    upstreams: [http://127.0.0.1:9100]
    policy: network
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := cfg.Routes[0]
	p := cfg.Policies[r.Policy]
	fmt.Println("listen:", cfg.Listen)
	fmt.Println("route:", r.Name, r.Match.PathPrefix, "→", r.Upstreams[0])
	fmt.Println("retry:", p.Retry.MaxAttempts, p.Retry.Backoff, p.Retry.BaseDelay, "to", p.Retry.MaxDelay)
	fmt.Println("on_exhausted:", r.OnExhausted, "max_retry_body:", r.MaxRetryBody)
	// Output:
	// listen: 127.0.0.1:8080
	// route: api /api/ → http://127.0.0.1:9100
	// retry: 5 exponential 1s to 30s
	// on_exhausted: fail max_retry_body: 1MiB
}

// Parse reports every problem at once, each with its file, line, column
// and field.
func ExampleParse_errors() {
	_, err := config.Parse("sluice.yaml", []byte(`policies:
  network:
    retry: {backoff: expo, base_delay: 30}
routes:
  - name: api
    upstreams: [ftp://127.0.0.1]
    policy: netwrk
`))
	fmt.Println(err)

	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Println(len(errs), "errors; the first is at line", errs[0].Line)
	}
	// Output:
	// sluice.yaml:3:22: policies.network.retry.backoff: unknown backoff "expo" (want exponential, linear, constant, decorrelated)
	// sluice.yaml:3:40: policies.network.retry.base_delay: bad duration "30": missing unit (write 30s, 30ms or 1m30s)
	// sluice.yaml:6:17: routes[0].upstreams[0]: bad upstream URL "ftp://127.0.0.1": want an http:// or https:// URL
	// sluice.yaml:7:13: routes[0].policy: unknown policy "netwrk" (did you mean network?)
	// 4 errors; the first is at line 3
}

// Secrets come from the environment; Redacted shows them as written.
func ExampleConfig_Redacted() {
	l := config.Loader{LookupEnv: func(name string) (string, bool) {
		return map[string]string{"ADMIN_TOKEN": "s3cret", "REDIS_PASSWORD": "pw"}[name], true
	}}
	cfg, err := l.Parse("sluice.yaml", []byte(`
admin: {listen: 0.0.0.0:9901, token: "${ADMIN_TOKEN}"}
storage: {dlq: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"}
routes: [{name: api, upstreams: ["http://${UPSTREAM_HOST:-127.0.0.1}:9100"]}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Admin.Token, cfg.Storage.DLQ.URL, cfg.Routes[0].Upstreams[0])
	r := cfg.Redacted()
	fmt.Println(r.Admin.Token, r.Storage.DLQ.URL, r.Routes[0].Upstreams[0])
	// Output:
	// s3cret redis://:pw@127.0.0.1:6379/0 http://127.0.0.1:9100
	// REDACTED redis://:xxxxx@127.0.0.1:6379/0 http://${UPSTREAM_HOST:-127.0.0.1}:9100
}

func ExampleParseSize() {
	for _, s := range []string{"1024", "2KB", "1MiB", "1.5KiB"} {
		n, err := config.ParseSize(s)
		fmt.Println(s, "=", int64(n), "bytes, written", n, err)
	}
	// Output:
	// 1024 = 1024 bytes, written 1KiB <nil>
	// 2KB = 2000 bytes, written 2KB <nil>
	// 1MiB = 1048576 bytes, written 1MiB <nil>
	// 1.5KiB = 1536 bytes, written 1536 <nil>
}
