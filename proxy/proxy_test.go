package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/proxy"
)

func TestQueueAndReplay(t *testing.T) {
	type got struct {
		method, path, body, queued, cmd string
	}
	replays := make(chan got, 4)
	up := newUpstream(t, status(503, "down"))
	h := start(t, `
policies:
  p:
    retry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms, budget: off}
    circuit_breaker: {failure_threshold: 2, open_for: 100ms, half_open_calls: 1, success_threshold: 1}
routes:
  - {name: agents, match: {path_prefix: /agents/}, upstreams: [`+up.URL+`], policy: p, on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: 10 * time.Millisecond, ReplayBackoff: func(int) time.Duration { return 20 * time.Millisecond }})

	resp, _ := h.do("PUT", "/agents/7/command", "reboot", "X-Cmd", "1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want 202 while the upstream is down", resp.StatusCode)
	}
	id := resp.Header.Get("Sluice-Queued")
	if _, err := h.srv.Store().Get(context.Background(), mustID(t, id)); err != nil {
		t.Fatalf("message %s not on disk after the 202: %v", id, err)
	}
	// While the upstream stays down, a replay (a half-open probe) fails and
	// the failure shows in the admin API.
	waitFor(t, "a failed replay", func() bool {
		var v dlqhttp.MessageView
		return h.adminJSON("GET", "/dlq/"+id, &v) == 200 && v.Replays >= 1
	})
	var v dlqhttp.MessageView
	h.adminJSON("GET", "/dlq/"+id, &v)
	if !strings.Contains(v.LastError, "503") || v.State != "ready" {
		t.Errorf("after a failed replay: state %q, last_error %q", v.State, v.LastError)
	}

	up.set(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		replays <- got{r.Method, r.URL.Path, string(b), r.Header.Get("Sluice-Queued"), r.Header.Get("X-Cmd")}
		_, _ = io.WriteString(w, "done")
	})
	var g got
	select {
	case g = <-replays:
	case <-time.After(5 * time.Second):
		t.Fatal("the queued request was never replayed")
	}
	if g != (got{"PUT", "/agents/7/command", "reboot", id, "1"}) {
		t.Errorf("replayed request = %+v", g)
	}
	waitFor(t, "the replayed message to be deleted", func() bool {
		_, err := h.srv.Store().Get(context.Background(), mustID(t, id))
		return errors.Is(err, dlq.ErrNotFound)
	})
	var stats struct{ Queues []dlqhttp.QueueView }
	waitFor(t, "the replay to be counted", func() bool {
		h.adminJSON("GET", "/dlq/stats", &stats)
		return len(stats.Queues) == 1 && stats.Queues[0].Replayed == 1
	})
	if len(stats.Queues) != 1 || stats.Queues[0].Queue != "agents" || stats.Queues[0].Replayed != 1 ||
		stats.Queues[0].Failed < 1 || !stats.Queues[0].Replaying || stats.Queues[0].Ready != 0 {
		t.Errorf("/dlq/stats = %+v", stats.Queues)
	}
}

func mustID(t *testing.T, s string) dlq.ID {
	t.Helper()
	id, err := dlq.ParseID(s)
	if err != nil {
		t.Fatalf("bad id %q: %v", s, err)
	}
	return id
}

func TestFallbackUpstream(t *testing.T) {
	fallback := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "fallback %s %s", r.Method, b)
	})
	h := start(t, `
policies:
  p:
    retry: {max_attempts: 2, base_delay: 1ms, budget: off}
    circuit_breaker: {failure_threshold: 2, open_for: 1m}
routes:
  - {name: r, upstreams: [`+deadAddr(t)+`, `+fallback.URL+`], policy: p}
`, proxy.Options{})
	for i := range 4 {
		resp, body := h.do("GET", "/", "")
		if resp.StatusCode != 200 || body != "fallback GET " {
			t.Fatalf("GET %d: %d %q, want the fallback's answer", i, resp.StatusCode, body)
		}
	}
	// A POST may fall over too: the primary refused the connection (or its
	// breaker is open by now), so it never saw the request.
	resp, body := h.do("POST", "/", "cmd")
	if resp.StatusCode != 200 || body != "fallback POST cmd" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	br, ok := h.srv.Registry().LookupBreaker("r/" + strings.TrimPrefix(deadAddrOf(h), "http://"))
	if !ok || br.Stats().State.String() != "open" {
		t.Errorf("the primary's breaker should be open, got %v", br.Stats().State)
	}
	fb, _ := h.srv.Registry().LookupBreaker("r/" + strings.TrimPrefix(fallback.URL, "http://"))
	if fb.Stats().State.String() != "closed" {
		t.Errorf("the fallback's breaker = %v, want closed", fb.Stats().State)
	}
}

// deadAddrOf returns the primary upstream of the harness's first route.
func deadAddrOf(h *harness) string { return h.srv.Config().Routes[0].Upstreams[0] }

func TestNonIdempotentNotRetried(t *testing.T) {
	up := newUpstream(t, status(503, "busy"))
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, body := h.do("POST", "/orders", "buy")
	if resp.StatusCode != 503 || body != "busy" {
		t.Fatalf("answer = %d %q, want the upstream's 503", resp.StatusCode, body)
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1: POST is not idempotent", n)
	}
}

func TestRetriedWithBodyIntact(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	up := newUpstream(t, nil)
	up.set(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b)+"|"+r.Header.Get("Content-Length"))
		mu.Unlock()
		if up.hits.Load() < 3 {
			w.WriteHeader(502)
			return
		}
		fmt.Fprintf(w, "took %s", b)
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, budget: off}}
routes:
  - {name: keyed, match: {path_prefix: /keyed/}, upstreams: [`+up.URL+`], policy: p}
  - {name: listed, upstreams: [`+up.URL+`], policy: p, retry_methods: [POST]}
`, proxy.Options{})
	resp, body := h.do("POST", "/keyed/orders", "buy 3", "Idempotency-Key", "k-1")
	if resp.StatusCode != 200 || body != "took buy 3" {
		t.Fatalf("answer = %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	got := strings.Join(bodies, ",")
	mu.Unlock()
	if got != "buy 3|5,buy 3|5,buy 3|5" {
		t.Errorf("bodies the upstream saw = %s, want the whole body three times", got)
	}
	// retry_methods makes POST retryable on that route without a key.
	up.hits.Store(0)
	if resp, body := h.do("POST", "/orders", "x"); resp.StatusCode != 200 || up.hits.Load() != 3 {
		t.Errorf("retry_methods: %d %q after %d calls, want 200 after 3", resp.StatusCode, body, up.hits.Load())
	}
}

func TestBigBodySentOnce(t *testing.T) {
	up := newUpstream(t, nil)
	var got []int
	var mu sync.Mutex
	up.set(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, len(b))
		mu.Unlock()
		w.WriteHeader(503)
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p, max_retry_body: 1KiB, on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: time.Hour})
	big := strings.Repeat("x", 3000)
	resp, _ := h.do("PUT", "/blob", big)
	if resp.StatusCode != 503 {
		t.Errorf("status = %d, want the upstream's 503 (a body too big to keep is neither retried nor queued)", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != 3000 {
		t.Errorf("upstream saw bodies of %v bytes, want one of 3000", got)
	}
}

func TestForwardingHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Kept", "yes")
		_, _ = io.WriteString(w, "ok")
	})
	h := start(t, `
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	resp, _ := h.do("GET", "/h", "",
		"Connection", "X-Private",
		"X-Private", "secret",
		"Keep-Alive", "timeout=5",
		"Proxy-Authorization", "Basic abc",
		"Te", "trailers",
		"X-Forwarded-For", "10.0.0.1",
		"X-End-To-End", "kept")
	got := <-seen
	for _, name := range []string{"X-Private", "Keep-Alive", "Proxy-Authorization", "Connection"} {
		if v := got.Get(name); v != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", name, v)
		}
	}
	if got.Get("X-End-To-End") != "kept" || got.Get("Te") != "trailers" {
		t.Errorf("end-to-end headers lost: X-End-To-End %q, Te %q", got.Get("X-End-To-End"), got.Get("Te"))
	}
	if v := got.Get("X-Forwarded-For"); v != "10.0.0.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client appended", v)
	}
	proxyHost := strings.TrimPrefix(h.url, "http://")
	if v := got.Get("Forwarded"); v != `for=127.0.0.1;host="`+proxyHost+`";proto=http` {
		t.Errorf("Forwarded = %q", v)
	}
	if v := got.Get("X-Forwarded-Host"); v != proxyHost {
		t.Errorf("X-Forwarded-Host = %q, want %q", v, proxyHost)
	}
	if host := <-hosts; host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("Host = %q, want the upstream's", host)
	}
	if resp.Header.Get("Proxy-Authenticate") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("response headers: Proxy-Authenticate %q (hop-by-hop, want none), X-Kept %q",
			resp.Header.Get("Proxy-Authenticate"), resp.Header.Get("X-Kept"))
	}
}

func TestUpgradePassthrough(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	})
	h := start(t, `
policies:
  p:
    retry: {max_attempts: 3, base_delay: 1ms, budget: off}
    circuit_breaker: {failure_threshold: 5}
routes:
  - {name: ws, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("answer = %d, Upgrade %q; want 101 echo", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	_, _ = io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}
	// Shutdown closes the upgraded connection, which net/http no longer
	// tracks, instead of waiting for it.
	begin := time.Now()
	h.stop()
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("shutdown took %v with an upgraded connection open", d)
	}
	if line, err := br.ReadString('\n'); err == nil {
		t.Errorf("read %q after shutdown, want the connection closed", line)
	}
}

func TestStreamingNotBuffered(t *testing.T) {
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "part 1\n")
		http.NewResponseController(w).Flush()
		<-next // the client must see part 1 before part 2 is written
		_, _ = io.WriteString(w, "part 2\n")
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 2}, timeout: 5s}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, err := h.client.Get(h.url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "part 1\n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if string(rest) != "part 2\n" {
		t.Errorf("rest = %q", rest)
	}
}

func TestRouting(t *testing.T) {
	name := func(n string) *upstream {
		return newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, n+" "+r.URL.Path) })
	}
	a, b, c, d := name("a"), name("b"), name("c"), name("d")
	h := start(t, `
routes:
  - {name: reads, match: {path_prefix: /api/, methods: [GET]}, upstreams: [`+a.URL+`]}
  - {name: host, match: {path_prefix: /api/, host: API.example.com}, upstreams: [`+b.URL+`]}
  - {name: writes, match: {path_prefix: /api/}, upstreams: [`+c.URL+`/v2]}
  - {name: admin, match: {path_prefix: /admin/}, upstreams: [`+d.URL+`]}
`, proxy.Options{})
	tests := []struct {
		method, path, host, want string
		code                     int
	}{
		{"GET", "/api/x", "", "a /api/x", 200},
		{"POST", "/api/x", "api.example.com:8080", "b /api/x", 200},
		{"POST", "/api/x", "", "c /v2/api/x", 200},
		{"GET", "/admin/", "", "d /admin/", 200},
		{"GET", "/other", "", "sluice: no route matches\n", 404},
		{"GET", "/api/../other", "", "sluice: no route matches\n", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, h.url+tt.path, nil)
		req.URL.Opaque = tt.path // send the path as written, dots included
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || string(body) != tt.want {
			t.Errorf("%s %s (host %q) = %d %q, want %d %q", tt.method, tt.path, tt.host, resp.StatusCode, body, tt.code, tt.want)
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	h := start(t, `
shutdown_grace: 5s
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := h.client.Get(h.url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	h.cancel()
	// Shutdown has begun: new connections are refused once the listener is
	// closed, while the request under way is still running.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.url, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-h.done:
		t.Fatal("Serve returned before the in-flight request finished")
	default:
	}
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request = %d %q %v, want 200 finished", r.code, r.body, r.err)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the request finished")
	}
	if _, err := h.srv.Store().Stats(context.Background()); !errors.Is(err, dlq.ErrClosed) {
		t.Errorf("store after Serve: %v, want closed", err)
	}
}

func TestCutOffAnswerStaysCutOff(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "part 1\n")
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		conn, _, err := rc.Hijack() // the upstream dies mid-answer
		if err == nil {
			conn.Close()
		}
	})
	h := start(t, `
policies:
  p: {retry: {max_attempts: 3, base_delay: 1ms, budget: off}}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	resp, err := h.client.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("read %q without error: a cut-off answer must not look complete", body)
	}
	if !strings.HasPrefix(string(body), "part 1") {
		t.Errorf("body = %q, want the part that was sent", body)
	}
	if n := up.hits.Load(); n != 1 {
		t.Errorf("upstream calls = %d, want 1: an answer under way is never retried", n)
	}
}
