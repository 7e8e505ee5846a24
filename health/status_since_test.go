package health_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/sluicetest"
)

// The report says since when the status holds, by the monitor's clock:
// the first evaluation, then each change, and not later evaluations.
func TestStatusSince(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := sluicetest.NewFakeClock(t0)
	reg := registry.New(registry.Config{Clock: clock})
	defer reg.Close()
	br, err := reg.Breaker("upstream", breaker.Config{OpenFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.New(health.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	ctx := context.Background()
	steps := []struct {
		rule    string
		advance time.Duration
		act     func()
		status  health.Status
		since   time.Duration // after t0
	}{
		{"the first evaluation starts the status", 0, nil, health.StatusHealthy, 0},
		{"an unchanged status keeps its time", time.Minute, nil, health.StatusHealthy, 0},
		{"a change takes the time of the evaluation that saw it", time.Minute, func() {
			for range 5 {
				_ = sluice.NewPipeline(br).Do(ctx, func(context.Context) error { return errors.New("down") })
			}
		}, health.StatusCritical, 2 * time.Minute},
		{"and keeps it", 10 * time.Minute, nil, health.StatusCritical, 2 * time.Minute},
		{"the way back is a change too", time.Minute, br.ForceClosed, health.StatusHealthy, 13 * time.Minute},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		if st.act != nil {
			st.act()
		}
		r := mon.Evaluate(ctx)
		if r.Status != st.status || !r.StatusSince.Equal(t0.Add(st.since)) {
			t.Errorf("%s: %s since %v, want %s since %v", st.rule, r.Status, r.StatusSince, st.status, t0.Add(st.since))
		}
	}
}
