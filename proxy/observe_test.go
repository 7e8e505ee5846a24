package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/proxy"
)

// scrapeAdmin returns the admin API's /metrics text.
func scrapeAdmin(h *harness) string {
	h.t.Helper()
	resp, body := h.doURL(h.admin, "GET", "/metrics", "")
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	return body
}

func wantSeries(t *testing.T, scraped string, series ...string) {
	t.Helper()
	for _, s := range series {
		if !strings.Contains(scraped, "\n"+s+"\n") {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// The sidecar counts its own requests by route, status class and outcome,
// times them per route, and counts the tries sent to each upstream.
func TestProxyRequestMetrics(t *testing.T) {
	ok := newUpstream(t, status(200, "ok"))
	down := newUpstream(t, status(503, "down"))
	dead := deadAddr(t)
	h := start(t, `
policies:
  limited: {rate_limit: {rate: 1, per: 1h, burst: 1}}
  retried: {retry: {max_attempts: 2, backoff: constant, base_delay: 1ms}}
routes:
  - {name: ok, match: {path_prefix: /ok/}, upstreams: [`+ok.URL+`], policy: limited}
  - {name: q, match: {path_prefix: /q/}, upstreams: [`+down.URL+`], on_exhausted: queue}
  - {name: fo, match: {path_prefix: /fo/}, upstreams: [`+dead+`, `+ok.URL+`], policy: retried}
`, proxy.Options{ReplayPollInterval: time.Hour})

	if resp, _ := h.do("GET", "/ok/", ""); resp.StatusCode != 200 {
		t.Fatalf("proxied: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/ok/", ""); resp.StatusCode != 429 {
		t.Fatalf("rate limited: %d", resp.StatusCode)
	}
	if resp, _ := h.do("POST", "/q/", "m"); resp.StatusCode != 202 {
		t.Fatalf("queued: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/fo/", ""); resp.StatusCode != 200 {
		t.Fatalf("fallen over: %d", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/nowhere", ""); resp.StatusCode != 404 {
		t.Fatalf("no route: %d", resp.StatusCode)
	}

	okHost := strings.TrimPrefix(ok.URL, "http://")
	wantSeries(t, scrapeAdmin(h),
		`sluice_proxy_requests_total{code="2xx",outcome="proxied",route="ok"} 1`,
		`sluice_proxy_requests_total{code="4xx",outcome="rate-limited",route="ok"} 1`,
		`sluice_proxy_requests_total{code="2xx",outcome="queued",route="q"} 1`,
		`sluice_proxy_requests_total{code="2xx",outcome="retried",route="fo"} 1`,
		`sluice_proxy_request_duration_seconds_count{route="ok"} 2`,
		`sluice_proxy_request_duration_seconds_count{route="q"} 1`,
		`sluice_proxy_upstream_attempts_total{route="ok",upstream="`+okHost+`"} 1`,
		`sluice_proxy_upstream_attempts_total{route="q",upstream="`+strings.TrimPrefix(down.URL, "http://")+`"} 1`,
		`sluice_proxy_upstream_attempts_total{route="fo",upstream="`+strings.TrimPrefix(dead, "http://")+`"} 1`,
		`sluice_proxy_upstream_attempts_total{route="fo",upstream="`+okHost+`"} 1`,
	)
}

// The admin /metrics carries the Go runtime and process families.
func TestMetricsRuntimeFamilies(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, "routes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	scraped := scrapeAdmin(h)
	for _, fam := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(scraped, "\n# TYPE "+fam+" ") {
			t.Errorf("/metrics lacks the %s family", fam)
		}
	}
}

// A request refused by a breaker that upstream failure answers opened is
// counted as circuit-open: the rejection carries the answer that tripped
// the breaker, but that answer was another request's.
func TestProxyRequestMetricsOpenedByAnswers(t *testing.T) {
	down := newUpstream(t, status(503, "down"))
	h := start(t, `
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 1h}}
routes:
  - {name: r, upstreams: [`+down.URL+`], policy: p}
`, proxy.Options{})
	if resp, body := h.do("GET", "/", ""); resp.StatusCode != 503 || body != "down" {
		t.Fatalf("first request: %d %q, want the upstream's 503", resp.StatusCode, body)
	}
	resp, _ := h.do("GET", "/", "")
	if resp.StatusCode != 503 {
		t.Fatalf("second request: %d, want 503", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "circuit-open")
	scraped := scrapeAdmin(h)
	wantSeries(t, scraped,
		`sluice_proxy_requests_total{code="5xx",outcome="proxied",route="r"} 1`,
		`sluice_proxy_requests_total{code="5xx",outcome="circuit-open",route="r"} 1`,
	)
}

// A request whose body does not arrive within body_timeout is counted as
// body-timeout, not as a generic error.
func TestProxyRequestMetricsBodyTimeout(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
routes:
  - {name: r, upstreams: [`+up.URL+`], body_timeout: 50ms}
`, proxy.Options{})
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: up\r\nContent-Length: 10\r\n\r\na"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	wantSeries(t, scrapeAdmin(h), `sluice_proxy_requests_total{code="4xx",outcome="body-timeout",route="r"} 1`)
}
