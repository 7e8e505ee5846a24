package proxy_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/proxy"
)

// startFile serves a configuration read from a file, so that it can be
// reloaded; it returns the harness and the file's path.
func startFile(t *testing.T, src string, opts proxy.Options) (*harness, string) {
	t.Helper()
	full, dir := withStorage(t, src)
	path := filepath.Join(dir, "sluice.yaml")
	writeFile(t, path, full)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.ConfigPath = path
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, dir: dir, done: make(chan error, 1)}
	h.serve(listen(t), listen(t))
	t.Cleanup(h.stop)
	return h, path
}

// jsonCT is the header every state-changing admin request must carry.
var jsonCT = []string{"Content-Type", "application/json"}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	up := newUpstream(t, status(500, "boom"))
	other := newUpstream(t, status(200, "other"))
	h, path := startFile(t, `
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 1h}}
routes:
  - {name: r, match: {path_prefix: /r/}, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	storage := strings.SplitN(readFile(t, path), "\n", 2)[0] + "\n"
	h.do("GET", "/r/", "")
	if resp, _ := h.do("GET", "/r/", ""); resp.Header.Get("Sluice-Reject") != "circuit-open" {
		t.Fatalf("breaker did not open: %d", resp.StatusCode)
	}
	br, _ := h.srv.Registry().LookupBreaker("r/" + strings.TrimPrefix(up.URL, "http://"))

	// A changed policy and a new route: applied in place, the breaker stays open.
	writeFile(t, path, storage+`
policies:
  p: {circuit_breaker: {failure_threshold: 3, open_for: 2h}}
routes:
  - {name: r, match: {path_prefix: /r/}, upstreams: [`+up.URL+`], policy: p}
  - {name: o, match: {path_prefix: /o/}, upstreams: [`+other.URL+`]}
`)
	var st proxy.Status
	if code := h.adminJSON("POST", "/config/reload", &st, jsonCT...); code != 200 || st.Version != 2 || !st.LastReloadOK {
		t.Fatalf("reload = %d %+v", code, st)
	}
	if resp, _ := h.do("GET", "/r/", ""); resp.StatusCode != 503 || resp.Header.Get("Sluice-Reject") != "circuit-open" {
		t.Errorf("after reload: %d %q, want the breaker still open", resp.StatusCode, resp.Header.Get("Sluice-Reject"))
	}
	if now, _ := h.srv.Registry().LookupBreaker("r/" + strings.TrimPrefix(up.URL, "http://")); now != br || br.Config().FailureThreshold != 3 {
		t.Errorf("the breaker was replaced or not updated")
	}
	if resp, body := h.do("GET", "/o/", ""); resp.StatusCode != 200 || body != "other" {
		t.Errorf("new route: %d %q", resp.StatusCode, body)
	}

	// A bad file is refused with its errors; the running configuration stays.
	writeFile(t, path, storage+"routes:\n  - {name: r, upstreams: [http://x], polcy: p}\n")
	var refused struct {
		Error  string
		Status proxy.Status
	}
	if code := h.adminJSON("POST", "/config/reload", &refused, jsonCT...); code != http.StatusUnprocessableEntity {
		t.Fatalf("bad reload = %d, want 422", code)
	}
	if refused.Status.Version != 2 || refused.Status.LastReloadOK || len(refused.Status.LastErrors) == 0 ||
		!strings.Contains(refused.Status.LastErrors[0], "sluice.yaml:3:") || !strings.Contains(refused.Status.LastErrors[0], "polcy") {
		t.Errorf("refused reload status = %+v", refused.Status)
	}
	h.adminJSON("GET", "/config/status", &st)
	if st.LastReloadOK || st.Version != 2 {
		t.Errorf("GET /config/status = %+v", st)
	}
	if resp, _ := h.do("GET", "/o/", ""); resp.StatusCode != 200 {
		t.Errorf("after a refused reload the old routes must keep running: %d", resp.StatusCode)
	}

	// A configuration a policy refuses is refused whole too.
	cfg := h.srv.Config()
	bad := *cfg
	bad.Policies = map[string]config.Policy{"p": {Bulkhead: &config.Bulkhead{MaxConcurrent: -1}}}
	if err := h.srv.Reload(&bad); err == nil {
		t.Error("Reload accepted a bulkhead of -1")
	}
	if h.srv.Config() != cfg || h.srv.Status().LastReloadOK {
		t.Error("a refused Reload changed the configuration or the status")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminToken(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, `
admin: {token: s3cret}
routes:
  - {name: r, upstreams: [`+up.URL+`]}
`, proxy.Options{})
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "Basic s3cret", "s3cret"} {
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		resp, _ := h.doURL(h.admin, "GET", "/config/status", "", hdr...)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: %d, want 401 with a Bearer challenge", auth, resp.StatusCode)
		}
	}
	resp, body := h.doURL(h.admin, "GET", "/config", "", "Authorization", "Bearer s3cret")
	if resp.StatusCode != 200 || strings.Contains(body, "s3cret") || !strings.Contains(body, "token: REDACTED") {
		t.Errorf("GET /config = %d:\n%s", resp.StatusCode, body)
	}
	for _, p := range []string{"/metrics", "/health", "/health/report", "/dlq", "/dlq/stats"} {
		if resp, body := h.doURL(h.admin, "GET", p, "", "Authorization", "bearer s3cret"); resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %q", p, resp.StatusCode, body)
		}
	}
	// The proxy itself is not behind the token.
	if resp, _ := h.do("GET", "/", ""); resp.StatusCode != 200 {
		t.Errorf("proxy = %d", resp.StatusCode)
	}
	// The dashboard's page holds no data: it is served without the token,
	// and the admin root leads to it; the API it calls still needs one.
	resp, body = h.doURL(h.admin, "GET", "/dashboard/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "sluice") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /dashboard/ without token = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	root, err := noRedirect.Get(h.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	root.Body.Close()
	if root.StatusCode != http.StatusFound || root.Header.Get("Location") != "/dashboard/" {
		t.Errorf("GET / on admin = %d Location %q, want 302 to /dashboard/", root.StatusCode, root.Header.Get("Location"))
	}
	if resp, _ := h.doURL(h.admin, "GET", "/health", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /health without token = %d, want 401", resp.StatusCode)
	}
}

// publicListener pretends to listen on a routable address.
type publicListener struct{ net.Listener }

func (publicListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 9901} }

func TestAdminExposedNeedsToken(t *testing.T) {
	full, _ := withStorage(t, "routes:\n  - {name: r, upstreams: [http://127.0.0.1:1]}\n")
	cfg := parse(t, full)
	cfg.Admin.Listen = "0.0.0.0:9901" // what the parser refuses; New checks again
	if _, err := proxy.New(cfg, proxy.Options{}); !errors.Is(err, proxy.ErrAdminExposed) {
		t.Errorf("New = %v, want ErrAdminExposed", err)
	}
	cfg.Admin.Listen = "127.0.0.1:9901"
	srv, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pl, al := listen(t), listen(t)
	defer pl.Close()
	defer al.Close()
	if err := srv.Serve(t.Context(), pl, publicListener{al}); !errors.Is(err, proxy.ErrAdminExposed) {
		t.Errorf("Serve = %v, want ErrAdminExposed", err)
	}
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
}

func TestAdminDLQ(t *testing.T) {
	up := newUpstream(t, status(503, "down"))
	h := start(t, `
routes:
  - {name: q, upstreams: [`+up.URL+`], on_exhausted: queue}
`, proxy.Options{ReplayPollInterval: time.Hour})
	var ids []string
	for i := range 4 {
		resp, _ := h.do("POST", "/m", string(rune('a'+i)), "Authorization", "Bearer user-token")
		if resp.StatusCode != 202 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("Sluice-Queued"))
	}
	var page struct {
		Messages []dlqhttp.MessageView
		Next     string
	}
	h.adminJSON("GET", "/dlq?limit=3", &page)
	if len(page.Messages) != 3 || page.Next != ids[2] || page.Messages[0].ID != ids[0] {
		t.Fatalf("first page: %d messages, next %q", len(page.Messages), page.Next)
	}
	if got := page.Messages[0].Headers["Authorization"]; len(got) != 1 || got[0] != "REDACTED" {
		t.Errorf("Authorization shown as %q", got)
	}
	h.adminJSON("GET", "/dlq?after="+page.Next, &page)
	if len(page.Messages) != 1 || page.Messages[0].ID != ids[3] || page.Next != "" {
		t.Fatalf("second page: %+v", page)
	}
	var one dlqhttp.MessageView
	h.adminJSON("GET", "/dlq/"+ids[1]+"?body=1", &one)
	if one.Body == nil || *one.Body != "b" {
		t.Errorf("body = %v", one.Body)
	}
	if code := h.adminJSON("DELETE", "/dlq/"+ids[0], nil, jsonCT...); code != http.StatusNoContent {
		t.Errorf("DELETE = %d", code)
	}
	if code := h.adminJSON("GET", "/dlq/"+ids[0], &one); code != http.StatusNotFound {
		t.Errorf("GET deleted = %d", code)
	}
	var out map[string]string
	if code := h.adminJSON("POST", "/dlq/"+ids[1]+"/replay", &out, jsonCT...); code != http.StatusBadGateway || out["outcome"] != "failed" {
		t.Errorf("replay while down = %d %v", code, out)
	}
	up.set(status(200, "ok"))
	if code := h.adminJSON("POST", "/dlq/"+ids[1]+"/replay", &out, jsonCT...); code != 200 || out["outcome"] != "replayed" {
		t.Errorf("replay = %d %v", code, out)
	}
	var res struct{ Results []dlqhttp.ReplayView }
	h.adminJSON("POST", "/dlq/replay?queue=q", &res, jsonCT...)
	if len(res.Results) != 1 || res.Results[0].Replayed != 2 {
		t.Errorf("replay all = %+v", res.Results)
	}
	h.adminJSON("GET", "/dlq", &page)
	if len(page.Messages) != 0 {
		t.Errorf("%d messages left", len(page.Messages))
	}
	// The drained queue reads 0, and the replayer's counters are metrics.
	_, scraped := h.doURL(h.admin, "GET", "/metrics", "")
	for _, series := range []string{
		`sluice_dlq_depth{queue="q",state="ready"} 0`,
		`sluice_dlq_depth{queue="q",state="parked"} 0`,
		`sluice_dlq_replayed_total{queue="q"} 3`,
		`sluice_dlq_replay_failures_total{queue="q"} 1`,
	} {
		if !strings.Contains(scraped, series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, p := range []string{"/dlq?state=bogus", "/dlq/not-an-id", "/dlq?limit=0"} {
		if code := h.adminJSON("GET", p, &out); code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, code)
		}
	}
	if code := h.adminJSON("POST", "/dlq/replay?queue=nope", &out, jsonCT...); code != http.StatusConflict {
		t.Errorf("replay of an unknown queue = %d, want 409", code)
	}
}

// A server that has never reloaded is in good order: a monitor that alerts
// on last_reload_ok false must stay quiet from startup.
func TestStatusBeforeAnyReload(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, "routes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	resp, body := h.doURL(h.admin, "GET", "/config/status", "")
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /config/status = %d %q: %v", resp.StatusCode, body, err)
	}
	if raw["last_reload_ok"] != true || raw["reloads"] != 0.0 {
		t.Errorf("fresh server: last_reload_ok = %v, reloads = %v; want true and 0\n%s", raw["last_reload_ok"], raw["reloads"], body)
	}
	if _, ok := raw["last_reload"]; ok {
		t.Errorf("fresh server shows a last_reload: %s", body)
	}
	if err := h.srv.ReloadFile(); !errors.Is(err, proxy.ErrNoConfigFile) {
		t.Fatalf("ReloadFile = %v", err)
	}
	if st := h.srv.Status(); st.LastReloadOK || st.Reloads != 1 {
		t.Errorf("after a failed reload: %+v, want last_reload_ok false and 1 reload", st)
	}
}

// The DLQ API redacts credentials with the word the configuration's
// redaction uses, so that an operator reads one marker everywhere.
func TestDLQRedactionMatchesConfig(t *testing.T) {
	if dlqhttp.RedactedValue != config.RedactedValue {
		t.Errorf("dlqhttp.RedactedValue = %q, config.RedactedValue = %q", dlqhttp.RedactedValue, config.RedactedValue)
	}
}
