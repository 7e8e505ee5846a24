package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/proxy"
	"github.com/sluice-go/sluice/sluicetest"
)

// One test per row of the table of answers in docs/proxy.md.

func TestAnswerCircuitOpen(t *testing.T) {
	up := newUpstream(t, status(500, "boom"))
	h := start(t, `
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 30s}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, body := h.do("GET", "/x", "")
	if resp.StatusCode != 500 || body != "boom" {
		t.Fatalf("first answer = %d %q, want the upstream's 500", resp.StatusCode, body)
	}
	resp, _ = h.do("GET", "/x", "")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "circuit-open")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 29 || ra > 30 {
		t.Errorf("Retry-After = %q, want the ~30 s until the next probe", resp.Header.Get("Retry-After"))
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1: an open breaker sends nothing", n)
	}
}

func TestAnswerBulkheadFull(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "slow")
	})
	h := start(t, `
policies:
  p: {bulkhead: {max_concurrent: 1}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	first := make(chan string, 1)
	go func() {
		_, body := h.do("GET", "/slow", "")
		first <- body
	}()
	<-entered
	resp, _ := h.do("GET", "/other", "")
	close(release)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "bulkhead-full")
	if body := <-first; body != "slow" {
		t.Errorf("the request holding the permit got %q", body)
	}
}

func TestAnswerRateLimited(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
routes:
  - name: r
    upstreams: [`+up.URL+`]
    rate_limit: {rate: 1, per: 1m, burst: 1}
`, proxy.Options{})
	if resp, _ := h.do("GET", "/", ""); resp.StatusCode != 200 {
		t.Fatalf("first status = %d, want 200", resp.StatusCode)
	}
	resp, _ := h.do("GET", "/", "")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "rate-limited")
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 59 || ra > 60 {
		t.Errorf("Retry-After = %q, want ~60", resp.Header.Get("Retry-After"))
	}
}

func TestAnswerTimeout(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p, timeout: 50ms}
`, proxy.Options{})
	resp, _ := h.do("GET", "/", "")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "timeout")
	if n := up.hits.Load(); n != 2 {
		t.Errorf("upstream calls = %d, want 2 (a timed-out try is retried)", n)
	}
}

func TestAnswerRetriesExhausted(t *testing.T) {
	up := newUpstream(t, nil)
	up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(503)
		fmt.Fprintf(w, "down %d", up.hits.Load())
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, body := h.do("GET", "/", "")
	if resp.StatusCode != 503 || body != "down 3" {
		t.Fatalf("answer = %d %q, want the upstream's last answer 503 \"down 3\"", resp.StatusCode, body)
	}
	header(t, resp, "X-Upstream", "yes")
	header(t, resp, "Sluice-Retry", "no")
	header(t, resp, "Sluice-Reject", "")
	if n := up.hits.Load(); n != 3 {
		t.Errorf("upstream calls = %d, want 3", n)
	}
}

func TestAnswerNeverAnswered(t *testing.T) {
	h := start(t, `
policies:
  p: {retry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+deadAddr(t)+`], policy: p}
`, proxy.Options{})
	resp, body := h.do("GET", "/", "")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status = %d %q, want 502", resp.StatusCode, body)
	}
	header(t, resp, "Sluice-Retry", "no")
	if strings.Contains(body, "127.0.0.1") {
		t.Errorf("body %q leaks the upstream's address", body)
	}
}

func TestAnswerFinalFromLowerLayer(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Sluice-Reject", "bulkhead-full")
		w.WriteHeader(503)
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, _ := h.do("GET", "/", "")
	if resp.StatusCode != 503 {
		t.Fatalf("status = %d, want the lower layer's 503", resp.StatusCode)
	}
	header(t, resp, "Sluice-Reject", "bulkhead-full")
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1: a lower sluice layer's refusal is not retried", n)
	}
}

func TestAnswerQueued(t *testing.T) {
	up := newUpstream(t, status(503, "down"))
	h := start(t, `
policies:
  p: {retry: {max_attempts: 2, base_delay: 1ms, budget: off}}
routes:
  - {name: agents, upstreams: [`+up.URL+`], policy: p, on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: time.Hour})
	resp, body := h.do("POST", "/agents/7/reboot?now=1", `{"force":true}`, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d %q, want 202", resp.StatusCode, body)
	}
	id, err := dlq.ParseID(resp.Header.Get("Sluice-Queued"))
	if err != nil {
		t.Fatalf("Sluice-Queued = %q: %v", resp.Header.Get("Sluice-Queued"), err)
	}
	m, err := h.srv.Store().Get(context.Background(), id)
	if err != nil {
		t.Fatalf("the queued message is not in the store: %v", err)
	}
	if string(m.Payload) != `{"force":true}` || m.Queue != "agents" || m.Attempts != 1 {
		t.Errorf("message = queue %q, payload %q, attempts %d", m.Queue, m.Payload, m.Attempts)
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1: a POST without Idempotency-Key is not retried", n)
	}
	var view dlqhttp.MessageView
	if code := h.adminJSON("GET", "/dlq/"+id.String(), &view); code != 200 {
		t.Fatalf("GET /dlq/{id} = %d", code)
	}
	if view.Method != "POST" || view.URI != "/agents/7/reboot?now=1" || view.Headers["Content-Type"][0] != "application/json" {
		t.Errorf("view = %+v", view)
	}
	if !strings.Contains(view.LastError, "503") {
		t.Errorf("last_error = %q, want the upstream's 503", view.LastError)
	}
}

func TestAnswerStaleCache(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Version", "1")
		_, _ = io.WriteString(w, "fresh "+r.URL.Path)
	})
	h := start(t, `
routes:
  - name: api
    upstreams: [`+up.URL+`]
    fallback: {stale_cache: 5m}
`, proxy.Options{Clock: clock})
	if resp, body := h.do("GET", "/a", ""); resp.StatusCode != 200 || body != "fresh /a" {
		t.Fatalf("first answer = %d %q", resp.StatusCode, body)
	}
	up.set(status(503, "down"))
	clock.Advance(90 * time.Second)
	resp, body := h.do("GET", "/a", "")
	if resp.StatusCode != 200 || body != "fresh /a" {
		t.Fatalf("answer = %d %q, want the cached 200", resp.StatusCode, body)
	}
	header(t, resp, "Sluice-Fallback", "stale-cache")
	header(t, resp, "Age", "90")
	header(t, resp, "X-Version", "1")
	// Another path was never cached: the upstream's answer.
	if resp, _ := h.do("GET", "/b", ""); resp.StatusCode != 503 {
		t.Errorf("uncached path: status %d, want 503", resp.StatusCode)
	}
	// Past the stale window: the upstream's answer again.
	clock.Advance(5 * time.Minute)
	if resp, _ := h.do("GET", "/a", ""); resp.StatusCode != 503 {
		t.Errorf("after the window: status %d, want 503", resp.StatusCode)
	}
}

// TestShedBeforeReadingBody: a request the limiter sheds is answered without
// its body being read, so a flood of large uploads costs no buffering. The
// client's body never arrives; the answer must come anyway.
func TestShedBeforeReadingBody(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
routes:
  - name: r
    upstreams: [`+up.URL+`]
    rate_limit: {rate: 1, per: 1m, burst: 1}
`, proxy.Options{})
	if resp, _ := h.do("POST", "/", "first"); resp.StatusCode != 200 {
		t.Fatalf("first status = %d, want 200", resp.StatusCode)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", h.url+"/", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 1 << 20 // promised, never sent
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer while the body is pending: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429 before the body is read", resp.StatusCode)
	}
}
