package config_test

import (
	"strings"
	"testing"

	"github.com/sluice-go/sluice/config"
)

func TestRedacted(t *testing.T) {
	t.Parallel()
	l := config.Loader{LookupEnv: env("TOKEN", "s3cret-token", "REDIS_PW", "s3cret-pw", "HOST", "api.internal")}
	cfg := mustParse(t, l, `admin: {listen: 0.0.0.0:9901, token: "${TOKEN}"}
storage: {dlq: "redis://app:${REDIS_PW}@redis:6379/0"}
routes:
  - name: a
    upstreams: ["http://${HOST}:8080", "http://literal:1/a$${b}"]
`)
	if cfg.Admin.Token != "s3cret-token" || cfg.Storage.DLQ.URL != "redis://app:s3cret-pw@redis:6379/0" || cfg.Routes[0].Upstreams[0] != "http://api.internal:8080" {
		t.Fatalf("expansion: %+v", cfg)
	}
	r := cfg.Redacted()
	if r.Admin.Token != config.RedactedValue {
		t.Errorf("token = %q, want %q", r.Admin.Token, config.RedactedValue)
	}
	if want := "redis://app:xxxxx@redis:6379/0"; r.Storage.DLQ.URL != want {
		t.Errorf("dlq = %q, want %q", r.Storage.DLQ.URL, want)
	}
	if want := "http://${HOST}:8080"; r.Routes[0].Upstreams[0] != want {
		t.Errorf("upstream from env = %q, want the template %q", r.Routes[0].Upstreams[0], want)
	}
	if want := "http://literal:1/a$${b}"; r.Routes[0].Upstreams[1] != want {
		t.Errorf("literal ${ = %q, want it escaped as %q", r.Routes[0].Upstreams[1], want)
	}
	text := dump(t, r)
	for _, secret := range []string{"s3cret", "api.internal"} {
		if strings.Contains(text, secret) {
			t.Errorf("redacted YAML contains %q:\n%s", secret, text)
		}
	}
	// The original is untouched, and the copy shares nothing with it.
	if cfg.Admin.Token != "s3cret-token" || cfg.Routes[0].Upstreams[0] != "http://api.internal:8080" {
		t.Errorf("Redacted modified its receiver: %+v", cfg)
	}
	r.Routes[0].Upstreams[1] = "changed"
	if cfg.Routes[0].Upstreams[1] == "changed" {
		t.Errorf("Redacted shares the upstreams slice")
	}
	// What Redacted gives parses back, given the same environment.
	again := mustParse(t, l, text)
	if again.Routes[0].Upstreams[0] != "http://api.internal:8080" || again.Routes[0].Upstreams[1] != "http://literal:1/a${b}" {
		t.Errorf("redacted config parsed back to %+v", again.Routes[0].Upstreams)
	}
}

func TestRedactedLiteralSecrets(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, testLoader, `admin: {token: hunter2}
storage: {dlq: "redis://:hunter2@redis:6379"}
`+route)
	r := cfg.Redacted()
	if r.Admin.Token != config.RedactedValue || r.Storage.DLQ.URL != "redis://:xxxxx@redis:6379" {
		t.Errorf("literal secrets not masked: token %q, dlq %q", r.Admin.Token, r.Storage.DLQ.URL)
	}
	// No token, nothing to mask.
	if r := mustParse(t, testLoader, route).Redacted(); r.Admin.Token != "" {
		t.Errorf("empty token redacted to %q", r.Admin.Token)
	}
}
