package dlqhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replayers is a fixed set of replayers, as a server with one per queue has.
type replayers struct {
	mu sync.Mutex
	m  map[string]*dlq.Replayer
}

func (r *replayers) Replayer(queue string) *dlq.Replayer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[queue]
}

func (r *replayers) Queues() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name := range r.m {
		out = append(out, name)
	}
	return out
}

// fixture is a real bbolt store served by the API, with a replayer for
// queue "jobs" whose handler and gate the test sets.
type fixture struct {
	t       *testing.T
	store   *dlq.Bolt
	srv     *httptest.Server
	healthy atomic.Bool
	mu      sync.Mutex
	handle  dlq.Handler
}

func newFixture(t *testing.T, withReplayers bool) *fixture {
	t.Helper()
	st, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "dlq.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, store: st}
	f.healthy.Store(true)
	f.handle = func(context.Context, dlq.Message) error { return nil }
	var rp dlqhttp.Replayers
	if withReplayers {
		r, err := dlq.NewReplayer(st, "jobs", func(ctx context.Context, m dlq.Message) error {
			f.mu.Lock()
			h := f.handle
			f.mu.Unlock()
			return h(ctx, m)
		}, dlq.ReplayerConfig{Gate: f.healthy.Load})
		if err != nil {
			t.Fatal(err)
		}
		rp = &replayers{m: map[string]*dlq.Replayer{"jobs": r}}
	}
	f.srv = httptest.NewServer(dlqhttp.Handler(st, rp))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) setHandler(h dlq.Handler) {
	f.mu.Lock()
	f.handle = h
	f.mu.Unlock()
}

// put queues a request the way a proxy stores it.
func (f *fixture) put(queue, body string, headers map[string]string) string {
	f.t.Helper()
	id, err := f.store.Put(context.Background(), dlq.Message{Queue: queue, Payload: []byte(body), Headers: headers, Attempts: 3})
	if err != nil {
		f.t.Fatal(err)
	}
	return id.String()
}

// call sends one request and decodes a JSON answer into v (if not nil).
func (f *fixture) call(method, path string, v any) int {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusMethodNotAllowed { // the mux's own 405 is text
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
			f.t.Errorf("%s %s: Content-Type %q, Cache-Control %q", method, path, ct, resp.Header.Get("Cache-Control"))
		}
	}
	if v != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(body, v); err != nil {
			f.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

func TestListPagesAndViews(t *testing.T) {
	f := newFixture(t, false)
	var ids []string
	for _, b := range []string{"a", "b", "c"} {
		ids = append(ids, f.put("jobs", b, map[string]string{
			dlqhttp.KeyMethod: "POST", dlqhttp.KeyURI: "/jobs?x=1", dlqhttp.KeyHost: "api.test",
			dlqhttp.KeyHeaderPrefix + "Authorization": "Bearer secret",
			dlqhttp.KeyHeaderPrefix + "Accept":        "text/plain\napplication/json",
		}))
	}
	f.put("other", "d", nil)
	var page dlqhttp.ListResponse
	if code := f.call("GET", "/dlq?queue=jobs&limit=2", &page); code != 200 || len(page.Messages) != 2 || page.Next != ids[1] {
		t.Fatalf("first page: %d %+v", code, page)
	}
	m := page.Messages[0]
	if m.ID != ids[0] || m.Queue != "jobs" || m.State != "ready" || m.Method != "POST" || m.URI != "/jobs?x=1" ||
		m.Host != "api.test" || m.BodyBytes != 1 || m.Attempts != 3 || m.Body != nil {
		t.Errorf("view %+v", m)
	}
	if got := m.Headers["Authorization"]; len(got) != 1 || got[0] != dlqhttp.RedactedValue {
		t.Errorf("Authorization shown as %q", got)
	}
	if got := m.Headers["Accept"]; len(got) != 2 || got[1] != "application/json" {
		t.Errorf("Accept shown as %q", got)
	}
	if code := f.call("GET", "/dlq?queue=jobs&after="+page.Next, &page); code != 200 || len(page.Messages) != 1 || page.Next != "" {
		t.Fatalf("last page: %d %+v", code, page)
	}
	if f.call("GET", "/dlq", &page); len(page.Messages) != 4 || page.Messages[3].Headers != nil {
		t.Errorf("all queues: %+v", page.Messages)
	}
	if f.call("GET", "/dlq?state=parked", &page); len(page.Messages) != 0 || page.Messages == nil {
		t.Errorf("no parked messages: %#v", page.Messages)
	}
	var e dlqhttp.ErrorResponse
	for _, p := range []string{"/dlq?state=bogus", "/dlq?after=nope", "/dlq?limit=0", "/dlq?limit=1001", "/dlq/not-an-id"} {
		if code := f.call("GET", p, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("GET %s = %d %q, want 400 with a reason", p, code, e.Error)
		}
	}
}

func TestShowAndDelete(t *testing.T) {
	f := newFixture(t, false)
	text := f.put("jobs", "héllo", nil)
	binary := f.put("jobs", "\xff\x00", nil)
	var v dlqhttp.MessageView
	if f.call("GET", "/dlq/"+text+"?body=1", &v); v.Body == nil || *v.Body != "héllo" || v.BodyBase64 != nil {
		t.Errorf("text body: %+v", v)
	}
	v = dlqhttp.MessageView{}
	if f.call("GET", "/dlq/"+binary+"?body=1", &v); v.BodyBase64 == nil || *v.BodyBase64 != "/wA=" || v.Body != nil {
		t.Errorf("binary body: %+v", v)
	}
	if code := f.call("DELETE", "/dlq/"+text, nil); code != http.StatusNoContent {
		t.Errorf("DELETE = %d", code)
	}
	var e dlqhttp.ErrorResponse
	if code := f.call("GET", "/dlq/"+text, &e); code != http.StatusNotFound || e.Error != "no such message" {
		t.Errorf("GET deleted = %d %q", code, e.Error)
	}
	if code := f.call("DELETE", "/dlq/"+text, &e); code != http.StatusNotFound {
		t.Errorf("DELETE deleted = %d", code)
	}
	if code := f.call("PUT", "/dlq/"+binary, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("PUT = %d, want 405", code)
	}
}

func TestReplayOne(t *testing.T) {
	f := newFixture(t, true)
	id := f.put("jobs", "a", nil)
	var e dlqhttp.ErrorResponse
	f.healthy.Store(false)
	if code := f.call("POST", "/dlq/"+id+"/replay", &e); code != http.StatusServiceUnavailable {
		t.Errorf("replay while unhealthy = %d %q, want 503", code, e.Error)
	}
	f.healthy.Store(true)
	f.setHandler(func(context.Context, dlq.Message) error { return errors.New("upstream said no") })
	var out dlqhttp.ReplayOneResponse
	if code := f.call("POST", "/dlq/"+id+"/replay", &out); code != http.StatusBadGateway || out.Outcome != "failed" || out.Error != "upstream said no" || out.ID != id {
		t.Errorf("failed replay = %d %+v", code, out)
	}

	// A replay of a message being replayed already is refused.
	entered, release := make(chan struct{}), make(chan struct{})
	f.setHandler(func(context.Context, dlq.Message) error { close(entered); <-release; return nil })
	done := make(chan int)
	go func() {
		var out dlqhttp.ReplayOneResponse
		done <- f.call("POST", "/dlq/"+id+"/replay", &out)
	}()
	<-entered
	if code := f.call("POST", "/dlq/"+id+"/replay", &e); code != http.StatusConflict || !strings.Contains(e.Error, "being replayed") {
		t.Errorf("concurrent replay = %d %q, want 409", code, e.Error)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("replay = %d, want 200", code)
	}
	if code := f.call("POST", "/dlq/"+id+"/replay", &e); code != http.StatusNotFound {
		t.Errorf("replay of a replayed message = %d, want 404", code)
	}
	other := f.put("other", "b", nil)
	if code := f.call("POST", "/dlq/"+other+"/replay", &e); code != http.StatusConflict || e.Error != `no route queues to "other"` {
		t.Errorf("replay of an unreplayed queue = %d %q, want 409", code, e.Error)
	}
}

func TestReplayQueues(t *testing.T) {
	f := newFixture(t, true)
	for _, b := range []string{"ok", "bad", "ok"} {
		f.put("jobs", b, nil)
	}
	f.put("other", "x", nil)
	f.setHandler(func(_ context.Context, m dlq.Message) error {
		if string(m.Payload) == "bad" {
			return errors.New("bad row")
		}
		return nil
	})
	var res dlqhttp.ReplayResponse
	if code := f.call("POST", "/dlq/replay", &res); code != 200 || len(res.Results) != 1 {
		t.Fatalf("replay all = %d %+v", code, res)
	}
	if r := res.Results[0]; r.Queue != "jobs" || r.Replayed != 2 || r.Failed != 1 || r.Error != "" {
		t.Errorf("replay all: %+v", r)
	}
	f.healthy.Store(false)
	if code := f.call("POST", "/dlq/replay?queue=jobs&state=ready&limit=1", &res); code != 200 || len(res.Results) != 1 || res.Results[0].Error == "" {
		t.Errorf("replay while unhealthy = %d %+v, want the reason it stopped", code, res)
	}
	var e dlqhttp.ErrorResponse
	for p, want := range map[string]int{
		"/dlq/replay?queue=other":  http.StatusConflict,
		"/dlq/replay?state=bogus":  http.StatusBadRequest,
		"/dlq/replay?limit=0":      http.StatusBadRequest,
		"/dlq/replay?limit=plenty": http.StatusBadRequest,
	} {
		if code := f.call("POST", p, &e); code != want {
			t.Errorf("POST %s = %d %q, want %d", p, code, e.Error, want)
		}
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t, true)
	var st dlqhttp.StatsResponse
	if f.call("GET", "/dlq/stats", &st); len(st.Queues) != 1 || st.Queues[0] != (dlqhttp.QueueView{Queue: "jobs", Replaying: true}) {
		t.Errorf("an empty replayed queue: %+v", st.Queues)
	}
	id := f.put("jobs", "a", nil)
	f.put("other", "b", nil)
	if code := f.call("POST", "/dlq/"+id+"/replay", nil); code != 200 {
		t.Fatalf("replay = %d", code)
	}
	f.put("jobs", "c", nil)
	f.call("GET", "/dlq/stats", &st)
	if len(st.Queues) != 2 {
		t.Fatalf("queues %+v", st.Queues)
	}
	if q := st.Queues[0]; q.Queue != "jobs" || !q.Replaying || q.Ready != 1 || q.Replayed != 1 || q.OldestReady.IsZero() {
		t.Errorf("jobs %+v", q)
	}
	if q := st.Queues[1]; q.Queue != "other" || q.Replaying || q.Ready != 1 {
		t.Errorf("other %+v", q)
	}

	// Without replayers, the store alone.
	bare := newFixture(t, false)
	bare.put("jobs", "a", nil)
	bare.call("GET", "/dlq/stats", &st)
	if len(st.Queues) != 1 || st.Queues[0].Replaying || st.Queues[0].Ready != 1 {
		t.Errorf("no replayers: %+v", st.Queues)
	}
	var e dlqhttp.ErrorResponse
	if code := bare.call("POST", "/dlq/replay", &e); code != 200 {
		t.Errorf("replay all without replayers = %d", code)
	}
}

// A failing store answers 503 with its error, on every route.
func TestStoreFailure(t *testing.T) {
	f := newFixture(t, true)
	id := f.put("jobs", "a", nil)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	var e dlqhttp.ErrorResponse
	for _, c := range []struct{ method, path string }{
		{"GET", "/dlq"}, {"GET", "/dlq/stats"}, {"GET", "/dlq/" + id}, {"DELETE", "/dlq/" + id}, {"POST", "/dlq/" + id + "/replay"},
	} {
		if code := f.call(c.method, c.path, &e); code != http.StatusServiceUnavailable || !strings.HasPrefix(e.Error, "dlq: ") {
			t.Errorf("%s %s on a closed store = %d %q, want 503", c.method, c.path, code, e.Error)
		}
	}
}
