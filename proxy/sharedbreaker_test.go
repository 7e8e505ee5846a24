package proxy_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/proxy"
	"github.com/sluice-go/sluice/sluiceredis"
)

// breakerBound is the delay within which a shared breaker's change reaches
// every instance in these tests: check_interval + 2 × timeout.
const breakerBound = 200*time.Millisecond + 2*time.Second

// sharedBreakerConfig is one route whose breaker opens on one failure and
// is shared through breakers (a storage.breakers value).
func sharedBreakerConfig(t *testing.T, id, up, breakers string) string {
	return `instance_id: ` + id + `
storage:
  dlq: "bolt://` + t.TempDir() + `/dlq.db"
  breakers: ` + breakers + `
policies:
  p: {circuit_breaker: {failure_threshold: 1, open_for: 1m}}
routes:
  - {name: api, upstreams: [` + up + `], policy: p}
`
}

func breakersOn(rds *redistest.Server) string {
	return `{url: "` + rds.URL() + `", timeout: 1s, check_interval: 200ms}`
}

// failExceptOK fails every call but GET /ok, so that a sidecar that
// watches for the fleet's breaker with /ok does not trip it itself.
func failExceptOK(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ok" {
		status(200, "ok")(w, r)
		return
	}
	status(500, "boom")(w, r)
}

// rejectsOpen reports whether h answers GET /ok with 503 circuit-open.
func rejectsOpen(h *harness) bool {
	resp, _ := h.do("GET", "/ok", "")
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Sluice-Reject") == "circuit-open"
}

// sharedReport returns the health report's entry name, failing if absent.
func sharedReport(t *testing.T, h *harness, name string) health.SharedReport {
	t.Helper()
	rep := h.srv.Monitor().Evaluate(context.Background())
	for _, s := range rep.Shared {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("health report has no shared component %q: %+v", name, rep.Shared)
	return health.SharedReport{}
}

// An upstream failing through sidecar a opens sidecar b's breaker too,
// within the documented delay, without b sending it anything; b's health
// report shows the fleet's record (opened by a) beside its own state.
func TestSharedBreakerOpensFleet(t *testing.T) {
	rds := redistest.Start(t)
	up := newUpstream(t, failExceptOK)
	a, _ := serveConfig(t, sharedBreakerConfig(t, "sidecar-a", up.URL, breakersOn(rds)))
	b, _ := serveConfig(t, sharedBreakerConfig(t, "sidecar-b", up.URL, breakersOn(rds)))
	if resp, _ := a.do("GET", "/x", ""); resp.StatusCode != 500 {
		t.Fatalf("first call through a = %d, want the upstream's 500", resp.StatusCode)
	}
	tripped := time.Now()
	for !rejectsOpen(b) {
		if time.Since(tripped) > breakerBound {
			t.Fatalf("b does not reject within %v of a's trip", breakerBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	name := "breaker:api/" + strings.TrimPrefix(up.URL, "http://")
	r := sharedReport(t, b, name)
	if r.Degraded || r.Local != "open" || !strings.HasPrefix(r.Fleet, "open for ") || !strings.Contains(r.Fleet, "opened by sidecar-a") {
		t.Errorf("b's report of %s = %+v, want shared, fleet open by sidecar-a, local open", name, r)
	}
	if rep := b.srv.Monitor().Evaluate(context.Background()); rep.Instance != "sidecar-b" || !strings.Contains(rep.String(), "Instance: sidecar-b") {
		t.Errorf("report instance = %q", rep.Instance)
	}
	if n := rds.Client().Exists(context.Background(), sluiceredis.BreakerKey("api/"+strings.TrimPrefix(up.URL, "http://"))).Val(); n != 1 {
		t.Errorf("the breaker's record is not on Redis under its key")
	}
	series := `sluice_shared_degraded{component="` + name + `"} `
	if _, m := b.doURL(b.admin, "GET", "/metrics", ""); !strings.Contains(m, series+"0") {
		t.Errorf("b's metrics lack %s0", series)
	}
	rds.Kill()
	waitFor(t, "b's breaker degraded", func() bool { return sharedReport(t, b, name).Degraded })
	if _, m := b.doURL(b.admin, "GET", "/metrics", ""); !strings.Contains(m, series+"1") {
		t.Errorf("b's metrics with Redis down lack %s1", series)
	}
	if r := sharedReport(t, b, name); !strings.HasPrefix(r.Fleet, "last read: open for ") || r.Local != "open" || r.LastError == "" {
		t.Errorf("b's report with Redis down = %+v, want the last record read, local open and the error", r)
	}
}

// A reload that keeps storage.breakers keeps the link (the breaker stays
// open for the fleet, no Update error); one that drops it makes the breaker
// local; one that moves it to another Redis links it there and closes the
// old client once the breakers that used it are gone.
func TestSharedBreakerReload(t *testing.T) {
	first, second := redistest.Start(t), redistest.Start(t)
	up := newUpstream(t, status(500, "boom"))
	dir := t.TempDir()
	src := func(breakers string) string {
		return strings.Replace(sharedBreakerConfig(t, "sidecar-a", up.URL, breakers), t.TempDir(), dir, 1)
	}
	h, _ := serveConfig(t, src(breakersOn(first)))
	h.do("GET", "/x", "")
	if !rejectsOpen(h) {
		t.Fatal("the breaker did not open")
	}
	name := "breaker:api/" + strings.TrimPrefix(up.URL, "http://")
	if err := h.srv.Reload(parse(t, src(breakersOn(first)))); err != nil {
		t.Fatalf("reload keeping storage.breakers: %v", err)
	}
	if !rejectsOpen(h) || sharedReport(t, h, name).Local != "open" {
		t.Error("a reload keeping storage.breakers did not keep the open breaker")
	}
	probe := first.Client()
	idle := connectedClients(t, probe)
	if err := h.srv.Reload(parse(t, src(breakersOn(second)))); err != nil {
		t.Fatalf("reload moving storage.breakers: %v", err)
	}
	waitFor(t, "the old Redis client to be closed", func() bool { return connectedClients(t, probe) < idle })
	if r := sharedReport(t, h, name); r.Local != "closed" || !strings.HasPrefix(r.Fleet, "none") {
		t.Errorf("after moving to a fresh Redis: %+v, want a new closed breaker and no record", r)
	}
	h.do("GET", "/x", "")
	waitFor(t, "the record on the new Redis", func() bool {
		return second.Client().Exists(context.Background(), sluiceredis.BreakerKey(strings.TrimPrefix(name, "breaker:"))).Val() == 1
	})
	local := strings.Replace(src(breakersOn(second)), "  breakers: "+breakersOn(second)+"\n", "", 1)
	if err := h.srv.Reload(parse(t, local)); err != nil {
		t.Fatalf("reload dropping storage.breakers: %v", err)
	}
	for _, s := range h.srv.Monitor().Evaluate(context.Background()).Shared {
		if strings.HasPrefix(s.Name, "breaker:") {
			t.Errorf("a local breaker is listed as shared: %+v", s)
		}
	}
}

// In quorum mode one sidecar's failures open only its own breaker: once
// its vote is on Redis, the others keep calling for the whole documented
// delay; once a second one trips (quorum 2), the third opens too.
func TestSharedBreakerQuorum(t *testing.T) {
	rds := redistest.Start(t)
	up := newUpstream(t, failExceptOK)
	quorum := `{url: "` + rds.URL() + `", timeout: 1s, check_interval: 200ms, mode: quorum, quorum: 2}`
	var hs []*harness
	for _, id := range []string{"a", "b", "c"} {
		h, _ := serveConfig(t, sharedBreakerConfig(t, id, up.URL, quorum))
		hs = append(hs, h)
	}
	if resp, _ := hs[0].do("GET", "/x", ""); resp.StatusCode != 500 {
		t.Fatalf("a's call = %d, want the upstream's 500", resp.StatusCode)
	}
	if !rejectsOpen(hs[0]) {
		t.Fatal("a's own breaker did not open")
	}
	votes := sluiceredis.BreakerKey("api/"+strings.TrimPrefix(up.URL, "http://")) + ":v"
	waitFor(t, "a's vote on Redis", func() bool { return rds.Client().Exists(context.Background(), votes).Val() == 1 })
	for end := time.Now().Add(breakerBound); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if resp, _ := hs[2].do("GET", "/ok", ""); resp.StatusCode != 200 {
			t.Fatalf("c answers %d after one trip of a quorum of 2, want 200", resp.StatusCode)
		}
	}
	hs[1].do("GET", "/x", "")
	tripped := time.Now()
	for !rejectsOpen(hs[2]) {
		if time.Since(tripped) > breakerBound {
			t.Fatalf("c does not reject within %v of the second trip", breakerBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With Redis down, a Redis DLQ with a fallback file answers 202, says it is
// degraded, and moves the messages to Redis once it is back.
func TestRedisDLQFailover(t *testing.T) {
	rds := redistest.Start(t)
	fallback := t.TempDir() + "/fallback.db"
	h, _ := serveConfig(t, `storage: {dlq: {url: "`+rds.URL()+`", fallback: "bolt://`+fallback+`", timeout: 300ms}}
routes:
  - {name: orders, upstreams: [`+deadAddr(t)+`], on_exhausted: queue}
`)
	if _, ok := h.srv.Store().(*dlq.Failover); !ok {
		t.Fatalf("store is %T, want a dlq.Failover", h.srv.Store())
	}
	rds.Kill()
	var ids []string
	for i := range 3 {
		resp, _ := h.do("POST", "/orders", "item="+string(rune('a'+i)))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %d with Redis down = %d, want 202", i, resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("Sluice-Queued"))
	}
	if r := sharedReport(t, h, "dlq"); !r.Degraded || r.LastError == "" {
		t.Errorf("dlq while Redis is down: %+v, want degraded with its error", r)
	}
	rds.Restart()
	other, err := sluiceredis.NewStore(sluiceredis.StoreOptions{Client: rds.Client()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the three messages on Redis", func() bool {
		ms, err := other.List(context.Background(), dlq.Query{Queue: "orders"})
		return err == nil && len(ms) == 3
	})
	ms, _ := other.List(context.Background(), dlq.Query{Queue: "orders"})
	for _, m := range ms {
		if !strings.Contains(strings.Join(ids, " "), m.ID.String()) {
			t.Errorf("message %s on Redis is not one of the answers' %v", m.ID, ids)
		}
	}
	waitFor(t, "the dlq to be shared again", func() bool { return !sharedReport(t, h, "dlq").Degraded })
}

// instance_id applies on a restart: a reload that changes it keeps the
// running id in the report and says so in the status.
func TestInstanceIDChangeWarns(t *testing.T) {
	up := newUpstream(t, status(200, "ok"))
	dir := t.TempDir()
	src := func(id string) string {
		return "instance_id: " + id + "\nstorage: {dlq: \"bolt://" + dir + "/dlq.db\"}\nroutes:\n  - {name: api, upstreams: [" + up.URL + "]}\n"
	}
	h, logs := serveConfig(t, src("first"))
	if !strings.Contains(logs.String(), "instance=first") {
		t.Errorf("the start-up log does not name the instance:\n%s", logs)
	}
	if err := h.srv.Reload(parse(t, src("second"))); err != nil {
		t.Fatal(err)
	}
	if ws := h.srv.Status().Warnings; len(ws) != 1 || ws[0] != "instance_id changed: applies on restart" {
		t.Errorf("warnings = %q", ws)
	}
	if got := h.srv.Monitor().Evaluate(context.Background()).Instance; got != "first" {
		t.Errorf("report instance after the reload = %q, want the running first", got)
	}
}

// Without instance_id the instance is named host:pid.
func TestInstanceIDDefault(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	h := start(t, "routes:\n  - {name: api, upstreams: [http://127.0.0.1:1]}\n", proxy.Options{})
	if got, want := h.srv.Monitor().Evaluate(context.Background()).Instance, host+":"+strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("instance = %q, want %q", got, want)
	}
}
