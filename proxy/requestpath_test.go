package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/proxy"
)

// rawRequest sends req as written on a new connection to the proxy and
// reads one answer.
func rawRequest(t *testing.T, h *harness, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestSlowBodyFloodReleasesTheBulkhead: clients that trickle a request body
// hold the route's bulkhead permits only for the body timeout, then get 408,
// and normal requests on the route succeed again.
func TestSlowBodyFloodReleasesTheBulkhead(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	h := start(t, `
policies:
  p: {bulkhead: {max_concurrent: 4}, timeout: 5s}
routes:
  - {name: up, upstreams: [`+up.URL+`], policy: p, body_timeout: 200ms}
`, proxy.Options{})
	addr := strings.TrimPrefix(h.url, "http://")

	// The flood: every connection sends a header promising 100 bytes, and
	// one byte; the rest never comes. Its connections are all open before
	// any sends, so that the bodies arrive together and fill the bulkhead.
	const flood = 30
	conns := make([]net.Conn, flood)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // bounds the flood
		conns[i] = c
	}
	statuses := make(chan int, flood)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, c := range conns {
		if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: up\r\nContent-Length: 100\r\n\r\na"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- 0 // no answer within the flood's bound
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	flooded := time.Now()

	// Normal POSTs get 503 while the slow bodies hold the permits, and
	// succeed again once the body timeout has released them.
	post := func() int {
		resp, err := h.client.Post(h.url+"/x", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && string(b) != "hello" {
			t.Errorf("normal POST answered %q", b)
		}
		return resp.StatusCode
	}
	for post() != http.StatusOK {
		if time.Since(flooded) > 2*time.Second {
			t.Fatalf("normal POSTs still refused %v after the flood began, with a 200ms body timeout", time.Since(flooded))
		}
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// A 503 shows the slow bodies filled the bulkhead; each 408 is a slow
	// body that held a permit and was cut off at the body timeout.
	if count[http.StatusRequestTimeout] == 0 || count[http.StatusServiceUnavailable] == 0 ||
		count[http.StatusRequestTimeout]+count[http.StatusServiceUnavailable] != flood {
		t.Errorf("flood answers = %v, want 408 for the slow bodies admitted, 503 for the rest once they filled the bulkhead", count)
	}
}

// TestIdleConnectionClosed: a keep-alive connection that sends no next
// request is closed after server.idle_timeout.
func TestIdleConnectionClosed(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
server: {idle_timeout: 200ms}
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: r\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idle := time.Now()
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF (closed by the proxy)", err)
	}
	if d := time.Since(idle); d < 150*time.Millisecond {
		t.Errorf("idle connection closed after %v, before idle_timeout", d)
	}
}

// TestHeaderLimit: a request header over server.max_header_bytes gets 431.
func TestHeaderLimit(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
server: {max_header_bytes: 4KiB}
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	resp, _ := rawRequest(t, h, "GET / HTTP/1.1\r\nHost: r\r\nX-Big: "+strings.Repeat("b", 16<<10)+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %d, want 431", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, h, "GET / HTTP/1.1\r\nHost: r\r\nX-Small: s\r\nConnection: close\r\n\r\n"); resp.StatusCode != 200 {
		t.Errorf("small header: status = %d, want 200", resp.StatusCode)
	}
}

// TestConnectionCap: with server.max_connections, a connection over the
// cap waits until another closes, and is then served.
func TestConnectionCap(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
server: {max_connections: 2}
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	addr := strings.TrimPrefix(h.url, "http://")
	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader) error {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: r\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	a, abr := open()
	b, bbr := open()
	for _, c := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{a, abr}, {b, bbr}} {
		if err := get(c.c, c.br); err != nil {
			t.Fatal(err)
		}
	}
	// Two keep-alive connections are open: a third waits (the listener's
	// own test shows it is not accepted) until one of them closes.
	c, cbr := open()
	done := make(chan error, 1)
	go func() { done <- get(c, cbr) }()
	a.Close()
	if err := <-done; err != nil {
		t.Fatalf("the waiting connection, once another closed: %v", err)
	}
}

// TestClientSluiceHeadersRemoved: a client's Sluice-* request headers do
// not reach the upstream (a client cannot pass as a replay), unless the
// route trusts its clients.
func TestClientSluiceHeadersRemoved(t *testing.T) {
	seen := make(chan http.Header, 2)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	})
	h := start(t, `
routes:
  - {name: trusted, match: {path_prefix: /trusted/}, upstreams: [`+up.URL+`], trust_client_headers: true}
  - {name: plain, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	forged := []string{"Sluice-Queued", "01HFORGED", "Sluice-Retry", "no", "Sluice-Reject", "x", "Sluice-Anything", "y", "X-Other", "kept"}
	h.do("POST", "/plain", "body", forged...)
	got := <-seen
	for name := range got {
		if strings.HasPrefix(name, "Sluice-") {
			t.Errorf("upstream got %s: %q from the client", name, got[name])
		}
	}
	if got.Get("X-Other") != "kept" {
		t.Errorf("X-Other = %q, want it passed on", got.Get("X-Other"))
	}
	h.do("POST", "/trusted/x", "body", forged...)
	got = <-seen
	if got.Get("Sluice-Queued") != "01HFORGED" {
		t.Errorf("trusted route: Sluice-Queued = %q, want the client's", got.Get("Sluice-Queued"))
	}
}

// TestAmbiguousPathsRefused: a path whose reading depends on who reads it
// (dot segments, ..; path parameters, encoded slashes or dots, doubled
// slashes) is refused with 400 and reaches no upstream; a plain path
// reaches the route's upstream exactly as sent.
func TestAmbiguousPathsRefused(t *testing.T) {
	type hit struct{ who, path string }
	hits := make(chan hit, 16)
	named := func(n string) *upstream {
		return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			hits <- hit{n, r.URL.EscapedPath()}
		})
	}
	pub, internal := named("public"), named("internal")
	h := start(t, `
routes:
  - {name: internal, match: {path_prefix: /internal/}, upstreams: [`+internal.URL+`]}
  - {name: public, match: {path_prefix: /public/}, upstreams: [`+pub.URL+`]}
`, proxy.Options{})
	refused := []string{
		"/internal/../public/x",
		"/public/../internal/x",
		"/public/..;/internal/x",
		"/public/.;/x",
		"/public/%2e%2e/internal/x",
		"/public/%2E%2e;/internal/x",
		"/public/.%2e/internal/x",
		"/public/a%2fb",
		"/public/a%2Fb",
		"/public/a%5cb",
		"/public/a\\b",
		"/public//x",
		"/public/./x",
		"/public/%252e%252e/internal/x",
	}
	for _, p := range refused {
		resp, body := rawRequest(t, h, "GET "+p+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d %q, want 400", p, resp.StatusCode, body)
		}
	}
	// A path that no route takes, read with its dots resolved, stays 404.
	if resp, _ := rawRequest(t, h, "GET /public/x/.. HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /public/x/.. = %d, want 404 (it reads as /public)", resp.StatusCode)
	}
	select {
	case got := <-hits:
		t.Fatalf("an ambiguous path reached the %s upstream as %s", got.who, got.path)
	default:
	}
	passed := []hit{
		{"public", "/public/x"},
		{"public", "/public/a;b=1/x"},
		{"public", "/public/.hidden/x..y"},
		{"public", "/public/a%20b"},
		{"internal", "/internal/x/"},
	}
	for _, want := range passed {
		resp, body := rawRequest(t, h, "GET "+want.path+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %q, want 200", want.path, resp.StatusCode, body)
			continue
		}
		if got := <-hits; got != want {
			t.Errorf("GET %s reached the %s upstream as %s", want.path, got.who, got.path)
		}
	}
}

// TestQueuedBodyOfMaxRetryBody: a body of exactly max_retry_body (1 MiB by
// default), with a header, is queued whole on a route whose upstream is
// down.
func TestQueuedBodyOfMaxRetryBody(t *testing.T) {
	h := start(t, `
routes:
  - {name: jobs, upstreams: [`+deadAddr(t)+`], on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: time.Hour})
	body := strings.Repeat("0123456789abcdef", (1<<20)/16)
	resp, text := h.do("POST", "/jobs", body, "X-Pad", strings.Repeat("p", 8<<10))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d %q, want 202", resp.StatusCode, text)
	}
	m, err := h.srv.Store().Get(context.Background(), mustID(t, resp.Header.Get("Sluice-Queued")))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != body {
		t.Errorf("stored body: %d bytes, want the whole %d", len(m.Payload), len(body))
	}
}

// TestQueueOnlyUnsafeMethods: on_exhausted: queue stores requests whose
// effect matters; a GET that fails gets the normal failure answer, unless
// the route lists GET in queue_methods.
func TestQueueOnlyUnsafeMethods(t *testing.T) {
	hung := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	dead := deadAddr(t)
	h := start(t, `
routes:
  - {name: slow, match: {path_prefix: /slow/}, upstreams: [`+hung.URL+`], timeout: 100ms, on_exhausted: queue}
  - {name: listed, match: {path_prefix: /listed/}, upstreams: [`+dead+`], on_exhausted: queue, queue_methods: [GET, POST]}
  - {name: down, upstreams: [`+dead+`], on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: time.Hour})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/slow/x", http.StatusGatewayTimeout},
		{"HEAD", "/slow/x", http.StatusGatewayTimeout},
		{"POST", "/slow/x", http.StatusAccepted},
		{"GET", "/down/x", http.StatusBadGateway},
		{"OPTIONS", "/down/x", http.StatusBadGateway},
		{"PUT", "/down/x", http.StatusAccepted},
		{"DELETE", "/down/x", http.StatusAccepted},
		{"GET", "/listed/x", http.StatusAccepted},
		{"POST", "/listed/x", http.StatusAccepted},
		{"PUT", "/listed/x", http.StatusBadGateway},
	}
	queued := 0
	for _, tt := range tests {
		resp, _ := h.do(tt.method, tt.path, "")
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if resp.StatusCode == http.StatusAccepted {
			queued++
		}
	}
	st, err := h.srv.Store().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, q := range st {
		total += q.Ready
	}
	if total != int64(queued) {
		t.Errorf("store holds %d messages, want the %d answered 202", total, queued)
	}
}

// TestTimedOutTrickledAnswer: an upstream that sends a 200 header and then
// trickles its body past the route's timeout gives the client 504
// Sluice-Reject: timeout when no body byte was sent yet; when some were,
// the answer is cut off and does not look complete.
func TestTimedOutTrickledAnswer(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("length") != "" {
			w.Header().Set("Content-Length", "10")
		}
		w.WriteHeader(200)
		if r.URL.Query().Get("some") != "" {
			_, _ = io.WriteString(w, "ab")
		}
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	h := start(t, `
routes:
  - {name: r, upstreams: [`+up.URL+`], timeout: 200ms}
`, proxy.Options{})
	for _, q := range []string{"", "?length=1"} {
		resp, body := h.do("GET", "/x"+q, "")
		if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("Sluice-Reject") != "timeout" {
			t.Errorf("no body byte before the timeout (%q): %d %q, Sluice-Reject %q; want 504 timeout",
				q, resp.StatusCode, body, resp.Header.Get("Sluice-Reject"))
		}
	}
	for _, q := range []string{"?some=1", "?some=1&length=1"} {
		resp, err := h.client.Get(h.url + "/x" + q)
		if err != nil {
			continue // cut off before the header reached the client
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("some bytes before the timeout (%q): read %d %q without error; want the answer cut off", q, resp.StatusCode, b)
		}
	}
}

// TestClientThatStopsReadingIsCut: a client that stops reading a long
// answer is cut off at the route's timeout, and its bulkhead permit goes
// back, instead of holding it for as long as it keeps the connection.
func TestClientThatStopsReadingIsCut(t *testing.T) {
	chunk := strings.Repeat("x", 1<<20)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		for range 256 { // 256 MiB: more than any socket buffers hold
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	h := start(t, `
policies:
  p: {bulkhead: {max_concurrent: 1}, timeout: 300ms}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: r\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more. The one permit is free again once the
	// proxy gives up writing to it.
	start := time.Now()
	waitFor(t, "the permit to be free again", func() bool {
		resp, body := h.do("GET", "/small", "")
		return resp.StatusCode == 200 && body == "ok"
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the route's only permit was held %v after the client stopped reading, with a 300ms timeout", d)
	}
}
