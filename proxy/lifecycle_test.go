package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
	"github.com/sluice-go/sluice/proxy"
)

func TestServerLifecycle(t *testing.T) {
	if _, err := proxy.New(nil, proxy.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	cfg := parse(t, "storage: {dlq: \"redis://127.0.0.1:1/0\"}\nroutes:\n  - {name: r, upstreams: [http://127.0.0.1:1]}\n")

	// A store passed in is the caller's: Close leaves it open.
	store, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "q.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := proxy.New(cfg, proxy.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadFile(); !errors.Is(err, proxy.ErrNoConfigFile) {
		t.Errorf("ReloadFile without a file = %v", err)
	}
	if st := srv.Status(); st.Version != 1 || st.LastReloadOK || len(st.LastErrors) != 1 {
		t.Errorf("status after a failed ReloadFile = %+v", st)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := store.Stats(context.Background()); err != nil {
		t.Errorf("the caller's store was closed: %v", err)
	}
	if err := srv.Reload(cfg); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("Reload after Close = %v", err)
	}
	if err := srv.Serve(context.Background(), listen(t), nil); !errors.Is(err, proxy.ErrClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
}

func TestServeTwice(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	h := start(t, "routes:\n  - {name: r, upstreams: ["+up.URL+"]}\n", proxy.Options{})
	h.do("GET", "/", "") // the first Serve is under way
	ln := listen(t)
	defer ln.Close()
	if err := h.srv.Serve(context.Background(), ln, nil); !errors.Is(err, proxy.ErrServing) {
		t.Errorf("second Serve = %v, want ErrServing", err)
	}
}

func TestFailureStatusesOnly(t *testing.T) {
	up := newUpstream(t, status(404, "no such agent"))
	h := start(t, `
policies:
  p:
    retry: {max_attempts: 3, base_delay: 1ms, budget: off}
    circuit_breaker: {failure_threshold: 1}
routes:
  - {name: r, upstreams: [`+up.URL+`], policy: p}
`, proxy.Options{})
	for range 3 {
		resp, body := h.do("GET", "/agents/9", "")
		if resp.StatusCode != 404 || body != "no such agent" || resp.Header.Get("Sluice-Retry") != "" {
			t.Fatalf("answer = %d %q (Sluice-Retry %q), want the 404 passed through", resp.StatusCode, body, resp.Header.Get("Sluice-Retry"))
		}
	}
	if n := up.hits.Load(); n != 3 {
		t.Errorf("upstream calls = %d, want 3: a 404 is neither retried nor trips the breaker", n)
	}
}

func TestStaleCacheSkipsPrivateRequests(t *testing.T) {
	up := newUpstream(t, status(200, "mine"))
	h := start(t, `
routes:
  - {name: r, upstreams: [`+up.URL+`], fallback: {stale_cache: 1m}}
`, proxy.Options{})
	h.do("GET", "/p", "", "Authorization", "Bearer a")
	up.set(status(503, "down"))
	if resp, _ := h.do("GET", "/p", "", "Authorization", "Bearer b"); resp.StatusCode != 503 {
		t.Errorf("status = %d: an answer to a request with Authorization must not be served to others", resp.StatusCode)
	}
	if resp, _ := h.do("GET", "/p", ""); resp.StatusCode != 503 {
		t.Errorf("status = %d, want 503: nothing was cached", resp.StatusCode)
	}
}

func TestReloadStartsAndStopsReplayers(t *testing.T) {
	up := newUpstream(t, status(503, "down"))
	h, path := startFile(t, "routes:\n  - {name: a, upstreams: ["+up.URL+"]}\n", proxy.Options{ReplayPollInterval: 10 * time.Millisecond})
	storage := strings.SplitN(readFile(t, path), "\n", 2)[0] + "\n"
	queues := func() map[string]bool {
		var st struct{ Queues []dlqhttp.QueueView }
		h.adminJSON("GET", "/dlq/stats", &st)
		m := map[string]bool{}
		for _, q := range st.Queues {
			m[q.Queue] = q.Replaying
		}
		return m
	}
	if q := queues(); len(q) != 0 {
		t.Fatalf("queues before = %v", q)
	}
	writeFile(t, path, storage+"routes:\n  - {name: a, upstreams: ["+up.URL+"], on_exhausted: queue}\n")
	if err := h.srv.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	resp, _ := h.do("POST", "/", "x")
	if resp.StatusCode != 202 {
		t.Fatalf("status = %d, want 202 once the route queues", resp.StatusCode)
	}
	up.set(status(200, "ok"))
	waitFor(t, "the new replayer to drain the queue", func() bool {
		var st struct{ Queues []dlqhttp.QueueView }
		h.adminJSON("GET", "/dlq/stats", &st)
		return len(st.Queues) == 1 && st.Queues[0].Replayed == 1
	})
	writeFile(t, path, storage+"routes:\n  - {name: a, upstreams: ["+up.URL+"]}\n")
	if err := h.srv.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if q := queues(); q["a"] {
		t.Errorf("queues after the route stopped queueing = %v, want no replayer", q)
	}
}

func TestReloadUnderTraffic(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	src := func(n int) string {
		return `
policies:
  p:
    retry: {max_attempts: 2, base_delay: 1ms}
    circuit_breaker: {failure_threshold: ` + string(rune('1'+n%5)) + `}
    bulkhead: {max_concurrent: ` + string(rune('5'+n%3)) + `, max_queue: 100, max_wait: 1s}
routes:
  - {name: r, upstreams: [` + up.URL + `], policy: p, fallback: {stale_cache: 1m}, on_exhausted: queue}
`
	}
	full, _ := withStorage(t, src(0))
	storage := strings.SplitN(full, "\n", 2)[0] + "\n"
	h := start(t, src(0), proxy.Options{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failures sync.Map
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := h.client.Get(h.url + "/")
				if err != nil {
					failures.Store(i, err.Error())
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Store(i, resp.Status)
				}
			}
		})
	}
	for n := 1; n <= 10; n++ {
		if err := h.srv.Reload(parse(t, storage+src(n))); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("client %v: %v", k, v)
		return true
	})
	if v := h.srv.Status().Version; v != 11 {
		t.Errorf("version = %d, want 11", v)
	}
}
