package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/proxy"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testToken = "s3cret-token"

// serveConfig is a configuration for the serve tests: free loopback ports,
// a route to a healthy upstream, and a route that queues requests to a
// dead one whose breaker opens on the first failure and stays open (so
// the replayer leaves its messages alone and the test sees them).
func serveConfig(dir, up, down, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: %s}
storage: {dlq: "bolt://%s/dlq.db"}
log: {level: info}
shutdown_grace: 1s
policies:
  jobs:
    retry: {max_attempts: 2, backoff: constant, base_delay: 1ms, budget: off}
    circuit_breaker: {failure_threshold: 1, open_for: 1h}
routes:
  - name: jobs
    match: {path_prefix: /jobs/}
    upstreams: [%s]
    policy: jobs
    on_exhausted: queue
  - name: web
    match: {path_prefix: /}
    upstreams: [%s]
%s`, testToken, filepath.ToSlash(dir), down, up, extra)
}

// servedSluice is `sluice serve` running in the test's process.
type servedSluice struct {
	proxyURL, adminURL string
	signals            chan os.Signal
	log                *syncBuffer
	cancel             context.CancelFunc
	done               chan error
	client             *http.Client
}

func startServe(t *testing.T, configPath string) *servedSluice {
	t.Helper()
	s := &servedSluice{
		signals: make(chan os.Signal, 1),
		log:     &syncBuffer{},
		done:    make(chan error, 1),
		client:  &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	ready := make(chan struct{})
	o := &serveOptions{
		configPath: configPath,
		signals:    s.signals,
		ready: func(_ *proxy.Server, p, a net.Addr) {
			s.proxyURL, s.adminURL = "http://"+p.String(), "http://"+a.String()
			close(ready)
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- o.run(ctx, s.log) }()
	select {
	case <-ready:
	case err := <-s.done:
		cancel()
		t.Fatalf("serve stopped before it was ready: %v\n%s", err, s.log)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("serve not ready after 10s\n%s", s.log)
	}
	t.Cleanup(func() {
		s.stop(t)
		s.client.CloseIdleConnections()
	})
	return s
}

// stop cancels serve's context and waits for it to return.
func (s *servedSluice) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("serve still running 10s after its context ended")
	}
}

func (s *servedSluice) do(t *testing.T, method, url string, token bool) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// status reads GET /config/status.
func (s *servedSluice) status(t *testing.T) proxy.Status {
	t.Helper()
	code, _, body := s.do(t, http.MethodGet, s.adminURL+"/config/status", true)
	var st proxy.Status
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("GET /config/status: %d %s", code, body)
	}
	return st
}

// waitFor polls cond until it holds or 10 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeEndToEnd(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s %s", r.Method, r.URL.Path)
	}))
	defer up.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()

	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(serveConfig(dir, up.URL, down.URL, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, path)

	// The proxy forwards to the upstream.
	if code, _, body := s.do(t, http.MethodGet, s.proxyURL+"/hello", false); code != 200 || body != "upstream saw GET /hello" {
		t.Fatalf("GET /hello through the proxy: %d %q", code, body)
	}
	// The admin API wants the token.
	if code, _, _ := s.do(t, http.MethodGet, s.adminURL+"/health", false); code != http.StatusUnauthorized {
		t.Fatalf("GET /health without a token: %d; want 401", code)
	}
	if code, _, body := s.do(t, http.MethodGet, s.adminURL+"/health", true); code != 200 && code != 503 || !strings.Contains(body, `"status"`) {
		t.Fatalf("GET /health: %d %s", code, body)
	}

	// Two requests the dead upstream cannot take are queued.
	var ids []string
	for i := range 2 {
		code, h, body := s.do(t, http.MethodPut, fmt.Sprintf("%s/jobs/%d", s.proxyURL, i), false)
		if code != http.StatusAccepted || h.Get(proxy.HeaderQueued) == "" {
			t.Fatalf("PUT /jobs/%d: %d %q; want 202 with %s", i, code, body, proxy.HeaderQueued)
		}
		ids = append(ids, h.Get(proxy.HeaderQueued))
	}

	t.Run("client errors", func(t *testing.T) {
		t.Setenv(adminTokenEnv, "")
		code, _, errOut := runCmd(t, "dlq", "list", "--admin", s.adminURL)
		if code != 1 || !strings.Contains(errOut, "requires a token (401 Unauthorized): set SLUICE_ADMIN_TOKEN") {
			t.Errorf("dlq list without a token: exit %d, %q", code, errOut)
		}
		t.Setenv(adminTokenEnv, "wrong")
		code, _, errOut = runCmd(t, "health", "--admin", s.adminURL)
		if code != 1 || !strings.Contains(errOut, "refused the token in SLUICE_ADMIN_TOKEN (401 Unauthorized)") {
			t.Errorf("health with a wrong token: exit %d, %q", code, errOut)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		code, _, errOut = runCmd(t, "health", "--admin", closed)
		if code != 1 || !strings.Contains(errOut, "cannot reach the admin API at "+closed+": connection refused") {
			t.Errorf("health against a closed port: exit %d, %q", code, errOut)
		}
	})

	t.Run("dlq and health", func(t *testing.T) {
		t.Setenv(adminTokenEnv, testToken)
		admin := []string{"--admin", s.adminURL}

		code, out, errOut := runCmd(t, append([]string{"dlq", "list"}, admin...)...)
		if code != 0 || !strings.HasPrefix(out, "ID ") {
			t.Fatalf("dlq list: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		for i, id := range ids {
			line := regexp.MustCompile(`(?m)^` + id + `\s+jobs\s+ready\s+PUT /jobs/` + fmt.Sprint(i) + `\s+0\s`)
			if !line.MatchString(out) {
				t.Errorf("dlq list has no line for %s (PUT /jobs/%d, ready, 0 replays):\n%s", id, i, out)
			}
		}

		code, out, _ = runCmd(t, append([]string{"dlq", "list", "--json"}, admin...)...)
		var views []dlqhttp.MessageView
		if code != 0 || json.Unmarshal([]byte(out), &views) != nil || len(views) != 2 || views[0].ID != ids[0] {
			t.Errorf("dlq list --json: exit %d, %d messages, output %q", code, len(views), out)
		}

		code, out, _ = runCmd(t, append([]string{"dlq", "show", ids[0], "--body"}, admin...)...)
		for _, want := range []string{"id:                   " + ids[0], "queue:                jobs", "request:              PUT /jobs/0", "failed replays:       0\n", "body:                 2 bytes\n{}"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("dlq show: exit %d, output lacks %q:\n%s", code, want, out)
			}
		}

		// The jobs breaker is open for an hour: replays are refused.
		code, _, errOut = runCmd(t, append([]string{"dlq", "replay", ids[0]}, admin...)...)
		if code != 1 || !strings.Contains(errOut, "503 Service Unavailable: the route's upstreams are unhealthy") {
			t.Errorf("dlq replay ID: exit %d, stderr %q", code, errOut)
		}
		// Refused for the queue too: nothing asked for was replayed, so
		// the exit status is 1, as for one ID.
		code, out, errOut = runCmd(t, append([]string{"dlq", "replay", "--queue", "jobs"}, admin...)...)
		if code != 1 || !strings.HasPrefix(out, "jobs: replayed 0,") || errOut != "sluice: nothing was replayed: jobs: stopped: dlq: target unhealthy, replay refused\n" {
			t.Errorf("dlq replay --queue jobs while refused: exit %d, stdout %q, stderr %q; want exit 1", code, out, errOut)
		}

		code, out, _ = runCmd(t, append([]string{"health"}, admin...)...)
		if code != 0 || !strings.HasPrefix(out, "=== Sluice Resilience Health Report ===") || !strings.Contains(out, "jobs/") {
			t.Errorf("health: exit %d, output:\n%s", code, out)
		}
		code, out, _ = runCmd(t, append([]string{"health", "--json"}, admin...)...)
		var rep struct{ Status string }
		if json.Unmarshal([]byte(out), &rep) != nil || rep.Status == "" || (code == 1) != (rep.Status == "critical") {
			t.Errorf("health --json: exit %d, status %q, output %q", code, rep.Status, out)
		}

		code, out, _ = runCmd(t, append([]string{"dlq", "purge", "--queue", "jobs", "--dry-run"}, admin...)...)
		if code != 0 || out != ids[0]+"\n"+ids[1]+"\nwould purge 2 message(s)\n" {
			t.Errorf("dlq purge --dry-run: exit %d, stdout %q", code, out)
		}
		code, out, _ = runCmd(t, append([]string{"dlq", "purge", ids[0]}, admin...)...)
		if code != 0 || out != "purged 1 message(s)\n" {
			t.Errorf("dlq purge ID: exit %d, stdout %q", code, out)
		}
		code, out, _ = runCmd(t, append([]string{"dlq", "purge", "--queue", "jobs", "--older-than", "1ns"}, admin...)...)
		if code != 0 || out != "purged 1 message(s)\n" {
			t.Errorf("dlq purge --queue --older-than: exit %d, stdout %q", code, out)
		}
		code, out, _ = runCmd(t, append([]string{"dlq", "list"}, admin...)...)
		if code != 0 || out != "no messages\n" {
			t.Errorf("dlq list after purging: exit %d, stdout %q", code, out)
		}
		code, _, errOut = runCmd(t, append([]string{"dlq", "show", ids[0]}, admin...)...)
		if code != 1 || !strings.Contains(errOut, "404 Not Found: no such message") {
			t.Errorf("dlq show of a purged message: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("reload on SIGHUP", func(t *testing.T) {
		if v := s.status(t).Version; v != 1 {
			t.Fatalf("version %d before any reload; want 1", v)
		}
		extra := "  - name: extra\n    match: {path_prefix: /extra/}\n    upstreams: [" + up.URL + "]\n"
		if err := os.WriteFile(path, []byte(serveConfig(dir, up.URL, down.URL, extra)), 0o600); err != nil {
			t.Fatal(err)
		}
		s.signals <- syscall.SIGHUP
		waitFor(t, "version 2", func() bool { return s.status(t).Version == 2 })
		if _, _, body := s.do(t, http.MethodGet, s.adminURL+"/config", true); !strings.Contains(body, "name: extra") {
			t.Errorf("GET /config after the reload lacks the new route:\n%s", body)
		}

		if err := os.WriteFile(path, []byte("listen: [oops\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.signals <- syscall.SIGHUP
		waitFor(t, "the refused reload", func() bool { return !s.status(t).LastReload.IsZero() && !s.status(t).LastReloadOK })
		st := s.status(t)
		if st.Version != 2 || len(st.LastErrors) == 0 || !strings.HasPrefix(st.LastErrors[0], path+":") {
			t.Errorf("after a bad reload: %+v; want version 2 and errors naming %s", st, path)
		}
		if code, _, _ := s.do(t, http.MethodGet, s.proxyURL+"/extra/x", false); code != 200 {
			t.Errorf("the running configuration stopped serving after a refused reload: %d", code)
		}
		if log := s.log.String(); !strings.Contains(log, "SIGHUP: reloading the configuration") || !strings.Contains(log, "configuration refused") {
			t.Errorf("the log does not tell of the reloads:\n%s", log)
		}
	})

	s.stop(t)
	if log := s.log.String(); !strings.Contains(log, "sluice stopped") {
		t.Errorf("no clean stop in the log:\n%s", log)
	}
}

func TestServeStopsOnSIGTERM(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(serveConfig(dir, up.URL, up.URL, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, path)
	s.signals <- syscall.SIGTERM
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve returned %v after SIGTERM; want nil", err)
		}
		s.cancel()
		s.cancel = nil
	case <-time.After(10 * time.Second):
		t.Fatal("serve still running 10s after SIGTERM")
	}
	if log := s.log.String(); !strings.Contains(log, "shutting down") || !strings.Contains(log, "signal=terminated") {
		t.Errorf("the log does not tell of the shutdown:\n%s", log)
	}
}

func TestServeRefusesABadConfig(t *testing.T) {
	code, out, errOut := runCmd(t, "serve", "--config", "testdata/bad.yaml")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "sluice serve: the configuration has 6 problem(s):\ntestdata/bad.yaml:5:39: policies.network.retry.backoff:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
