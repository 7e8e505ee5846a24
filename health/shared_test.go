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
