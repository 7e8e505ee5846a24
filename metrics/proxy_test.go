package metrics_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/sluice-go/sluice/metrics"
)

func TestRuntimeCollectors(t *testing.T) {
	for _, tc := range []struct {
		runtime bool
		want    bool
	}{{false, false}, {true, true}} {
		c, err := metrics.New(metrics.Config{Runtime: tc.runtime})
		if err != nil {
			t.Fatal(err)
		}
		fams, _ := scrape(t, c.Handler())
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
			if runtime.GOOS != "linux" && name[:8] == "process_" {
				continue // the process collector reads /proc
			}
			if _, ok := fams[name]; ok != tc.want {
				t.Errorf("Runtime %v: family %s exported = %v, want %v", tc.runtime, name, ok, tc.want)
			}
		}
	}
}

func TestProxyRequests(t *testing.T) {
	p := metrics.NewProxy()
	c, err := metrics.New(metrics.Config{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	agents := p.Route("agents")
	agents.Observe(200, metrics.OutcomeProxied, 30*time.Millisecond)
	agents.Observe(204, metrics.OutcomeProxied, 20*time.Millisecond)
	agents.Observe(503, metrics.OutcomeCircuitOpen, time.Millisecond)
	agents.Observe(0, metrics.OutcomeCanceled, 2*time.Second)
	p.Route("agents").Observe(202, metrics.OutcomeQueued, time.Millisecond) // a route rebuilt by a reload
	up := agents.Upstream("127.0.0.1:9000")
	up.Attempt()
	up.Attempt()

	fams, body := scrape(t, c.Handler())
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_proxy_requests_total", []string{"route", "agents", "code", "2xx", "outcome", "proxied"}, 2},
		{"sluice_proxy_requests_total", []string{"route", "agents", "code", "5xx", "outcome", "circuit-open"}, 1},
		{"sluice_proxy_requests_total", []string{"route", "agents", "code", "none", "outcome", "canceled"}, 1},
		{"sluice_proxy_requests_total", []string{"route", "agents", "code", "2xx", "outcome", "queued"}, 1},
		{"sluice_proxy_request_duration_seconds", []string{"route", "agents"}, 5}, // sample count
		{"sluice_proxy_upstream_attempts_total", []string{"route", "agents", "upstream", "127.0.0.1:9000"}, 2},
	} {
		if got := value(t, fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v\n%s", tc.name, tc.labels, got, tc.want, body)
		}
	}
	if n := len(fams["sluice_proxy_requests_total"].GetMetric()); n != 4 {
		t.Errorf("%d request series, want only the 4 that happened", n)
	}
	for _, f := range metrics.ProxyFamilies() {
		if got := fams[f.Name]; got == nil {
			t.Errorf("family %s not exported", f.Name)
		}
	}
}

// Recording a request on a resolved route allocates nothing: it runs once
// per proxied request.
func TestProxyObserveAllocs(t *testing.T) {
	r := metrics.NewProxy().Route("r")
	up := r.Upstream("u")
	r.Observe(200, metrics.OutcomeProxied, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		r.Observe(200, metrics.OutcomeProxied, time.Millisecond)
		up.Attempt()
	}); n != 0 {
		t.Errorf("Observe + Attempt: %v allocations, want 0", n)
	}
}

func TestProxyLint(t *testing.T) {
	p := metrics.NewProxy()
	r := p.Route("r")
	r.Observe(200, metrics.OutcomeProxied, time.Millisecond)
	r.Upstream("u").Attempt()
	problems, err := promlint.NewWithMetricFamilies(gather(t, p)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
}
