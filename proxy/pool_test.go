package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/proxy"
)

// replica is a loopback upstream replica that can be stopped and started
// again on the same port, counting requests and health checks.
type replica struct {
	t      *testing.T
	addr   string
	name   string
	delay  time.Duration
	fail   atomic.Bool
	hits   atomic.Int64
	mu     sync.Mutex
	srv    *http.Server
	probes []time.Time
}

func newReplica(t *testing.T, name string, delay time.Duration) *replica {
	t.Helper()
	ln := listen(t)
	r := &replica{t: t, addr: ln.Addr().String(), name: name, delay: delay}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *replica) url() string { return "http://" + r.addr }

func (r *replica) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *replica) handle(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/healthz" {
		r.mu.Lock()
		r.probes = append(r.probes, time.Now())
		r.mu.Unlock()
		return
	}
	r.hits.Add(1)
	_, _ = io.Copy(io.Discard, req.Body)
	if r.delay > 0 {
		select { // the replica's service time
		case <-time.After(r.delay):
		case <-req.Context().Done():
		}
	}
	if r.fail.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, r.name)
}

// stop closes the replica's listener and connections: connections to it
// are refused until start.
func (r *replica) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start serves again on the same port.
func (r *replica) start() {
	r.t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("restarting %s on %s: %v", r.name, r.addr, err)
	}
	r.serve(ln)
}

func (r *replica) probeTimes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.probes...)
}

// sample is one client request through the proxy: when it ended, whether
// it succeeded, and which replica answered.
type sample struct {
	at   time.Time
	ok   bool
	from string
}

// load sends GETs through h from n clients until ctx ends or each sent
// max, and returns every sample.
func load(ctx context.Context, h *harness, n, max int) []sample {
	var mu sync.Mutex
	var all []sample
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var mine []sample
			for i := 0; i < max && ctx.Err() == nil; i++ {
				resp, err := h.client.Get(h.url + "/")
				s := sample{at: time.Now()}
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					s.ok, s.from = resp.StatusCode == 200, string(b)
				}
				mine = append(mine, s)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

func poolConfig(extra string, reps ...*replica) string {
	var ups []string
	for _, r := range reps {
		ups = append(ups, r.url())
	}
	return `
policies:
  p:
    retry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms, budget: off}
    timeout: 2s
routes:
  - name: r
    upstreams: [` + strings.Join(ups, ", ") + `]
    policy: p
` + extra
}

// TestPoolSpreadsByLatency checks that P2C sends a replica that answers in
// 20 ms clearly less traffic than two that answer at once.
func TestPoolSpreadsByLatency(t *testing.T) {
	fast1, fast2 := newReplica(t, "a", 0), newReplica(t, "b", 0)
	slow := newReplica(t, "slow", 20*time.Millisecond)
	h := start(t, poolConfig("    balance: p2c\n", fast1, fast2, slow), proxy.Options{})
	samples := load(t.Context(), h, 4, 150)
	for _, s := range samples {
		if !s.ok {
			t.Fatalf("a request failed: %+v", s)
		}
	}
	f, sl := fast1.hits.Load()+fast2.hits.Load(), slow.hits.Load()
	t.Logf("fast replicas %d requests, slow replica %d", f, sl)
	if sl*4 > f { // an even spread would give it half of f
		t.Errorf("the slow replica got %d requests against %d for the fast ones; want under a quarter", sl, f)
	}
}

// TestPoolEjectsFailingReplica checks that a replica failing every request
// is ejected: it gets under 5 % of requests, while one retry on another
// replica keeps the clients' success at 99.9 % or more. Its breaker, in
// the registry, shows the ejection.
func TestPoolEjectsFailingReplica(t *testing.T) {
	a, b, bad := newReplica(t, "a", 0), newReplica(t, "b", 0), newReplica(t, "bad", 0)
	bad.fail.Store(true)
	h := start(t, poolConfig("    balance: round_robin\n", a, b, bad), proxy.Options{})
	samples := load(t.Context(), h, 4, 250)
	okN := 0
	for _, s := range samples {
		if s.ok {
			okN++
		}
	}
	total := a.hits.Load() + b.hits.Load() + bad.hits.Load()
	t.Logf("%d client requests, %d succeeded; replica hits a=%d b=%d bad=%d", len(samples), okN, a.hits.Load(), b.hits.Load(), bad.hits.Load())
	if got := float64(okN) / float64(len(samples)); got < 0.999 {
		t.Errorf("client success %.4f, want at least 0.999", got)
	}
	if bad.hits.Load()*20 >= total {
		t.Errorf("the failing replica got %d of %d upstream requests, want under 5 %%", bad.hits.Load(), total)
	}
	br, ok := h.srv.Registry().LookupBreaker("r/" + bad.url())
	if !ok {
		t.Fatalf("no breaker r/%s in the registry", bad.url())
	}
	if st := br.Stats().State.String(); st != "open" {
		t.Errorf("the failing replica's breaker is %s, want open (ejected)", st)
	}
	if _, ok := h.srv.Registry().LookupBreaker("r/" + strings.TrimPrefix(a.url(), "http://")); ok {
		t.Error("a per-upstream breaker exists beside the replica's")
	}
}

// TestPoolRecovery takes a replica down for two seconds and brings it back
// on the same port: with checks every 200 ms it is back to its full share
// of traffic (round_robin: a third) within 1 s, the clients see 99.9 %
// success throughout (one retry), and no replica gets more than one check
// per interval.
func TestPoolRecovery(t *testing.T) {
	reps := []*replica{newReplica(t, "a", 0), newReplica(t, "b", 0), newReplica(t, "c", 0)}
	h := start(t, poolConfig(`    balance: round_robin
    outlier: {consecutive_failures: 3, base_ejection_time: 30s}
    health_check: {path: /healthz, interval: 200ms, timeout: 100ms}
`, reps...), proxy.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	var samples []sample
	done := make(chan struct{})
	go func() { samples = load(ctx, h, 4, 1_000_000); close(done) }()
	waitFor(t, "traffic on every replica", func() bool { return reps[0].hits.Load() > 50 && reps[2].hits.Load() > 50 })

	reps[0].stop()
	down := time.Now()
	br, _ := h.srv.Registry().LookupBreaker("r/" + reps[0].url())
	waitFor(t, "the stopped replica ejected", func() bool { return br.Stats().State.String() == "open" })
	<-time.After(time.Until(down.Add(2 * time.Second))) // the outage's length
	reps[0].start()
	back := time.Now()
	waitFor(t, "the replica back in rotation", func() bool { return br.Stats().State.String() == "closed" })
	<-time.After(time.Until(back.Add(1500 * time.Millisecond)))
	cancel()
	<-done

	recovered, okN := time.Duration(-1), 0
	const window = 100 * time.Millisecond
	for _, s := range samples {
		if s.ok {
			okN++
		}
	}
	for w := back; w.Before(back.Add(1400 * time.Millisecond)); w = w.Add(window / 2) {
		n, mine := 0, 0
		for _, s := range samples {
			if !s.at.Before(w) && s.at.Before(w.Add(window)) {
				n++
				if s.from == "a" {
					mine++
				}
			}
		}
		if n > 0 && float64(mine) >= 0.95*float64(n)/3 {
			recovered = w.Add(window).Sub(back)
			break
		}
	}
	t.Logf("%d requests, %.4f succeeded; goodput of the returned replica back to 95 %% of its share %v after it returned",
		len(samples), float64(okN)/float64(len(samples)), recovered)
	if recovered < 0 || recovered > time.Second {
		t.Errorf("the returned replica was not back to 95 %% of its share within 1 s (%v)", recovered)
	}
	if got := float64(okN) / float64(len(samples)); got < 0.999 {
		t.Errorf("client success %.4f, want at least 0.999", got)
	}
	for _, r := range reps {
		checkProbes(t, r, 200*time.Millisecond)
	}
}

// checkProbes checks that r's health checks came at most once per
// interval (with a little slack for scheduling).
func checkProbes(t *testing.T, r *replica, interval time.Duration) {
	t.Helper()
	ps := r.probeTimes()
	if len(ps) < 3 {
		t.Errorf("replica %s got %d health checks, want several", r.name, len(ps))
		return
	}
	for i := 1; i < len(ps); i++ {
		if gap := ps[i].Sub(ps[i-1]); gap < interval*3/4 {
			t.Errorf("replica %s: checks %d and %d came %v apart, want about %v", r.name, i-1, i, gap, interval)
		}
	}
	if span := ps[len(ps)-1].Sub(ps[0]); len(ps) > int(span/interval)+2 {
		t.Errorf("replica %s: %d checks in %v, more than one per %v", r.name, len(ps), span, interval)
	}
	t.Logf("replica %s: %d checks in %v", r.name, len(ps), fmt.Sprint(ps[len(ps)-1].Sub(ps[0]).Round(time.Millisecond)))
}

// TestPoolReload checks that a reload with the pool's settings unchanged
// keeps the pool, so that an ejected replica stays ejected, and that a
// changed setting makes a new pool with every replica in rotation.
func TestPoolReload(t *testing.T) {
	a, bad := newReplica(t, "a", 0), newReplica(t, "bad", 0)
	bad.fail.Store(true)
	src := poolConfig("    balance: round_robin\n    health_check: {path: /healthz, interval: 1s, timeout: 500ms}\n", a, bad)
	h := start(t, src, proxy.Options{})
	name := "r/" + bad.url()
	br, _ := h.srv.Registry().LookupBreaker(name)
	for i := 0; i < 40 && br.Stats().State.String() != "open"; i++ {
		h.do("GET", "/", "")
	}
	if st := br.Stats().State.String(); st != "open" {
		t.Fatalf("the failing replica's breaker is %s after 40 requests, want open", st)
	}
	full, _ := withStorage(t, src)
	if err := h.srv.Reload(parse(t, full)); err != nil {
		t.Fatal(err)
	}
	same, _ := h.srv.Registry().LookupBreaker(name)
	if same != br || same.Stats().State.String() != "open" {
		t.Errorf("after a reload with the same pool the replica's breaker is %p %s, want %p open", same, same.Stats().State, br)
	}
	full, _ = withStorage(t, strings.Replace(src, "round_robin", "p2c", 1))
	if err := h.srv.Reload(parse(t, full)); err != nil {
		t.Fatal(err)
	}
	fresh, ok := h.srv.Registry().LookupBreaker(name)
	if !ok || fresh == br || fresh.Stats().State.String() != "closed" {
		t.Errorf("after a reload with another balance the replica's breaker is %v (same as before: %v), want a new closed one", ok, fresh == br)
	}
}

// TestPoolConfigDocumented parses the pool route of docs/config.md, so
// the page's example is one sluice accepts.
func TestPoolConfigDocumented(t *testing.T) {
	page, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(page), "### Replica pools")
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	cfg := parse(t, "policies: {network: {}}\n"+block)
	if cfg.Routes[0].Pool == nil || len(cfg.Routes[0].Upstreams) != 2 {
		t.Errorf("the documented pool route parsed as %+v", cfg.Routes[0])
	}
}
