package metrics_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/metrics"
)

// flipper is a SharedComponent whose mode the test sets; the real ones
// (sluiceredis.Limiter, dlq.Failover) are scraped against a real Redis in
// package sluiceredis.
type flipper struct{ degraded atomic.Bool }

func (f *flipper) Degraded() bool { return f.degraded.Load() }

func (f *flipper) LastError() error { return errors.New("unreachable") }

// sluice_shared_degraded is 1 for a degraded component and 0 for a shared
// one, labelled by its name, read at every scrape.
func TestSharedDegraded(t *testing.T) {
	lim, store := &flipper{}, &flipper{}
	c, err := metrics.New(metrics.Config{Shared: map[string]sluice.SharedComponent{"limiter:api": lim, "dlq": store}})
	if err != nil {
		t.Fatal(err)
	}
	value := func(component string) float64 {
		t.Helper()
		for _, f := range gather(t, c) {
			if f.GetName() != "sluice_shared_degraded" {
				continue
			}
			for _, m := range f.GetMetric() {
				if l := m.GetLabel(); len(l) == 1 && l[0].GetName() == "component" && l[0].GetValue() == component {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no sluice_shared_degraded series for %q", component)
		return 0
	}
	if value("limiter:api") != 0 || value("dlq") != 0 {
		t.Fatal("a shared component is reported degraded")
	}
	lim.degraded.Store(true)
	if value("limiter:api") != 1 || value("dlq") != 0 {
		t.Fatal("the degraded limiter is not reported alone")
	}
	if _, err := metrics.New(metrics.Config{Shared: map[string]sluice.SharedComponent{"x": nil}}); err == nil || !strings.Contains(err.Error(), `Config.Shared["x"]`) {
		t.Fatalf("a nil shared component: err = %v", err)
	}
}
