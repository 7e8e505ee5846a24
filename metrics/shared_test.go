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

// SharedFunc's components are read at every scrape: one added later is
// exported, one dropped is not.
func TestSharedFunc(t *testing.T) {
	var set atomic.Pointer[map[string]sluice.SharedComponent]
	set.Store(&map[string]sluice.SharedComponent{})
	c, err := metrics.New(metrics.Config{
		Shared:     map[string]sluice.SharedComponent{"ratelimit": &flipper{}},
		SharedFunc: func() map[string]sluice.SharedComponent { return *set.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	series := func() map[string]float64 {
		out := map[string]float64{}
		for _, f := range gather(t, c) {
			if f.GetName() == "sluice_shared_degraded" {
				for _, m := range f.GetMetric() {
					out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	if got := series(); len(got) != 1 || got["ratelimit"] != 0 {
		t.Fatalf("before: %v", got)
	}
	br := &flipper{}
	br.degraded.Store(true)
	set.Store(&map[string]sluice.SharedComponent{"breaker:api/u:1": br})
	if got := series(); len(got) != 2 || got["breaker:api/u:1"] != 1 {
		t.Fatalf("with a breaker: %v", got)
	}
	set.Store(&map[string]sluice.SharedComponent{})
	if got := series(); len(got) != 1 {
		t.Fatalf("after the breaker is gone: %v", got)
	}
}
