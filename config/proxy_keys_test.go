package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
)

// TestServerAndRouteKeyErrors holds the rules for the server section and
// the route keys that bound a request's way through the proxy: each bad
// value is refused with its file, line, column and field.
func TestServerAndRouteKeyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		want      []string
	}{
		{"a queued body must fit a dead-letter record", `
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
    on_exhausted: queue
    max_retry_body: 64MiB
`, []string{"sluice.yaml:6:21: routes[0].max_retry_body: 64MiB is more than a queued request can hold: a dead-letter record holds 64MiB, of which 144KiB is kept for the request's header (server.max_header_bytes 64KiB); lower max_retry_body to at most 65392KiB"}},
		{"a bigger header limit leaves less room for the body", `
server: {max_header_bytes: 1MiB}
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
    on_exhausted: queue
    max_retry_body: 63MiB
`, []string{"sluice.yaml:7:21: routes[0].max_retry_body: 63MiB is more than a queued request can hold"}},
		{"a route that does not queue may keep a bigger body", `
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
    max_retry_body: 64MiB
    queue_methods: [POST]
`, []string{"sluice.yaml:6:20: routes[0].queue_methods: applies only to on_exhausted: queue (on_exhausted is fail)"}},
		{"server values", `
server:
  read_header_timeout: 0s
  idle_timeout: -1s
  write_timeout: 1
  max_header_bytes: 100
  max_connections: -1
` + route, []string{
			"sluice.yaml:3:24: server.read_header_timeout: must be greater than 0, got 0s",
			"sluice.yaml:4:17: server.idle_timeout: must not be negative, got -1s",
			"sluice.yaml:5:18: server.write_timeout: bad duration \"1\": missing unit (write 1s, 1ms or 1m30s)",
			"sluice.yaml:6:21: server.max_header_bytes: must be between 1KiB and 1MiB, got 100",
			"sluice.yaml:7:20: server.max_connections: must not be negative, got -1",
		}},
		{"route values", `
routes:
  - name: a
    upstreams: [http://127.0.0.1:9000]
    body_timeout: 0s
    trust_client_headers: yes
    on_exhausted: queue
    queue_methods: [get]
`, []string{
			"sluice.yaml:5:19: routes[0].body_timeout: must be greater than 0, got 0s",
			"sluice.yaml:6:27: routes[0].trust_client_headers: want true or false, got \"yes\"",
			"sluice.yaml:8:21: routes[0].queue_methods[0]:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := errorLines(t, tt.src)
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d", strings.Join(got, "\n"), len(tt.want))
			}
			for i, w := range tt.want {
				if len(got[i]) < len(w) || got[i][:len(w)] != w {
					t.Errorf("error %d = %q\nwant it to start %q", i, got[i], w)
				}
			}
		})
	}
}

// TestServerAndRouteKeyDefaults holds the defaults of the server section
// and the new route keys, and that a 1 MiB body on a queueing route fits.
func TestServerAndRouteKeyDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := testLoader.Parse("sluice.yaml", []byte(`
routes:
  - {name: a, upstreams: ["http://127.0.0.1:9000"], on_exhausted: queue}
  - name: b
    upstreams: ["http://127.0.0.1:9000"]
    on_exhausted: queue
    body_timeout: 2s
    trust_client_headers: true
    queue_methods: [POST, GET]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 * config.KiB}
	if cfg.Server != want {
		t.Errorf("server = %+v, want %+v", cfg.Server, want)
	}
	a, b := cfg.Routes[0], cfg.Routes[1]
	if a.BodyTimeout != 0 || a.TrustClientHeaders || a.QueueMethods != nil {
		t.Errorf("route a = %+v, want zero body_timeout, trust_client_headers and queue_methods", a)
	}
	if b.BodyTimeout != 2*time.Second || !b.TrustClientHeaders || !slices.Equal(b.QueueMethods, []string{"POST", "GET"}) {
		t.Errorf("route b = %+v", b)
	}
	if a.MaxRetryBody+config.QueuedRequestOverhead(cfg.Server.MaxHeaderBytes) > config.DLQRecordBytes {
		t.Errorf("the default max_retry_body does not fit a dead-letter record")
	}
}
