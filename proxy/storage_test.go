package proxy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/proxy"
	"github.com/sluice-go/sluice/sluiceredis"
)

// logBuffer collects a Server's log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveConfig serves the whole configuration src (storage included) until
// the test ends, logging into the returned buffer.
func serveConfig(t *testing.T, src string) (*harness, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	srv, err := proxy.New(parse(t, src), proxy.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{t: t, srv: srv, done: make(chan error, 1)}
	h.serve(listen(t), listen(t))
	t.Cleanup(h.stop)
	return h, logs
}

func TestRedisDLQ(t *testing.T) {
	rds := redistest.Start(t)
	h, _ := serveConfig(t, `storage: {dlq: {url: "`+rds.URL()+`/1", prefix: "t:{q}", replay_lease: 1m, fallback: none}}
routes:
  - {name: orders, upstreams: [`+deadAddr(t)+`], on_exhausted: queue}
`)
	if _, ok := h.srv.Store().(*sluiceredis.Store); !ok {
		t.Fatalf("store is %T, want the Redis store storage.dlq names", h.srv.Store())
	}
	resp, _ := h.do("POST", "/orders", "item=1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with the upstream down = %d, want 202", resp.StatusCode)
	}
	// Another instance on the same Redis, database and prefix sees it.
	c, err := sluiceredis.Open(rds.URL()+"/1", sluiceredis.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: c, Prefix: "t:{q}"})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := other.List(context.Background(), dlq.Query{Queue: "orders"})
	if err != nil || len(ms) != 1 || string(ms[0].Payload) != "item=1" || ms[0].ID.String() != resp.Header.Get(proxy.HeaderQueued) {
		t.Fatalf("messages on Redis = %+v, %v; want the queued request", ms, err)
	}
}

// sharedLimitConfig is a route limited to 3 calls per hour for the whole
// fleet on rds, with the given extra storage.ratelimit keys.
//
// Unless extra sets one, the Redis timeout is 2 s rather than the 50 ms
// default: these tests are about what the limit decides, and a loaded
// machine (the race detector, parallel packages) can take longer than 50 ms
// to answer, which would put the limit in its fail mode.
func sharedLimitConfig(t *testing.T, rds *redistest.Server, up, extra string) string {
	if !strings.Contains(extra, "timeout:") {
		extra += ", timeout: 2s"
	}
	return `storage:
  dlq: "bolt://` + t.TempDir() + `/dlq.db"
  ratelimit: {url: "` + rds.URL() + `"` + extra + `}
routes:
  - name: api
    upstreams: [` + up + `]
    rate_limit: {rate: 3, per: 1h}
`
}

func TestSharedRateLimit(t *testing.T) {
	rds := redistest.Start(t)
	up := newUpstream(t, status(200, "ok"))
	a, _ := serveConfig(t, sharedLimitConfig(t, rds, up.URL, ""))
	b, _ := serveConfig(t, sharedLimitConfig(t, rds, up.URL, ""))
	var codes []int
	for i, h := range []*harness{a, b, a, b, a} {
		resp, _ := h.do("GET", "/x", "")
		codes = append(codes, resp.StatusCode)
		if i >= 3 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("refusal %d has no Retry-After", i)
		}
	}
	if want := []int{200, 200, 200, 429, 429}; !equalInts(codes, want) {
		t.Fatalf("two instances on one limit of 3 answered %v, want %v", codes, want)
	}
	if n := rds.Client().Exists(context.Background(), sluiceredis.LimiterKey("api/route", "")).Val(); n != 1 {
		t.Errorf("limit key %s not on Redis", sluiceredis.LimiterKey("api/route", ""))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKeyedRateLimit(t *testing.T) {
	rds := redistest.Start(t)
	up := newUpstream(t, status(200, "ok"))
	for _, storage := range []string{"", "\n  ratelimit: {url: \"" + rds.URL() + "\", timeout: 2s}"} {
		h, _ := serveConfig(t, `storage:
  dlq: "bolt://`+t.TempDir()+`/dlq.db"`+storage+`
routes:
  - name: api
    upstreams: [`+up.URL+`]
    rate_limit: {rate: 1, per: 1h, key: "header:X-Tenant"}
`)
		var codes []int
		for _, tenant := range []string{"a", "a", "b", "", "", strings.Repeat("z", 200)} {
			resp, _ := h.do("GET", "/x", "", "X-Tenant", tenant)
			codes = append(codes, resp.StatusCode)
		}
		if want := []int{200, 429, 200, 200, 429, 200}; !equalInts(codes, want) {
			t.Errorf("storage %q: tenants a, a, b, none, none, long got %v, want %v", storage, codes, want)
		}
		// A reload that changes nothing keeps each tenant's state.
		if err := h.srv.Reload(h.srv.Config()); err != nil {
			t.Fatal(err)
		}
		if resp, _ := h.do("GET", "/x", "", "X-Tenant", "a"); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("storage %q: tenant a after a reload = %d, want 429 (its limit kept)", storage, resp.StatusCode)
		}
	}
}

func TestSharedRateLimitFailModes(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  []int
	}{
		{", on_failure: closed", []int{429, 429, 429, 429}},
		{", on_failure: error", []int{503, 503, 503, 503}},
		// A local bucket of half the limit: a burst of 2 (1.5 rounded up).
		{", on_failure: open, fallback_share: 0.5", []int{200, 200, 429, 429}},
	} {
		rds := redistest.Start(t)
		up := newUpstream(t, status(200, "ok"))
		h, logs := serveConfig(t, sharedLimitConfig(t, rds, up.URL, tc.extra))
		if resp, _ := h.do("GET", "/x", ""); resp.StatusCode != 200 {
			t.Fatalf("%s: first call with Redis up = %d", tc.extra, resp.StatusCode)
		}
		rds.Kill()
		var codes []int
		for range tc.want {
			resp, _ := h.do("GET", "/x", "")
			codes = append(codes, resp.StatusCode)
		}
		if !equalInts(codes, tc.want) {
			t.Errorf("%s: with Redis down answered %v, want %v", tc.extra, codes, tc.want)
		}
		if !strings.Contains(logs.String(), "rate limit lost Redis") {
			t.Errorf("%s: the log does not say the limit lost Redis:\n%s", tc.extra, logs)
		}
		rep := h.srv.Monitor().Evaluate(context.Background())
		if len(rep.Shared) != 1 || rep.Shared[0].Name != "ratelimit" || !rep.Shared[0].Degraded || rep.Shared[0].LastError == "" {
			t.Errorf("%s: health report's shared components = %+v, want ratelimit degraded with its error", tc.extra, rep.Shared)
		}
	}
}

func TestBreakersStorageLogged(t *testing.T) {
	rds := redistest.Start(t)
	_, logs := serveConfig(t, `storage:
  dlq: "bolt://`+t.TempDir()+`/dlq.db"
  breakers: "`+rds.URL()+`"
routes:
  - {name: api, upstreams: [http://127.0.0.1:1]}
`)
	if l := logs.String(); !strings.Contains(l, `breakers="shared on Redis, mode shared"`) || strings.Contains(l, "not active") {
		t.Errorf("the log does not say the breakers are shared:\n%s", l)
	}
}

// connectedClients returns the number of client connections the server
// of c holds, c's own included.
func connectedClients(t *testing.T, c *redis.Client) int {
	t.Helper()
	info := c.Info(context.Background(), "clients").Val()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			n := 0
			for _, c := range v {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	t.Fatalf("no connected_clients in INFO: %q", info)
	return 0
}

func TestReloadMovesSharedLimits(t *testing.T) {
	first, second := redistest.Start(t), redistest.Start(t)
	up := newUpstream(t, status(200, "ok"))
	dir := t.TempDir()
	src := func(rds *redistest.Server) string {
		return `storage:
  dlq: "bolt://` + dir + `/dlq.db"
  ratelimit: {url: "` + rds.URL() + `", timeout: 2s}
routes:
  - name: api
    upstreams: [` + up.URL + `]
    rate_limit: {rate: 1, per: 1h}
`
	}
	h, _ := serveConfig(t, src(first))
	if resp, _ := h.do("GET", "/x", ""); resp.StatusCode != 200 {
		t.Fatalf("first call = %d", resp.StatusCode)
	}
	probe := first.Client()
	idle := connectedClients(t, probe) // the sidecar's connection and the probe's
	if err := h.srv.Reload(parse(t, src(first))); err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.do("GET", "/x", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after a reload that keeps storage.ratelimit: %d, want 429 (the same shared limit)", resp.StatusCode)
	}
	if err := h.srv.Reload(parse(t, src(second))); err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.do("GET", "/x", ""); resp.StatusCode != 200 {
		t.Errorf("after moving storage.ratelimit to a fresh Redis: %d, want 200", resp.StatusCode)
	}
	if second.Client().Exists(context.Background(), sluiceredis.LimiterKey("api/route", "")).Val() != 1 {
		t.Error("the limit is not on the new Redis")
	}
	waitFor(t, "the old Redis client to be closed", func() bool { return connectedClients(t, probe) < idle })
}

// quietRedis drops go-redis's own log lines (failed dials while a test has
// killed Redis); the tests check what the Server does instead.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
