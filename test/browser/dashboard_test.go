package browser_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/dashboard"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

const testToken = "s3cret"

// adminAPI is a real health.Monitor over a real registry and bbolt
// dead-letter store, served the way the admin server serves it: behind a
// bearer token, with a switch that makes /health fail.
type adminAPI struct {
	reg     *registry.Registry
	mon     *health.Monitor
	store   *dlq.Bolt
	breaker *breaker.Breaker
	msgID   dlq.ID
	failing atomic.Bool
}

func newAdminAPI(t *testing.T) *adminAPI {
	t.Helper()
	ctx := context.Background()
	a := &adminAPI{reg: registry.New(registry.Config{})}
	t.Cleanup(func() { _ = a.reg.Close() })

	store, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "dlq.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	a.store = store

	if a.breaker, err = a.reg.Breaker("upstream", breaker.Config{OpenFor: time.Minute}); err != nil {
		t.Fatal(err)
	}
	db, err := a.reg.Bulkhead("db", bulkhead.Config{MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	fetch, err := a.reg.Retry("fetch", retry.Config{MaxAttempts: 1, Budget: retry.NoBudget{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.reg.Limiter("api", ratelimit.Config{Rate: 100, Per: time.Second, Burst: 20}); err != nil {
		t.Fatal(err)
	}
	// An upstream that is down, for a probe.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	// The monitor first: its first snapshot starts the retry window.
	a.mon, err = health.New(health.Config{
		Registry: a.reg,
		DLQ:      []health.DLQSource{store},
		Probes:   []health.ProbeConfig{{Name: "billing", URL: down.URL + "/healthz"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.mon.Close() })
	for range 3 { // three failed checks mark the target unhealthy
		a.mon.Probe(ctx)
	}

	fail := func(context.Context) error { return errors.New("connection reset") }
	ok := func(context.Context) error { return nil }
	for range 5 { // five consecutive failures open the breaker
		_ = sluice.NewPipeline(a.breaker).Do(ctx, fail)
	}
	if st := a.breaker.Stats().State; st != breaker.StateOpen {
		t.Fatalf("breaker state %v after 5 failures, want open", st)
	}
	for range 3 {
		_ = sluice.NewPipeline(fetch).Do(ctx, ok)
	}
	_ = sluice.NewPipeline(fetch).Do(ctx, fail)
	if !db.TryAcquire() { // one call in progress: 25 % utilisation
		t.Fatal("bulkhead refused the first permit")
	}
	t.Cleanup(db.Release)

	a.msgID, err = store.Put(ctx, dlq.Message{
		Queue:     "agents",
		Payload:   []byte(`{"cmd":"reboot"}`),
		Headers:   map[string]string{dlqhttp.KeyMethod: "POST", dlqhttp.KeyURI: "/agents/7/commands"},
		Attempts:  5,
		LastError: "upstream answered 503",
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authorized wraps h with the admin API's bearer-token check.
func authorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice admin"`)
			http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handler serves the dashboard, /health and the DLQ API over the real
// store, as the admin server mounts them.
func (a *adminAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dashboard.Handler(dashboard.Options{Interval: 200 * time.Millisecond}))
	health := a.mon.JSONHandler()
	mux.Handle("GET /health", authorized(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.failing.Load() {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		health.ServeHTTP(w, r)
	})))
	mux.Handle("/dlq", authorized(dlqhttp.Handler(a.store, nil)))
	mux.Handle("/dlq/", authorized(dlqhttp.Handler(a.store, nil)))
	return mux
}

// pageEvents collects what the page must never produce: uncaught
// exceptions and Content-Security-Policy violations.
type pageEvents struct {
	mu       sync.Mutex
	problems []string
}

func (p *pageEvents) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = fmt.Sprintf("exception: %s at %s:%d", d.Text, d.URL, d.LineNumber)
		if d.Exception != nil && d.Exception.Description != "" {
			problem += ": " + d.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Source == "security" || e.Source == "javascript" || strings.Contains(e.Text, "Content Security Policy") {
			problem = fmt.Sprintf("console %s/%s: %s", e.Source, e.Level, e.Text)
		}
	}
	if problem != "" {
		p.mu.Lock()
		p.problems = append(p.problems, problem)
		p.mu.Unlock()
	}
}

func (p *pageEvents) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, problem := range p.problems {
		t.Error("page:", problem)
	}
}

// TestBrowser loads the dashboard in a real headless Chromium against a
// real health monitor and checks what an operator sees.
func TestBrowser(t *testing.T) {
	ctx := startChromium(t)
	api := newAdminAPI(t)
	srv := httptest.NewServer(api.handler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	var events pageEvents
	if err := chromedp.Listen(ctx, events.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	defer events.check(t)

	// text reads an element's text in one evaluation, so that a poll that
	// replaces the element between a lookup and a read cannot interfere.
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
	pctOf := func(score float64) string { return strconv.FormatFloat(score*100, 'f', 1, 64) + "%" }
	openRow := `#breakers tbody tr[data-name="upstream"]`

	// The token travels in the fragment; /health and /dlq refuse requests
	// without it, so anything rendered proves the page sent it.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/dashboard/#token="+testToken)); err != nil {
		t.Fatal(err)
	}
	wait("the open breaker", openRow+` td[data-state="open"] .badge`)

	rep := api.mon.Evaluate(ctx)
	if rep.Status != health.StatusCritical {
		t.Fatalf("monitor status %q, want critical for this setup (score %v)", rep.Status, rep.Score)
	}
	if got, want := text("#status"), string(rep.Status); got != want {
		t.Errorf("status shown %q, monitor says %q", got, want)
	}
	if got, want := text("#score"), pctOf(rep.Score); got != want {
		t.Errorf("score shown %q, monitor says %q", got, want)
	}
	if got := text(openRow + " th"); got != "upstream" {
		t.Errorf("breaker name shown %q, want upstream", got)
	}
	if got := text(openRow + " td.state"); got != "open" {
		t.Errorf("breaker state shown %q, want open", got)
	}
	if got := text(openRow + " td:nth-of-type(3)"); !strings.HasSuffix(got, " s") {
		t.Errorf("next probe shown %q, want a time in seconds", got)
	}
	wait("the health_critical alert", `#alert-list li[data-type="health_critical"][data-subject="overall"]`)
	if got := text(`#bulkheads tbody tr[data-name="db"] td.bar`); !strings.Contains(got, "1 of 4 (25.0%)") {
		t.Errorf("bulkhead utilisation shown %q, want 1 of 4 (25.0%%)", got)
	}
	if got := text(`#retries tbody tr[data-name="fetch"] td`); got != "75.0% of 4 calls" {
		t.Errorf("retry success shown %q, want 75.0%% of 4 calls", got)
	}
	wait("the limiter", `#limiters tbody tr[data-name="api"]`)
	wait("the unhealthy probe", `#probes tbody tr[data-name="billing"] td[data-state="unhealthy"]`)
	wait("the probe alert", `#alert-list li[data-type="probe_unhealthy"][data-subject="billing"]`)
	wait("the queue statistics", `#dlq-queues tbody tr[data-name="agents"]`)
	wait("the dead-letter message", `#dlq-messages tbody tr[data-name="`+api.msgID.String()+`"]`)
	if got := text(`#dlq-messages tbody tr td:nth-of-type(3)`); got != "POST /agents/7/commands" {
		t.Errorf("message request shown %q", got)
	}
	if !isHidden(t, ctx, "#error") {
		t.Error("error banner shown while the API answers")
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, testToken) {
		t.Errorf("the token stays in the address bar: %s", loc)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), "sluice-dashboard-screenshot.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Close the breaker: the next poll shows it, and the status recovers.
	api.breaker.ForceClosed()
	wait("the closed breaker", openRow+` td[data-state="closed"] .badge`)
	rep = api.mon.Evaluate(ctx)
	if rep.Status != health.StatusHealthy {
		t.Fatalf("monitor status %q after closing, want healthy (score %v)", rep.Status, rep.Score)
	}
	wait("the healthy status", `#status[data-status="healthy"]`)
	if got, want := text("#status"), string(rep.Status); got != want {
		t.Errorf("status shown %q after closing, monitor says %q", got, want)
	}
	if got, want := text("#score"), pctOf(rep.Score); got != want {
		t.Errorf("score shown %q after closing, monitor says %q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.WaitNotPresent(chromedp.CSS(`#alert-list li[data-type="health_critical"]`))); err != nil {
		t.Fatalf("health_critical alert still shown: %v", err)
	}

	// The API fails: the banner appears and says why, the figures stay.
	api.failing.Store(true)
	wait("the error banner", "#error")
	if got := text("#error-text"); !strings.Contains(got, "/health answered HTTP 500") {
		t.Errorf("error banner says %q, want the failed URL and status", got)
	}
	if got := text(openRow + " td.state"); got != "closed" {
		t.Errorf("breaker state shown %q while the API fails, want the last known (closed)", got)
	}

	// And recovers.
	api.failing.Store(false)
	if err := chromedp.Do(ctx, chromedp.WaitNotVisible(chromedp.CSS("#error"))); err != nil {
		t.Fatalf("error banner still shown after the API recovered: %v", err)
	}
}

// isHidden reports whether the element matching sel has the hidden
// attribute.
func isHidden(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), "hidden"))
	if err != nil {
		t.Fatalf("attribute hidden of %s: %v", sel, err)
	}
	return attr.Exists
}

// TestBrowserStatusSince checks that "status ... since" shows when the
// server's status changed, by the monitor's clock, not when the tab first
// saw it: the monitor's fake clock is months away from the browser's.
func TestBrowserStatusSince(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := sluicetest.NewFakeClock(t0)
	reg := registry.New(registry.Config{Clock: clock})
	defer reg.Close()
	br, err := reg.Breaker("upstream", breaker.Config{OpenFor: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.New(health.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	ctx := context.Background()
	for range 5 {
		_ = sluice.NewPipeline(br).Do(ctx, func(context.Context) error { return errors.New("down") })
	}
	if r := mon.Evaluate(ctx); r.Status != health.StatusCritical {
		t.Fatalf("status %s, want critical", r.Status)
	}
	clock.Advance(time.Hour) // the tab opens an hour after the change

	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dashboard.Handler(dashboard.Options{Interval: 200 * time.Millisecond, DLQLimit: -1}))
	mux.Handle("GET /health", mon.JSONHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tab := startChromium(t)
	tab, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	since := func(status string) string {
		t.Helper()
		sel := `#status[data-status="` + status + `"]`
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("waiting for %s: %v", sel, err)
		}
		s, err := chromedp.Run(tab, chromedp.Evaluate[string](
			`(() => { const e = document.querySelector("#status-since time"); return e ? e.dateTime : "<no time: " + document.querySelector("#status-since").textContent + ">"; })()`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/dashboard/")); err != nil {
		t.Fatal(err)
	}
	if got, want := since("critical"), "2026-03-01T12:00:00.000Z"; got != want {
		t.Errorf("critical since %s, want the monitor's change time %s", got, want)
	}
	clock.Advance(5 * time.Minute) // before the change, so that every poll that sees it sees this time
	br.ForceClosed()
	if got, want := since("healthy"), "2026-03-01T13:05:00.000Z"; got != want {
		t.Errorf("healthy since %s, want the monitor's change time %s", got, want)
	}
}
