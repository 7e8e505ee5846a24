package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/proxy"
	"github.com/sluice-go/sluice/sluicehttp"
)

// The demo's load generator's bounds.
const (
	demoMaxInFlight = 64               // the load generator never has more requests open
	demoAgents      = 20               // distinct agents named in the paths
	demoReqTimeout  = 30 * time.Second // a safety net; the proxy answers far sooner
)

// routeLoad counts what the clients of one route saw.
type routeLoad struct {
	name string

	requests   atomic.Int64
	succeeded  atomic.Int64 // 2xx other than a queued 202, and 3xx
	queued     atomic.Int64 // 202 with Sluice-Queued: on the dead-letter queue
	fastFailed atomic.Int64 // answered by sluice itself, Sluice-Reject set
	failed     atomic.Int64 // the upstream's own failure answer, or 502/504
	errors     atomic.Int64 // no answer at all (connection failures)

	mu        sync.Mutex
	latencies []time.Duration
}

func (rl *routeLoad) record(resp *http.Response, err error, took time.Duration) {
	rl.requests.Add(1)
	switch {
	case err != nil:
		rl.errors.Add(1)
	case resp.StatusCode == http.StatusAccepted && resp.Header.Get(proxy.HeaderQueued) != "":
		rl.queued.Add(1)
	case resp.StatusCode < 400:
		rl.succeeded.Add(1)
	case resp.Header.Get(sluicehttp.HeaderReject) != "":
		rl.fastFailed.Add(1)
	default:
		rl.failed.Add(1)
	}
	rl.mu.Lock()
	rl.latencies = append(rl.latencies, took)
	rl.mu.Unlock()
}

// percentiles returns the latency percentiles ps (0 to 1) of the requests
// so far.
func (rl *routeLoad) percentiles(ps ...float64) []time.Duration {
	rl.mu.Lock()
	ls := slices.Clone(rl.latencies)
	rl.mu.Unlock()
	out := make([]time.Duration, len(ps))
	if len(ls) == 0 {
		return out
	}
	slices.Sort(ls)
	for i, p := range ps {
		out[i] = ls[min(len(ls)-1, int(p*float64(len(ls))))]
	}
	return out
}

// loadGen offers requests to the proxy at a steady rate, alternating a
// command to an agent (POST with an Idempotency-Key, on the route that
// queues) and a status read (GET, on the route that fails fast). It is
// open-loop up to demoMaxInFlight requests in flight, then waits.
type loadGen struct {
	base   string // the proxy's URL
	rate   float64
	client *http.Client
	agents *routeLoad
	api    *routeLoad
}

func newLoadGen(base string, rate float64) *loadGen {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = demoMaxInFlight
	return &loadGen{
		base:   base,
		rate:   rate,
		client: &http.Client{Transport: t, Timeout: demoReqTimeout},
		agents: &routeLoad{name: "agents"},
		api:    &routeLoad{name: "api"},
	}
}

// run offers load until ctx is done, then waits for the requests in
// flight: they are never cut short, so every 202 the proxy sends is
// counted (a request queued but not counted would break the tally).
func (g *loadGen) run(ctx context.Context) {
	defer g.client.CloseIdleConnections()
	tick := time.NewTicker(time.Duration(float64(time.Second) / g.rate))
	defer tick.Stop()
	sem := make(chan struct{}, demoMaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.send(n)
		}()
	}
}

// send makes request n.
func (g *loadGen) send(n int) {
	agent := fmt.Sprintf("agent-%02d", n/2%demoAgents)
	var req *http.Request
	rl := g.api
	if n%2 == 0 {
		rl = g.agents
		body := fmt.Sprintf("{\"command\": \"sync\", \"seq\": %d}\n", n)
		req, _ = http.NewRequest(http.MethodPost, g.base+"/agents/"+agent+"/commands", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(sluicehttp.HeaderIdempotencyKey, fmt.Sprintf("demo-%d", n))
	} else {
		req, _ = http.NewRequest(http.MethodGet, g.base+"/api/agents/"+agent+"/status", nil)
	}
	start := time.Now()
	resp, err := g.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rl.record(resp, err, time.Since(start))
}
