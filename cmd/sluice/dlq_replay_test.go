package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/proxy"
)

// `sluice dlq replay --queue` and `--all` exit 1 whenever they asked for
// messages and did not replay them all — refused (breaker open), failed
// again, or already being replayed elsewhere — as a replay of one ID does;
// they exit 0 when everything asked for was replayed or there was nothing
// to replay.
func TestDLQReplayExitStatus(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	var healthy atomic.Bool
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer flaky.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	// jobs's breaker opens on the first failure and stays open, so its
	// replays are refused; flaky has no policy, so no breaker: its replays
	// are let through and fail while its upstream is down.
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0, token: %s}
storage: {dlq: "bolt://%s/dlq.db"}
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
  - name: flaky
    match: {path_prefix: /flaky/}
    upstreams: [%s]
    on_exhausted: queue
`, testToken, filepath.ToSlash(dir), down.URL, flaky.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, path)
	for _, p := range []string{"/jobs/1", "/flaky/1"} {
		if code, h, body := s.do(t, http.MethodPut, s.proxyURL+p, false); code != http.StatusAccepted || h.Get(proxy.HeaderQueued) == "" {
			t.Fatalf("PUT %s: %d %q; want 202 queued", p, code, body)
		}
	}
	t.Setenv(adminTokenEnv, testToken)
	admin := []string{"--admin", s.adminURL}
	replay := func(flags ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, append(append([]string{"dlq", "replay"}, flags...), admin...)...)
	}

	for _, tc := range []struct {
		rule    string
		flags   []string
		stderr  string // what stderr must say
		healthy bool
		code    int
	}{
		{"refused while the breaker is open", []string{"--queue", "jobs"}, "nothing was replayed", false, 1},
		{"a replay that fails again", []string{"--queue", "flaky"}, "nothing was replayed", false, 1},
		{"every queue, none replayed", []string{"--all"}, "nothing was replayed", false, 1},
		{"every queue, one refused", []string{"--all"}, "not replayed", true, 1},
		{"nothing left to replay", []string{"--queue", "flaky"}, "", true, 0},
	} {
		healthy.Store(tc.healthy)
		code, out, errOut := replay(tc.flags...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) || (tc.stderr == "") != (errOut == "") {
			t.Errorf("%s: dlq replay %s: exit %d, stdout %q, stderr %q; want exit %d, stderr with %q",
				tc.rule, strings.Join(tc.flags, " "), code, out, errOut, tc.code, tc.stderr)
		}
	}
}
