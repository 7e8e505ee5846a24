package health

import (
	"testing"
	"time"
)

func retries(calls, failures int64) counters {
	return counters{retries: map[string]pair{"op": {calls, failures}}, limiters: map[string]pair{}}
}

// TestHistoryWindow walks the snapshot series through a window of 100 s
// (a sample at most every 10 s) and checks the base each rate is taken from.
func TestHistoryWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := history{span: 100 * time.Second}
	h.add(t0, retries(0, 0))
	steps := []struct {
		at              time.Duration
		calls, failures int64
		wantTotal       int64 // calls in the window
		wantBad         int64
		wantCovered     time.Duration
		wantSamples     int // after add
	}{
		{5 * time.Second, 10, 10, 10, 10, 5 * time.Second, 1},     // too soon for a sample
		{10 * time.Second, 20, 10, 20, 10, 10 * time.Second, 2},   // sample
		{50 * time.Second, 40, 10, 40, 10, 50 * time.Second, 3},   // sample
		{100 * time.Second, 50, 10, 50, 10, 100 * time.Second, 4}, // base still t0
		{110 * time.Second, 60, 10, 40, 0, 100 * time.Second, 4},  // base t+10s (20,10); t0 pruned
		{155 * time.Second, 60, 10, 20, 0, 105 * time.Second, 4},  // base t+50s (40,10)
		{400 * time.Second, 70, 11, 10, 1, 245 * time.Second, 2},  // base t+155s, the newest old one
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		cur := retries(s.calls, s.failures)
		w := h.rates(now, cur)
		got := w.retries["op"]
		if got.total != s.wantTotal || got.bad != s.wantBad || w.covered != s.wantCovered {
			t.Fatalf("step %d: window = %+v over %v, want {%d %d} over %v", i, got, w.covered, s.wantTotal, s.wantBad, s.wantCovered)
		}
		h.add(now, cur)
		if len(h.samples) != s.wantSamples {
			t.Fatalf("step %d: %d samples, want %d", i, len(h.samples), s.wantSamples)
		}
	}
}

func TestHistoryReplacedInstance(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := history{span: time.Minute}
	h.add(t0, retries(100, 50))
	// A new instance under the same name starts from zero: its own counts
	// are the window's.
	w := h.rates(t0.Add(time.Second), retries(3, 1))
	if got := w.retries["op"]; got != (pair{3, 1}) {
		t.Fatalf("replaced instance: %+v, want {3 1}", got)
	}
	// An instance absent from the base counts from zero too.
	cur := retries(3, 1)
	cur.limiters["new"] = pair{4, 2}
	if got := h.rates(t0.Add(2*time.Second), cur).limiters["new"]; got != (pair{4, 2}) {
		t.Fatalf("new instance: %+v, want {4 2}", got)
	}
	// An evaluation that lost a race (older than the newest sample) adds
	// nothing.
	h.add(t0.Add(-time.Second), retries(1, 1))
	if len(h.samples) != 1 || !h.samples[0].at.Equal(t0) {
		t.Fatalf("out-of-order sample kept: %+v", h.samples)
	}
}
