package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/health"
)

// switchable is a SharedComponent whose mode the test sets; the real ones
// (sluiceredis.Limiter, dlq.Failover) are tested against a real Redis in
// package sluiceredis.
type switchable struct{ degraded atomic.Bool }

func (s *switchable) Degraded() bool { return s.degraded.Load() }

func (s *switchable) LastError() error {
	if s.degraded.Load() {
		return errors.New("dial tcp 127.0.0.1:6379: connection refused")
	}
	return nil
}

// Shared components are listed by name; a degraded one raises a
// shared_degraded warning (in the JSON and the text report) without moving
// the score, and the alert clears when it recovers.
func TestMonitorSharedComponents(t *testing.T) {
	lim, store := &switchable{}, &switchable{}
	m, err := health.New(health.Config{Shared: map[string]sluice.SharedComponent{"limiter:api": lim, "dlq": store}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := m.Evaluate(context.Background())
	if len(r.Shared) != 2 || r.Shared[0].Name != "dlq" || r.Shared[1].Name != "limiter:api" || r.Shared[0].Degraded || len(r.Alerts) != 0 {
		t.Fatalf("all shared: Shared = %+v, alerts %+v", r.Shared, r.Alerts)
	}
	lim.degraded.Store(true)
	r = m.Evaluate(context.Background())
	if len(r.Alerts) != 1 || r.Alerts[0].Type != health.AlertSharedDegraded || r.Alerts[0].Subject != "limiter:api" ||
		r.Alerts[0].Severity != health.SeverityWarning || r.Score != 1 {
		t.Fatalf("limiter degraded: alerts %+v, score %v", r.Alerts, r.Score)
	}
	if !r.Shared[1].Degraded || !strings.Contains(r.Shared[1].LastError, "connection refused") {
		t.Fatalf("limiter degraded: Shared = %+v", r.Shared)
	}
	text := r.String()
	if !strings.Contains(text, "Shared State:\n  dlq: SHARED\n  limiter:api: DEGRADED (local), last error: dial tcp") ||
		!strings.Contains(text, "- Shared component 'limiter:api' is degraded") {
		t.Fatalf("text report:\n%s", text)
	}
	js, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(js), `"shared":[{"name":"dlq","degraded":false},{"name":"limiter:api","degraded":true,"last_error":`) {
		t.Fatalf("JSON %s, %v", js, err)
	}
	lim.degraded.Store(false)
	if r = m.Evaluate(context.Background()); len(r.Alerts) != 0 {
		t.Fatalf("after recovery: alerts %+v", r.Alerts)
	}
}

// Without shared components the report has no shared section at all.
func TestMonitorWithoutSharedComponents(t *testing.T) {
	m, err := health.New(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := m.Evaluate(context.Background())
	js, _ := json.Marshal(r)
	if strings.Contains(string(js), `"shared"`) || strings.Contains(r.String(), "Shared State") {
		t.Fatalf("a report without shared components mentions them:\n%s\n%s", js, r)
	}
	if _, err := health.New(health.Config{Shared: map[string]sluice.SharedComponent{"x": nil}}); err == nil || !strings.Contains(err.Error(), `Config.Shared["x"]`) {
		t.Fatalf("a nil shared component: err = %v", err)
	}
}

// stated is a switchable that also says what the store and the instance
// hold (health.SharedStater), as a shared breaker does.
type stated struct {
	switchable
	fleet, local string
}

func (s *stated) SharedState() (fleet, local string) { return s.fleet, s.local }

// Components from SharedFunc are read at each evaluation, so a set that
// changes (breakers added by a reload) is reported as it is now; a
// SharedStater's fleet and local states are in the JSON and the text, and
// the instance heads the report.
func TestMonitorSharedFuncAndState(t *testing.T) {
	var set atomic.Pointer[map[string]sluice.SharedComponent]
	set.Store(&map[string]sluice.SharedComponent{})
	m, err := health.New(health.Config{
		Instance:   "sidecar-a",
		Shared:     map[string]sluice.SharedComponent{"ratelimit": &switchable{}},
		SharedFunc: func() map[string]sluice.SharedComponent { return *set.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if r := m.Evaluate(context.Background()); len(r.Shared) != 1 || r.Instance != "sidecar-a" {
		t.Fatalf("before: Shared = %+v, instance %q", r.Shared, r.Instance)
	}
	br := &stated{fleet: "open (by sidecar-b, failure rate)", local: "open"}
	set.Store(&map[string]sluice.SharedComponent{"breaker:api/u:1": br})
	r := m.Evaluate(context.Background())
	if len(r.Shared) != 2 || r.Shared[0].Name != "breaker:api/u:1" || r.Shared[0].Fleet != br.fleet || r.Shared[0].Local != "open" {
		t.Fatalf("after: Shared = %+v", r.Shared)
	}
	text := r.String()
	for _, want := range []string{"Instance: sidecar-a\n", "  breaker:api/u:1: SHARED, fleet open (by sidecar-b, failure rate), local open\n", "  ratelimit: SHARED\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	js, _ := json.Marshal(r)
	if !strings.Contains(string(js), `"instance":"sidecar-a"`) || !strings.Contains(string(js), `"fleet":"open (by sidecar-b, failure rate)","local":"open"`) {
		t.Errorf("JSON %s", js)
	}
	br.degraded.Store(true)
	if r = m.Evaluate(context.Background()); len(r.Alerts) != 1 || r.Alerts[0].Subject != "breaker:api/u:1" {
		t.Errorf("degraded breaker: alerts %+v", r.Alerts)
	}
}
