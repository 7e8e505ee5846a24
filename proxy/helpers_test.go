package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a Server serving on loopback listeners, with a client.
type harness struct {
	t      *testing.T
	srv    *proxy.Server
	url    string // the proxy, http://127.0.0.1:port
	admin  string // the admin API
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	dir    string
}

// withStorage prefixes src with a storage section in a fresh folder.
func withStorage(t *testing.T, src string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	return "storage: {dlq: \"bolt://" + filepath.ToSlash(filepath.Join(dir, "dlq.db")) + "\"}\n" + src, dir
}

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

// start serves src (a YAML configuration without storage) until the test
// ends.
func start(t *testing.T, src string, opts proxy.Options) *harness {
	t.Helper()
	full, dir := withStorage(t, src)
	cfg := parse(t, full)
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{t: t, srv: srv, dir: dir, done: make(chan error, 1)}
	h.serve(listen(t), listen(t))
	t.Cleanup(h.stop)
	return h
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func (h *harness) serve(pl, al net.Listener) {
	h.url = "http://" + pl.Addr().String()
	h.admin = "http://" + al.Addr().String()
	h.client = &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.srv.Serve(ctx, pl, al) }()
}

// stop ends Serve and waits for it.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Serve: %v", err)
		}
		h.done <- nil // later stops return at once
	case <-time.After(10 * time.Second):
		h.t.Error("Serve did not return")
	}
	h.client.CloseIdleConnections()
}

// do sends a request to the proxy and reads the whole answer.
func (h *harness) do(method, path, body string, hdr ...string) (*http.Response, string) {
	h.t.Helper()
	return h.doURL(h.url, method, path, body, hdr...)
}

func (h *harness) doURL(base, method, path, body string, hdr ...string) (*http.Response, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, string(data)
}

// adminJSON calls the admin API and decodes its JSON answer into v.
func (h *harness) adminJSON(method, path string, v any, hdr ...string) int {
	h.t.Helper()
	resp, body := h.doURL(h.admin, method, path, "", hdr...)
	if v != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			h.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

// upstream is a loopback test server whose behaviour the test sets.
type upstream struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, fn http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handler: fn}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		fn := u.handler
		u.mu.Unlock()
		fn(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) set(fn http.HandlerFunc) {
	u.mu.Lock()
	u.handler = fn
	u.mu.Unlock()
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// deadAddr returns a loopback URL on which nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// waitFor polls cond until it holds, for conditions that a real network
// exchange makes true at a time the test cannot know.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func header(t *testing.T, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

var errStop = errors.New("stop")
