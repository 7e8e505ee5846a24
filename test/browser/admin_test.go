package browser_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/proxy"
)

// sidecar is a proxy.Server serving a configuration file on loopback
// listeners until the test ends, with a client for it.
type sidecar struct {
	srv   *proxy.Server
	url   string // the proxy, http://127.0.0.1:port
	admin string // the admin API
}

// startSidecar serves routes (YAML) from a file in a fresh folder, with a
// bbolt dead-letter store there, so that a reload reads the file again.
func startSidecar(t *testing.T, routes string, opts proxy.Options) *sidecar {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	src := "storage: {dlq: \"bolt://" + filepath.ToSlash(filepath.Join(dir, "dlq.db")) + "\"}\n" + routes
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.ConfigPath = path
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	pl, al := listen(t), listen(t)
	s := &sidecar{srv: srv, url: "http://" + pl.Addr().String(), admin: "http://" + al.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, al) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// post sends body to the proxy and returns the answer's status and its
// Sluice-Queued header.
func (s *sidecar) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Post(s.url+path, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(proxy.HeaderQueued)
}

// switchable is an upstream whose answer's status the test sets.
type switchable struct {
	*httptest.Server
	code atomic.Int64
}

func newSwitchable(t *testing.T, code int) *switchable {
	t.Helper()
	u := &switchable{}
	u.code.Store(int64(code))
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(u.code.Load()))
	}))
	t.Cleanup(u.Close)
	return u
}

// attackPage is what a page on another origin can try against a loopback
// admin API without a token: a text/plain fetch, a form post, a JSON
// fetch (which needs a CORS preflight the admin API never grants). It
// sets window.attackDone when every attempt has settled.
const attackPage = `<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="ADMIN/config/reload" target="sink"><input name="x" value="1"></form>
<script>
(async () => {
  const admin = "ADMIN";
  const tries = [
    fetch(admin + "/config/reload", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"}),
    fetch(admin + "/dlq/MSGID/replay", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"}),
    fetch(admin + "/config/reload", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}),
    new Promise((resolve) => {
      document.querySelector("iframe").addEventListener("load", resolve, {once: true});
      document.getElementById("f").submit();
    }),
  ];
  await Promise.allSettled(tries);
  window.attackDone = true;
})();
</script></body></html>`

// TestAdminRefusesWebPages runs, in a real Chromium, the attacks a web page
// the operator visits could make on an admin API without a token, and
// checks that the server refused them and did nothing.
func TestAdminRefusesWebPages(t *testing.T) {
	ctx := startChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	down := newSwitchable(t, 503)
	h := startSidecar(t, "routes:\n  - {name: q, upstreams: ["+down.URL+"], on_exhausted: queue}\n", proxy.Options{ReplayPollInterval: time.Hour})
	code, msg := h.post(t, "/jobs", "the secret body")
	if code != 202 || msg == "" {
		t.Fatalf("queueing: %d", code)
	}
	_, other := h.post(t, "/jobs", "the secret body") // for the reads below, whatever the attacks did
	down.code.Store(200)                              // a replay would now succeed and delete the message

	// Cross-origin: a page on another port of 127.0.0.1 is another origin.
	page := strings.NewReplacer("ADMIN", h.admin, "MSGID", msg).Replace(attackPage)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	defer attacker.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.attackDone === true", chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the attack page did not finish: %v", err)
	}
	if st := h.srv.Status(); st.Reloads != 0 || st.Version != 1 {
		t.Errorf("a cross-origin page reloaded the configuration: %+v", st)
	}
	id, _ := dlq.ParseID(msg)
	if m, err := h.srv.Store().Get(context.Background(), id); err != nil || m.Replays != 0 {
		t.Errorf("a cross-origin page replayed the message: %+v, %v", m, err)
	}

	// DNS rebinding: a page of evil.test, now resolving to 127.0.0.1, reads
	// the admin API as its own origin; the Host header gives it away.
	port := h.admin[strings.LastIndex(h.admin, ":")+1:]
	if err := chromedp.Do(ctx, chromedp.Navigate("http://evil.test:"+port+"/dashboard/")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch("/dlq/`+other+`?body=1").then(async (r) => r.status + " " + await r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "the secret body") || !strings.HasPrefix(got, "421 ") {
		t.Errorf("a rebinding page read the message: %.300s", got)
	}
	// The operator's own page on the admin's origin still works.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.admin+"/dashboard/")); err != nil {
		t.Fatal(err)
	}
	got, err = chromedp.Run(ctx, chromedp.Evaluate[string](
		`fetch("/dlq/`+other+`?body=1").then(async (r) => r.status + " " + await r.text())`,
		chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "the secret body") {
		t.Errorf("the admin's own origin: %.300s, %v", got, err)
	}
}
