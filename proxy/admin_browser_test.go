package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/internal/testenv"
	"github.com/sluice-go/sluice/proxy"
)

// startChromium starts a headless Chromium that resolves evil.test to
// 127.0.0.1, as a DNS-rebinding attacker's name would after the rebind,
// and returns its tab's context. The cleanup closes it and checks that
// its process is gone.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.RequireTool(t, "chromium", "apt-get install -y chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		allocCancel()
		t.Fatalf("start chromium: %v", err)
	}
	proc := chromedp.FromContext(ctx).Browser.Process()
	t.Cleanup(func() {
		closeCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Errorf("close chromium: %v", err)
		}
		cancel()
		allocCancel()
		if proc != nil {
			if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("chromium (pid %d) still running after the test: %v", proc.Pid, err)
			}
		}
	})
	return ctx
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
	down := newUpstream(t, status(503, "down"))
	h, _ := startFile(t, "routes:\n  - {name: q, upstreams: ["+down.URL+"], on_exhausted: queue}\n", proxy.Options{ReplayPollInterval: time.Hour})
	resp, _ := h.do("POST", "/jobs", "the secret body")
	msg := resp.Header.Get(proxy.HeaderQueued)
	if resp.StatusCode != 202 || msg == "" {
		t.Fatalf("queueing: %d", resp.StatusCode)
	}
	resp, _ = h.do("POST", "/jobs", "the secret body")
	other := resp.Header.Get(proxy.HeaderQueued) // for the reads below, whatever the attacks did
	down.set(status(200, "ok"))                  // a replay would now succeed and delete the message

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
