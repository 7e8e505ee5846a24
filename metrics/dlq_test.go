package metrics_test

import (
	"path/filepath"
	"testing"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/health"
	"github.com/sluice-go/sluice/metrics"
)

// A queue that drains reads 0: its series must not vanish, or an alert
// on the depth and a graph of it would show "no data" for an empty queue.
func TestDLQDepthReadsZeroWhenDrained(t *testing.T) {
	store, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "dlq.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := metrics.New(metrics.Config{DLQ: []health.DLQSource{store}})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	id, err := store.Put(ctx, dlq.Message{Queue: "orders", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	fams, _ := scrape(t, h)
	if v := value(t, fams, "sluice_dlq_depth", "queue", "orders", "state", "ready"); v != 1 {
		t.Fatalf("depth with one message = %v", v)
	}
	if err := store.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	fams, _ = scrape(t, h)
	for _, tc := range []struct {
		name   string
		labels []string
	}{
		{"sluice_dlq_depth", []string{"queue", "orders", "state", "ready"}},
		{"sluice_dlq_depth", []string{"queue", "orders", "state", "parked"}},
		{"sluice_dlq_bytes", []string{"queue", "orders"}},
		{"sluice_dlq_oldest_age_seconds", []string{"queue", "orders"}},
	} {
		if v := value(t, fams, tc.name, tc.labels...); v != 0 {
			t.Errorf("%s%v after the queue drained = %v, want 0", tc.name, tc.labels, v)
		}
	}
}

// The replay counters the admin API's /dlq/stats shows are metrics too,
// and a queue that has a replayer reads depth 0 before it ever held a
// message.
func TestDLQReplayCounters(t *testing.T) {
	store, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "dlq.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := metrics.New(metrics.Config{
		DLQ: []health.DLQSource{store},
		Replays: func() []metrics.ReplayStats {
			return []metrics.ReplayStats{{Queue: "agents", Stats: dlq.ReplayerStats{Replayed: 7, Failed: 3, Parked: 1, Released: 2, InFlight: 1}}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fams, _ := scrape(t, c.Handler())
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"sluice_dlq_replayed_total", 7},
		{"sluice_dlq_replay_failures_total", 3},
		{"sluice_dlq_replay_parked_total", 1},
		{"sluice_dlq_replay_released_total", 2},
		{"sluice_dlq_replays_in_flight", 1},
	} {
		if v := value(t, fams, tc.name, "queue", "agents"); v != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, v, tc.want)
		}
	}
	if v := value(t, fams, "sluice_dlq_depth", "queue", "agents", "state", "ready"); v != 0 {
		t.Errorf("depth of a replayed queue that never held a message = %v, want 0", v)
	}
}
