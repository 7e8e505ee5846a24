package browser_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/config"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/proxy"
)

// startShared serves, as instance id, one route to up whose breaker opens
// on one failure and is shared on rds.
func startShared(t *testing.T, id, up string, rds *redistest.Server) *sidecar {
	t.Helper()
	dir := t.TempDir()
	src := `instance_id: ` + id + `
storage:
  dlq: "bolt://` + filepath.ToSlash(filepath.Join(dir, "dlq.db")) + `"
  breakers: {url: "` + rds.URL() + `", timeout: 1s, check_interval: 200ms}
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 1m}}
routes:
  - {name: api, upstreams: [` + up + `], policy: p}
`
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(cfg, proxy.Options{ConfigPath: path})
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

// TestBrowserSharedState opens the dashboard of sidecar b, whose breaker a
// second sidecar a opened for the fleet through a real Redis: the page
// names the instance, shows the breaker's row in the shared state with the
// fleet's record (opened by sidecar-a) beside b's own state, and, once
// Redis is killed, the row turns degraded with the error.
func TestBrowserSharedState(t *testing.T) {
	ctx := startChromium(t)
	rds := redistest.Start(t)
	up := newSwitchable(t, http.StatusInternalServerError)
	a := startShared(t, "sidecar-a", up.URL, rds)
	b := startShared(t, "sidecar-b", up.URL, rds)
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(a.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`(() => { const e = document.querySelector(`+string(q)+`); return e ? e.textContent.trim() : "<no element>"; })()`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	wait := func(what, sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, sel, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(b.admin+"/dashboard/")); err != nil {
		t.Fatal(err)
	}
	row := `#shared tbody tr[data-name="breaker:api/` + strings.TrimPrefix(up.URL, "http://") + `"]`
	wait("the shared breaker", row+` td[data-state="shared"]`)
	if got := text("#instance"); got != "Instance sidecar-b" {
		t.Errorf("instance shown %q, want Instance sidecar-b", got)
	}
	fleet := row + " td:nth-of-type(2)"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(text(fleet), "opened by sidecar-a"); {
		if time.Now().After(deadline) {
			t.Fatalf("the fleet's record is shown as %q, want opened by sidecar-a", text(fleet))
		}
		time.Sleep(50 * time.Millisecond) // the page polls every second; bounded by deadline
	}
	if got := text(row + " td:nth-of-type(3)"); got != "open" {
		t.Errorf("this instance's state shown %q, want open", got)
	}
	if got := text(row + " td:nth-of-type(4)"); got != "–" {
		t.Errorf("last error shown %q before any failure", got)
	}
	rds.Kill()
	wait("the degraded breaker", row+` td[data-state="degraded"]`)
	if got := text(row + " td:nth-of-type(4)"); !strings.Contains(got, "unavailable") {
		t.Errorf("last error shown %q, want Redis's failure", got)
	}
}

// quietRedis drops go-redis's own log lines (failed dials once the test
// has killed Redis); the test checks what the page shows instead.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
