package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/registry"
)

// DefaultScrapeTimeout bounds what a scrape waits for the dead-letter
// stores and the health evaluation when Config.ScrapeTimeout is zero.
const DefaultScrapeTimeout = 5 * time.Second

// Config configures a Collector. The zero Config is valid and exports only
// sluice_dlq_stats_errors_total. Every field documents its zero value.
type Config struct {
	// Registry is read at every scrape for the policies' metrics. If nil,
	// no policy metrics.
	Registry *registry.Registry

	// Health, if set, is evaluated at every scrape for sluice_health_* and
	// sluice_probe_* (and the dead-letter queues, when DLQ is empty). If
	// nil, no health metrics.
	Health *health.Monitor

	// DLQ lists the dead-letter stores whose queues are exported as
	// sluice_dlq_*. If empty, the Health monitor's queues, if any.
	DLQ []health.DLQSource

	// ScrapeTimeout bounds each scrape's calls to the DLQ stores and the
	// health evaluation. If zero, 5 s.
	ScrapeTimeout time.Duration

	// Clock is read for the age of dead-letter messages. If nil, the
	// Registry's clock, or the system clock.
	Clock sluice.Clock

	// Replays, if set, is called at every scrape for the counters of the
	// dead-letter replayers (what the admin API's /dlq/stats shows),
	// exported as sluice_dlq_replay*. Every queue it names is exported
	// with sluice_dlq_depth 0 while its store holds nothing for it. If nil,
	// no replay metrics.
	Replays func() []ReplayStats

	// Shared names the components whose state is shared between instances
	// (a Redis limiter, a failover dead-letter store, a synchronised
	// breaker), exported as sluice_shared_degraded{component}. If empty,
	// none.
	Shared map[string]sluice.SharedComponent

	// SharedFunc, if set, is called at each scrape for more shared
	// components, exported beside Shared's (Shared wins a name both hold):
	// for a set that changes at run time, such as a sidecar's shared
	// breakers across reloads. If nil, none.
	SharedFunc func() map[string]sluice.SharedComponent

	// Proxy, if set, is the sidecar's request metrics, which Handler
	// exports next to the Collector's. If nil, none.
	Proxy *Proxy

	// Runtime adds the Go runtime (go_*) and process (process_*)
	// collectors of client_golang to Handler's registry. If false, only
	// sluice's own families.
	Runtime bool

	// Logger receives the errors met while scraping (a store that failed, a
	// name that is not a valid label value). If nil, nothing is logged.
	Logger *slog.Logger
}

// ReplayStats are the counters of one dead-letter queue's replayer, for
// Config.Replays.
type ReplayStats struct {
	// Queue is the queue the replayer drives.
	Queue string
	// Stats are the replayer's counters since it started.
	Stats dlq.ReplayerStats
}

// Collector is a prometheus.Collector that reads sluice's statistics at
// scrape time. It is safe for concurrent use and may be registered in any
// number of prometheus.Registry values.
type Collector struct {
	reg     *registry.Registry
	mon     *health.Monitor
	dlqs    []health.DLQSource
	replays func() []ReplayStats
	shared  map[string]sluice.SharedComponent
	sharedF func() map[string]sluice.SharedComponent
	proxy   *Proxy
	runtime bool
	timeout time.Duration
	clock   sluice.Clock
	log     *slog.Logger

	descs     [numFamilies]*prometheus.Desc
	dlqErrors atomic.Int64

	mu     sync.Mutex      // guards queues
	queues map[string]bool // every dead-letter queue exported so far
}

var _ prometheus.Collector = (*Collector)(nil)

// New validates cfg and returns a Collector.
func New(cfg Config) (*Collector, error) {
	if cfg.ScrapeTimeout < 0 {
		return nil, fmt.Errorf("metrics: Config.ScrapeTimeout must be >= 0, got %v", cfg.ScrapeTimeout)
	}
	for i, s := range cfg.DLQ {
		if s == nil {
			return nil, fmt.Errorf("metrics: Config.DLQ[%d] must not be nil", i)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Shared)) {
		if cfg.Shared[name] == nil {
			return nil, fmt.Errorf("metrics: Config.Shared[%q] must not be nil", name)
		}
	}
	c := &Collector{
		reg:     cfg.Registry,
		mon:     cfg.Health,
		dlqs:    append([]health.DLQSource(nil), cfg.DLQ...),
		replays: cfg.Replays,
		shared:  maps.Clone(cfg.Shared),
		sharedF: cfg.SharedFunc,
		proxy:   cfg.Proxy,
		runtime: cfg.Runtime,
		timeout: cfg.ScrapeTimeout,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		queues:  map[string]bool{},
	}
	if c.clock == nil && c.reg != nil {
		c.clock = c.reg.Clock()
	}
	c.clock = sluice.ClockOr(c.clock)
	if c.timeout == 0 {
		c.timeout = DefaultScrapeTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for i, f := range families {
		c.descs[i] = prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
	}
	return c, nil
}

// Handler returns an http.Handler serving reg's metrics in the Prometheus
// exposition format, from a prometheus.Registry of its own.
func Handler(reg *registry.Registry) http.Handler {
	c, _ := New(Config{Registry: reg}) // cannot fail: no DLQ, no timeout
	return c.Handler()
}

// Handler returns an http.Handler serving the Collector's metrics from a
// new prometheus.Registry of its own (never the global default registry),
// holding the Collector and, as Config asks, the Proxy's metrics and the
// Go runtime and process collectors.
func (c *Collector) Handler() http.Handler {
	preg := prometheus.NewRegistry()
	preg.MustRegister(c)
	if c.proxy != nil {
		preg.MustRegister(c.proxy)
	}
	if c.runtime {
		preg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return promhttp.HandlerFor(preg, promhttp.HandlerOpts{})
}

// Describe sends the descriptor of every family the Collector may export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the registry, the health monitor and the dead-letter stores
// and sends their current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{c: c, ch: ch}
	if c.reg != nil {
		c.collectRegistry(&e, c.reg.Snapshot())
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var rep *health.Report
	if c.mon != nil {
		r := c.mon.Evaluate(ctx)
		rep = &r
		c.collectHealth(&e, r)
	}
	c.collectDLQ(ctx, &e, rep)
	e.counter(dlqStatsErrors, float64(c.dlqErrors.Load()))
	shared := c.shared
	if c.sharedF != nil {
		shared = maps.Clone(c.sharedF())
		if shared == nil {
			shared = map[string]sluice.SharedComponent{}
		}
		maps.Copy(shared, c.shared)
	}
	for _, name := range slices.Sorted(maps.Keys(shared)) {
		if sc := shared[name]; sc != nil {
			e.gauge(sharedDegraded, boolf(sc.Degraded()), name)
		}
	}
}

func (c *Collector) collectRegistry(e *emitter, s registry.Snapshot) {
	seen := map[string]bool{}
	first := func(kind, name string) bool { // a name may be exported once per kind
		k := kind + "\x00" + name
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}

	for _, b := range s.Breakers {
		if !first("breaker", b.Name) {
			continue
		}
		st := b.Stats
		for state := breaker.StateClosed; state <= breaker.StateMetricsOnly; state++ {
			e.gauge(cbState, boolf(st.State == state), b.Name, state.String())
		}
		e.gauge(cbStateSeconds, st.InState.Seconds(), b.Name)
		e.counter(cbCalls, float64(st.Calls), b.Name)
		e.counter(cbSuccesses, float64(st.Successes), b.Name)
		e.counter(cbFailures, float64(st.Failures), b.Name)
		e.counter(cbSlow, float64(st.Slow), b.Name)
		e.counter(cbRejected, float64(st.Rejected), b.Name)
		e.gauge(cbFailureRatio, st.FailureRate, b.Name)
		e.gauge(cbWindowCalls, float64(st.WindowCalls), b.Name)
	}

	for _, r := range s.Retries {
		if !first("retry", r.Name) {
			continue
		}
		st := r.Stats
		e.counter(rtCalls, float64(st.Calls), r.Name)
		for i, n := range st.AttemptsByNumber {
			e.counter(rtAttempts, float64(n), r.Name, strconv.Itoa(i+1))
		}
		e.counter(rtSuccess, float64(st.Successes), r.Name)
		e.counter(rtFailures, float64(st.Failures), r.Name)
		e.counter(rtExhausted, float64(st.Exhausted), r.Name)
		e.counter(rtBudgetRefused, float64(st.BudgetRefused), r.Name)
		h := st.Duration
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			if i < len(h.Counts) {
				buckets[b] = h.Counts[i]
			}
		}
		e.send(prometheus.NewConstHistogram(c.descs[rtDuration], h.Count, h.Sum, buckets, r.Name))
	}

	for _, b := range s.Bulkheads {
		if !first("bulkhead", b.Name) {
			continue
		}
		st := b.Stats
		e.gauge(bhActive, float64(st.Active), b.Name)
		e.gauge(bhQueued, float64(st.Queued), b.Name)
		e.gauge(bhLimit, float64(st.Limit), b.Name)
		e.counter(bhAdmitted, float64(st.Admitted), b.Name)
		e.counter(bhRejected, float64(st.Rejected), b.Name)
		e.counter(bhCanceled, float64(st.Canceled), b.Name)
		e.gauge(bhUtilization, st.Utilization, b.Name)
	}

	for _, l := range s.Limiters {
		if !first("limiter", l.Name) {
			continue
		}
		st := l.Stats
		e.counter(rlAllowed, float64(st.Allowed), l.Name)
		e.counter(rlRejected, float64(st.Rejected), l.Name)
		e.counter(rlWaited, float64(st.Waited), l.Name)
		e.counter(rlWaitSeconds, st.WaitTime.Seconds(), l.Name)
		e.gauge(rlTokens, st.Tokens, l.Name)
	}

	for _, t := range s.Timeouts {
		if !first("timeout", t.Name) {
			continue
		}
		e.counter(toCalls, float64(t.Stats.Calls), t.Name)
		e.counter(toExceeded, float64(t.Stats.Timeouts), t.Name)
	}

	for _, f := range s.Fallbacks {
		if !first("fallback", f.Name) {
			continue
		}
		st := f.Stats
		var alt int64
		for _, a := range st.Alternatives {
			alt += a.Answered
			e.counter(fbAlternative, float64(a.Answered), f.Name, a.Name, "answered")
			e.counter(fbAlternative, float64(a.Failed), f.Name, a.Name, "failed")
		}
		e.counter(fbTotal, float64(st.Primary), f.Name, fallback.BranchPrimary.String())
		e.counter(fbTotal, float64(alt), f.Name, fallback.BranchAlternative.String())
		e.counter(fbTotal, float64(st.LastGood), f.Name, fallback.BranchLastGood.String())
		e.counter(fbTotal, float64(st.Default), f.Name, fallback.BranchDefault.String())
		e.counter(fbTotal, float64(st.Exhausted), f.Name, fallback.BranchExhausted.String())
		e.counter(fbTotal, float64(st.Skipped), f.Name, "skipped")
	}

	for _, k := range s.Caches {
		if !first("cache", k.Name) {
			continue
		}
		st := k.Stats
		e.counter(caHits, float64(st.Hits), k.Name)
		e.counter(caMisses, float64(st.Misses), k.Name)
		e.counter(caCoalesced, float64(st.Coalesced), k.Name)
		e.counter(caStale, float64(st.Stale), k.Name)
		e.counter(caEvictions, float64(st.Evictions), k.Name)
		e.gauge(caEntries, float64(st.Entries), k.Name)
	}
}

func (c *Collector) collectHealth(e *emitter, r health.Report) {
	e.gauge(hScore, r.Score)
	for _, s := range []health.Status{health.StatusHealthy, health.StatusDegraded, health.StatusCritical} {
		e.gauge(hStatus, boolf(r.Status == s), string(s))
	}
	for _, comp := range r.Components {
		e.gauge(hComponent, comp.Score, comp.Name)
	}
	type key struct{ typ, sev string }
	counts := map[key]int{}
	var order []key
	for _, a := range r.Alerts {
		k := key{a.Type, string(a.Severity)}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		e.gauge(hAlerts, float64(counts[k]), k.typ, k.sev)
	}
	for _, p := range r.Probes {
		e.gauge(prUp, boolf(p.Healthy), p.Name)
		e.counter(prChecks, float64(p.Checks), p.Name)
		e.counter(prFailures, float64(p.Failures), p.Name)
	}
}

// collectDLQ exports the Collector's own stores or, without any, the
// queues of the health report, then the replayers' counters. A queue
// seen at an earlier scrape, or driven by a replayer, that the stores no
// longer list (it drained) is exported with zeros: a series that vanishes
// reads "no data" in a graph and silences an alert instead of reading 0.
func (c *Collector) collectDLQ(ctx context.Context, e *emitter, rep *health.Report) {
	seen := map[string]bool{}
	queue := func(q string, ready, parked, bytes int64, age float64) {
		if seen[q] {
			return
		}
		seen[q] = true
		e.gauge(dlqDepth, float64(ready), q, "ready")
		e.gauge(dlqDepth, float64(parked), q, "parked")
		e.gauge(dlqBytes, float64(bytes), q)
		e.gauge(dlqOldestAge, age, q)
	}
	c.storeQueues(ctx, rep, queue)
	var replays []ReplayStats
	if c.replays != nil {
		replays = c.replays()
	}
	c.mu.Lock()
	for q := range seen {
		c.queues[q] = true
	}
	for _, r := range replays {
		c.queues[r.Queue] = true
	}
	known := make([]string, 0, len(c.queues))
	for q := range c.queues {
		known = append(known, q)
	}
	c.mu.Unlock()
	slices.Sort(known)
	for _, q := range known {
		queue(q, 0, 0, 0, 0)
	}
	for _, r := range replays {
		st := r.Stats
		e.counter(dlqReplayed, float64(st.Replayed), r.Queue)
		e.counter(dlqReplayFailures, float64(st.Failed), r.Queue)
		e.counter(dlqReplayParked, float64(st.Parked), r.Queue)
		e.counter(dlqReplayReleased, float64(st.Released), r.Queue)
		e.gauge(dlqReplaysInFlight, float64(st.InFlight), r.Queue)
	}
}

// storeQueues passes every queue the stores (or the health report) list
// to queue.
func (c *Collector) storeQueues(ctx context.Context, rep *health.Report, queue func(q string, ready, parked, bytes int64, age float64)) {
	if len(c.dlqs) == 0 {
		if rep != nil {
			for _, q := range rep.DLQ {
				queue(q.Queue, q.Ready, q.Parked, q.Bytes, q.OldestAgeSeconds)
			}
			c.dlqErrors.Add(int64(len(rep.DLQErrors)))
		}
		return
	}
	now := c.clock.Now()
	for i, s := range c.dlqs {
		qs, err := s.Stats(ctx)
		if err != nil {
			c.dlqErrors.Add(1)
			c.log.LogAttrs(ctx, slog.LevelWarn, "metrics: dead-letter store stats failed",
				slog.Int("source", i), slog.String("error", err.Error()))
			continue
		}
		for _, q := range qs {
			queue(q.Queue, q.Ready, q.Parked, q.Bytes, q.OldestAgeAt(now).Seconds())
		}
	}
}

// emitter sends constant metrics, skipping (and logging) any that cannot be
// built, such as a name that is not valid UTF-8: one bad name must not fail
// the whole scrape.
type emitter struct {
	c  *Collector
	ch chan<- prometheus.Metric
}

func (e *emitter) send(m prometheus.Metric, err error) {
	if err != nil {
		e.c.log.LogAttrs(context.Background(), slog.LevelWarn, "metrics: metric skipped", slog.String("error", err.Error()))
		return
	}
	e.ch <- m
}

func (e *emitter) gauge(f int, v float64, labels ...string) {
	e.send(prometheus.NewConstMetric(e.c.descs[f], prometheus.GaugeValue, v, labels...))
}

func (e *emitter) counter(f int, v float64, labels ...string) {
	e.send(prometheus.NewConstMetric(e.c.descs[f], prometheus.CounterValue, v, labels...))
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
