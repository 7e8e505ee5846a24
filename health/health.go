package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/registry"
)

// ErrRunning is returned by Run when the Monitor is already running.
var ErrRunning = errors.New("health: monitor already running")

// DLQSource is what the Monitor needs of a dead-letter queue: the depth and
// age of its queues. Every dlq.Store satisfies it.
type DLQSource interface {
	Stats(ctx context.Context) ([]dlq.QueueStats, error)
}

// Defaults applied by New to zero fields.
const (
	DefaultWindow         = 5 * time.Minute
	DefaultEvaluateEvery  = 10 * time.Second
	DefaultBreakerOpenFor = 300 * time.Second
	DefaultFailureRate    = 0.30
	DefaultRejectionRate  = 0.10
	DefaultMinCalls       = 10
	DefaultDLQMaxAge      = time.Hour
	DefaultDLQMaxDepth    = 1000
)

// Config configures a Monitor. The zero Config is valid: a monitor of
// nothing, always healthy. Every field documents its zero value.
type Config struct {
	// Registry holds the breakers, bulkheads, retry policies and limiters
	// to read. If nil, the monitor reports only dead-letter queues and
	// probes.
	Registry *registry.Registry

	// DLQ lists the dead-letter stores whose queues are reported and
	// checked against Thresholds.DLQ. If empty, none.
	DLQ []DLQSource

	// Probes lists the URLs that Run fetches to check upstreams. Names
	// must be unique. If empty, none.
	Probes []ProbeConfig

	// Shared names the components whose state is shared between instances
	// (a Redis limiter, a failover dead-letter store, a synchronised
	// breaker): the report lists them and raises a shared_degraded alert
	// while one works from local state. They do not move the score. If
	// empty, none.
	Shared map[string]sluice.SharedComponent

	// SharedFunc, if set, is called at each evaluation for more shared
	// components, listed beside Shared's (Shared wins a name both hold):
	// for a set that changes while the Monitor runs, such as the shared
	// breakers of a sidecar that reloads its configuration. If nil, none.
	SharedFunc func() map[string]sluice.SharedComponent

	// Instance names the process the report is of, for an operator who
	// watches several instances of a fleet. If empty, the report names
	// none.
	Instance string

	// Thresholds are the alert limits. Its zero value gives the original
	// design's limits; see Thresholds.
	Thresholds Thresholds

	// Window is the span over which retry success rates and limiter
	// rejection rates are computed. If zero, 5 minutes.
	Window time.Duration

	// EvaluateEvery is how often Run evaluates (keeping the windows fed and
	// the alerts logged even when nobody asks for a report). If zero, 10 s.
	EvaluateEvery time.Duration

	// Client makes the probes' requests. If nil, the Monitor uses a client
	// of its own, whose idle connections Close releases.
	Client *http.Client

	// Clock is the source of time for reports, windows and probes. If nil,
	// the Registry's clock, or the system clock.
	Clock sluice.Clock

	// Logger receives alert and probe-state changes. If nil, nothing is
	// logged.
	Logger *slog.Logger
}

// Thresholds are the limits past which the Monitor raises alerts. Its zero
// value gives the defaults; a negative field turns its check off.
type Thresholds struct {
	// BreakerOpenFor alerts on a breaker open (or forced open) longer than
	// this. If zero, 300 s.
	BreakerOpenFor time.Duration

	// FailureRate alerts on a breaker whose window, or a retry policy whose
	// recent calls, failed more often than this share (0 < x <= 1). If
	// zero, 0.30.
	FailureRate float64

	// MinCalls is the number of calls a window must hold before
	// FailureRate applies, so one failure out of one call does not alert.
	// If zero, 10.
	MinCalls int64

	// RejectionRate alerts on a bulkhead whose recent rejection rate is
	// above this share (0 < x <= 1). If zero, 0.10.
	RejectionRate float64

	// DLQ are the dead-letter queue limits. If all its fields are zero,
	// MaxAge 1 h and MaxDepth 1000 (parked messages not checked);
	// otherwise as given, where a zero or negative field is a check left
	// out.
	DLQ DLQThresholds
}

// Monitor computes the health of the resilience layer. It is safe for
// concurrent use: any number of Evaluate calls and handlers may run at once,
// and Run keeps probes and windows going in the background.
type Monitor struct {
	reg       *registry.Registry
	dlqs      []DLQSource
	probes    []*probe
	shared    map[string]sluice.SharedComponent
	sharedFn  func() map[string]sluice.SharedComponent
	instance  string
	th        Thresholds
	window    time.Duration
	evalEvery time.Duration
	client    *http.Client
	ownClient bool
	clock     sluice.Clock
	log       *slog.Logger

	running atomic.Bool

	mu     sync.Mutex
	hist   history
	active map[alertKey]time.Time // alert → first raised
	status Status
	since  time.Time // when status was first evaluated; zero before any
}

type alertKey struct{ typ, subject string }

// New validates cfg, applies its defaults and returns a Monitor. It takes a
// first snapshot of the registry's counters, the start of the windows.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Monitor{
		reg:       cfg.Registry,
		dlqs:      append([]DLQSource(nil), cfg.DLQ...),
		shared:    maps.Clone(cfg.Shared),
		sharedFn:  cfg.SharedFunc,
		instance:  cfg.Instance,
		th:        cfg.Thresholds.withDefaults(),
		window:    cfg.Window,
		evalEvery: cfg.EvaluateEvery,
		client:    cfg.Client,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		active:    map[alertKey]time.Time{},
		status:    StatusHealthy,
	}
	if m.window == 0 {
		m.window = DefaultWindow
	}
	if m.evalEvery == 0 {
		m.evalEvery = DefaultEvaluateEvery
	}
	if m.clock == nil && m.reg != nil {
		m.clock = m.reg.Clock()
	}
	m.clock = sluice.ClockOr(m.clock)
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.client == nil {
		// A transport of its own, so that Close releases only the probes'
		// idle connections.
		tr, ok := http.DefaultTransport.(*http.Transport)
		if ok {
			tr = tr.Clone()
		} else {
			tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
		m.client = &http.Client{Transport: tr}
		m.ownClient = true
	}
	for _, pc := range cfg.Probes {
		m.probes = append(m.probes, newProbe(pc.withDefaults()))
	}
	m.hist.span = m.window
	if m.reg != nil {
		m.hist.add(m.clock.Now(), countersOf(m.reg.Snapshot()))
	}
	return m, nil
}

func (c Config) validate() error {
	switch {
	case c.Window < 0:
		return fmt.Errorf("health: Config.Window must be >= 0, got %v", c.Window)
	case c.EvaluateEvery < 0:
		return fmt.Errorf("health: Config.EvaluateEvery must be >= 0, got %v", c.EvaluateEvery)
	case c.Thresholds.FailureRate > 1:
		return fmt.Errorf("health: Config.Thresholds.FailureRate must be <= 1, got %v", c.Thresholds.FailureRate)
	case c.Thresholds.RejectionRate > 1:
		return fmt.Errorf("health: Config.Thresholds.RejectionRate must be <= 1, got %v", c.Thresholds.RejectionRate)
	case c.Thresholds.MinCalls < 0:
		return fmt.Errorf("health: Config.Thresholds.MinCalls must be >= 0, got %d", c.Thresholds.MinCalls)
	case math.IsNaN(c.Thresholds.FailureRate) || math.IsNaN(c.Thresholds.RejectionRate):
		return errors.New("health: Config.Thresholds rates must not be NaN")
	}
	for i, s := range c.DLQ {
		if s == nil {
			return fmt.Errorf("health: Config.DLQ[%d] must not be nil", i)
		}
	}
	if err := validateShared(c.Shared); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, p := range c.Probes {
		if err := p.validate(i); err != nil {
			return err
		}
		name := p.withDefaults().Name
		if j, ok := seen[name]; ok {
			return fmt.Errorf("health: Config.Probes[%d].Name %q is already used by Probes[%d]", i, name, j)
		}
		seen[name] = i
	}
	return nil
}

func (t Thresholds) withDefaults() Thresholds {
	if t.BreakerOpenFor == 0 {
		t.BreakerOpenFor = DefaultBreakerOpenFor
	}
	if t.FailureRate == 0 {
		t.FailureRate = DefaultFailureRate
	}
	if t.MinCalls == 0 {
		t.MinCalls = DefaultMinCalls
	}
	if t.RejectionRate == 0 {
		t.RejectionRate = DefaultRejectionRate
	}
	if t.DLQ == (DLQThresholds{}) {
		t.DLQ = DLQThresholds{MaxAge: DefaultDLQMaxAge, MaxDepth: DefaultDLQMaxDepth}
	}
	return t
}

// Close releases the idle connections of the Monitor's own probe client.
// The Monitor keeps working; Run calls it when it returns.
func (m *Monitor) Close() error {
	if m.ownClient {
		m.client.CloseIdleConnections()
	}
	return nil
}

// Window returns the span of the retry and limiter rates.
func (m *Monitor) Window() time.Duration { return m.window }

// Evaluate reads the registry, the dead-letter queues and the probes, and
// returns the health report as of now. It feeds the windows, and logs the
// alerts that were raised or cleared since the previous evaluation. ctx
// bounds the dead-letter stores' Stats calls.
func (m *Monitor) Evaluate(ctx context.Context) Report {
	var snap registry.Snapshot
	if m.reg != nil {
		snap = m.reg.Snapshot()
	}
	var (
		queues  []dlq.QueueStats
		dlqErrs []string
	)
	for i, s := range m.dlqs {
		qs, err := s.Stats(ctx)
		if err != nil {
			dlqErrs = append(dlqErrs, fmt.Sprintf("DLQ[%d]: %v", i, err))
			continue
		}
		queues = append(queues, qs...)
	}
	probes := make([]ProbeReport, len(m.probes))
	for i, p := range m.probes {
		probes[i] = p.report()
	}
	shared := sharedReports(m.sharedNow())
	now := m.clock.Now()

	m.mu.Lock()
	cur := countersOf(snap)
	rates := m.hist.rates(now, cur)
	m.hist.add(now, cur)
	r := build(now, m.window, snap, rates, queues, dlqErrs, probes)
	r.Shared = shared
	r.Instance = m.instance
	alerts := append(m.th.check(now, &r, snap, queues), sharedAlerts(shared)...)
	raised, cleared := m.trackLocked(now, alerts)
	prev := m.status
	if r.Status != prev || m.since.IsZero() {
		m.since = now
	}
	m.status = r.Status
	r.StatusSince = m.since
	m.mu.Unlock()

	r.Alerts = alerts
	m.logChanges(now, prev, r, raised, cleared)
	return r
}

// trackLocked stamps each alert with the time it was first raised and
// returns the alerts raised and cleared since the previous evaluation.
func (m *Monitor) trackLocked(now time.Time, alerts []Alert) (raised []Alert, cleared []clearedAlert) {
	seen := make(map[alertKey]bool, len(alerts))
	for i := range alerts {
		k := alertKey{alerts[i].Type, alerts[i].Subject}
		seen[k] = true
		since, ok := m.active[k]
		if !ok {
			since = now
			m.active[k] = now
			raised = append(raised, alerts[i])
		}
		alerts[i].Since = since
	}
	for k, since := range m.active {
		if !seen[k] {
			delete(m.active, k)
			cleared = append(cleared, clearedAlert{k, since})
		}
	}
	return raised, cleared
}

type clearedAlert struct {
	key   alertKey
	since time.Time
}

// logChanges logs outside the Monitor's lock: a slog.Handler is user code.
func (m *Monitor) logChanges(now time.Time, prev Status, r Report, raised []Alert, cleared []clearedAlert) {
	ctx := context.Background()
	if prev != r.Status {
		lvl := slog.LevelInfo
		if r.Status != StatusHealthy {
			lvl = slog.LevelWarn
		}
		m.log.Log(ctx, lvl, "health status changed",
			slog.String("from", string(prev)), slog.String("to", string(r.Status)), slog.Float64("score", r.Score))
	}
	for _, a := range raised {
		m.log.LogAttrs(ctx, slog.LevelWarn, "health alert raised",
			slog.String("type", a.Type), slog.String("severity", string(a.Severity)),
			slog.String("subject", a.Subject), slog.Float64("value", a.Value),
			slog.Float64("threshold", a.Threshold), slog.String("message", a.Message))
	}
	for _, c := range cleared {
		m.log.LogAttrs(ctx, slog.LevelInfo, "health alert cleared",
			slog.String("type", c.key.typ), slog.String("subject", c.key.subject),
			slog.Duration("active_for", now.Sub(c.since)))
	}
}

// StatusFor returns the status of a score: healthy above 0.8, degraded
// above 0.6, critical otherwise.
func StatusFor(score float64) Status {
	switch {
	case score > 0.8:
		return StatusHealthy
	case score > 0.6:
		return StatusDegraded
	}
	return StatusCritical
}

// Status is the overall verdict on a score.
type Status string

// The statuses, as they appear in the JSON document.
const (
	StatusHealthy  Status = "healthy"
	StatusDegraded Status = "degraded"
	StatusCritical Status = "critical"
)

// HTTPStatus returns the status code /health answers with: 200 while
// healthy or degraded (the service still works), 503 when critical.
func (s Status) HTTPStatus() int {
	if s == StatusCritical {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}
