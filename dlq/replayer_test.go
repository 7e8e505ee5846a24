package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
)

// events records OnReplay events with the (virtual) time they happened.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) record(start time.Time) func(dlq.ReplayEvent) {
	return func(ev dlq.ReplayEvent) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.got = append(e.got, fmt.Sprintf("+%v %s %s", time.Since(start), ev.Message.Payload, ev.Outcome))
	}
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.got
	e.got = nil
	return out
}

func wantEvents(t *testing.T, step string, e *events, want ...string) {
	t.Helper()
	got := e.take()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: events\n  %s\nwant\n  %s", step, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func mustPut(t *testing.T, s dlq.Store, m dlq.Message) dlq.ID {
	t.Helper()
	id, err := s.Put(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newReplayer(t *testing.T, s dlq.Store, h dlq.Handler, cfg dlq.ReplayerConfig) *dlq.Replayer {
	t.Helper()
	r, err := dlq.NewReplayer(s, "q", h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts r.Run and returns a stop func that cancels it and checks that
// it returned nil.
func run(t *testing.T, r *dlq.Replayer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	}
}

func depth(t *testing.T, s dlq.Store) (ready, parked int64) {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range st {
		ready += q.Ready
		parked += q.Parked
	}
	return ready, parked
}

func TestReplayerDrainsQueueInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		for i := range 5 {
			mustPut(t, s, dlq.Message{Queue: "q", Payload: fmt.Appendf(nil, "m%d", i)})
		}
		mustPut(t, s, dlq.Message{Queue: "other", Payload: []byte("not mine")})
		var order []string
		h := func(ctx context.Context, m dlq.Message) error {
			order = append(order, string(m.Payload)) // Concurrency 1: no race
			return nil
		}
		r := newReplayer(t, s, h, dlq.ReplayerConfig{Concurrency: 1})
		stop := run(t, r)
		synctest.Wait()
		stop()
		if got := strings.Join(order, ","); got != "m0,m1,m2,m3,m4" {
			t.Fatalf("replayed %s, want m0..m4 in order", got)
		}
		if ready, parked := depth(t, s); ready != 1 || parked != 0 {
			t.Fatalf("left %d ready, %d parked; want only the other queue's message", ready, parked)
		}
		if st := r.Stats(); st.Replayed != 5 || st.Failed != 0 || st.InFlight != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestReplayerBacksOffThenParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		id := mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("poison"), Attempts: 5})
		var ev events
		r := newReplayer(t, s, func(context.Context, dlq.Message) error { return errors.New("500 from upstream") },
			dlq.ReplayerConfig{
				MaxReplays: 3,
				Backoff:    func(n int) time.Duration { return time.Duration(n) * 10 * time.Second },
				OnReplay:   ev.record(start),
			})
		stop := run(t, r)
		defer stop()
		synctest.Wait()
		wantEvents(t, "at once", &ev, "+0s poison failed")
		m, _ := s.Get(context.Background(), id)
		if m.Replays != 1 || m.Attempts != 6 || !m.NextReplay.Equal(start.Add(10*time.Second)) || m.LastError != "500 from upstream" {
			t.Fatalf("after one failure: %+v", m)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		// Replays at 0, 10s, 10s+20s; the third failure parks it.
		wantEvents(t, "an hour later", &ev, "+10s poison failed", "+30s poison parked")
		if ready, parked := depth(t, s); ready != 0 || parked != 1 {
			t.Fatalf("%d ready, %d parked; want the message parked", ready, parked)
		}
		if st := r.Stats(); st.Failed != 3 || st.Parked != 1 || st.Replayed != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestReplayerWaitsForGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("a")})
		var healthy atomic.Bool
		var ev events
		r := newReplayer(t, s, func(context.Context, dlq.Message) error { return nil },
			dlq.ReplayerConfig{Gate: healthy.Load, OnReplay: ev.record(start)})
		stop := run(t, r)
		defer stop()
		time.Sleep(time.Minute)
		synctest.Wait()
		wantEvents(t, "gate closed for a minute", &ev)
		if err := r.ReplayOne(context.Background(), dlq.ID{}); !errors.Is(err, dlq.ErrUnhealthy) || !errors.Is(err, sluice.ErrRejected) {
			t.Fatalf("ReplayOne with the gate closed: %v, want ErrUnhealthy and sluice.ErrRejected", err)
		} else if d, ok := sluice.RetryAfter(err); !ok || d != time.Second {
			t.Fatalf("RetryAfter = %v, %v; want the poll interval", d, ok)
		}
		time.Sleep(500 * time.Millisecond)
		healthy.Store(true)
		time.Sleep(time.Second)
		synctest.Wait()
		wantEvents(t, "gate opened at +60.5s", &ev, "+1m1s a replayed")
	})
}

// flakyDelete fails the first Delete, as a crash between the handler's
// success and the acknowledgement would.
type flakyDelete struct {
	dlq.Store
	failed atomic.Bool
}

func (f *flakyDelete) Delete(ctx context.Context, id dlq.ID) error {
	if f.failed.CompareAndSwap(false, true) {
		return errors.New("disk on fire")
	}
	return f.Store.Delete(ctx, id)
}

func TestReplayerAtLeastOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		mem := dlqtest.NewMemory(nil)
		defer mem.Close()
		s := &flakyDelete{Store: mem}
		mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("cmd")})
		var calls atomic.Int32
		var ev events
		r := newReplayer(t, s, func(context.Context, dlq.Message) error { calls.Add(1); return nil },
			dlq.ReplayerConfig{Lease: time.Minute, OnReplay: ev.record(start)})
		stop := run(t, r)
		defer stop()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		// The acknowledgement was lost, so the message came back when its
		// lease ended and was replayed again: at least once, never zero.
		wantEvents(t, "after two minutes", &ev, "+0s cmd replayed", "+1m0s cmd replayed")
		if calls.Load() != 2 {
			t.Fatalf("handler called %d times, want 2", calls.Load())
		}
		if ready, _ := depth(t, mem); ready != 0 {
			t.Fatalf("%d messages left", ready)
		}
	})
}

func TestReplayerBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		for i := range 10 {
			mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
		}
		release := make(chan struct{})
		var running, peak atomic.Int32
		h := func(ctx context.Context, m dlq.Message) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			return nil
		}
		r := newReplayer(t, s, h, dlq.ReplayerConfig{Concurrency: 3})
		stop := run(t, r)
		synctest.Wait()
		if got := r.Stats().InFlight; got != 3 {
			t.Fatalf("InFlight = %d, want 3", got)
		}
		close(release)
		synctest.Wait()
		stop()
		if peak.Load() != 3 {
			t.Fatalf("peak concurrency %d, want 3", peak.Load())
		}
		if st := r.Stats(); st.Replayed != 10 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestReplayerStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		id := mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("slow")})
		var ev events
		r := newReplayer(t, s, func(ctx context.Context, _ dlq.Message) error {
			<-ctx.Done()
			return ctx.Err()
		}, dlq.ReplayerConfig{OnReplay: ev.record(start)})
		stop := run(t, r)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("second Run: %v", err)
		}
		stop()
		wantEvents(t, "stopped at +3s", &ev, "+3s slow released")
		m, err := s.Get(context.Background(), id)
		if err != nil || m.Replays != 0 || m.State != dlq.StateReady || !m.NextReplay.Equal(start.Add(3*time.Second)) {
			t.Fatalf("after stopping: %+v, %v; want it ready at once, no replay counted", m, err)
		}
	})
}

// rejectedErr is a load-shedding error as a breaker in the Pipeline returns it.
type rejectedErr struct{}

func (rejectedErr) Error() string             { return "breaker open" }
func (rejectedErr) Unwrap() error             { return sluice.ErrRejected }
func (rejectedErr) RetryAfter() time.Duration { return 30 * time.Second }

func TestReplayerPipelineRejectionIsNotAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		id := mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("x")})
		var open atomic.Bool
		open.Store(true)
		breakerish := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
			if open.Load() {
				return rejectedErr{}
			}
			return next.Run(ctx)
		})
		var ev events
		r := newReplayer(t, s, func(context.Context, dlq.Message) error { return nil },
			dlq.ReplayerConfig{Pipeline: sluice.NewPipeline(breakerish), OnReplay: ev.record(start)})
		stop := run(t, r)
		defer stop()
		synctest.Wait()
		wantEvents(t, "breaker open", &ev, "+0s x released")
		if m, _ := s.Get(context.Background(), id); m.Replays != 0 || !m.NextReplay.Equal(start.Add(30*time.Second)) {
			t.Fatalf("after a rejection: replays %d, next %v; want 0 and +30s", m.Replays, m.NextReplay.Sub(start))
		}
		open.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		wantEvents(t, "breaker closed", &ev, "+30s x replayed")
	})
}

func TestReplayOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		parked := mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("fail"), State: dlq.StateParked})
		good := mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte("ok"), State: dlq.StateParked})
		other := mustPut(t, s, dlq.Message{Queue: "other"})
		r := newReplayer(t, s, func(_ context.Context, m dlq.Message) error {
			if string(m.Payload) == "fail" {
				return errors.New("still broken")
			}
			return nil
		}, dlq.ReplayerConfig{})
		if err := r.ReplayOne(ctx, good); err != nil {
			t.Fatalf("ReplayOne(good): %v", err)
		}
		if _, err := s.Get(ctx, good); !errors.Is(err, dlq.ErrNotFound) {
			t.Fatalf("replayed message still stored: %v", err)
		}
		if err := r.ReplayOne(ctx, parked); err == nil || err.Error() != "still broken" {
			t.Fatalf("ReplayOne(parked) = %v, want the handler's error", err)
		}
		if m, _ := s.Get(ctx, parked); m.State != dlq.StateParked || m.Replays != 1 {
			t.Fatalf("a parked message that failed again: state %v, replays %d; want parked, 1", m.State, m.Replays)
		}
		if err := r.ReplayOne(ctx, other); !errors.Is(err, dlq.ErrNotFound) {
			t.Fatalf("ReplayOne(other queue) = %v, want ErrNotFound", err)
		}
		if st := r.Stats(); st.Replayed != 1 || st.Failed != 1 || st.Parked != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestReplayOneBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		id := mustPut(t, s, dlq.Message{Queue: "q"})
		release := make(chan struct{})
		r := newReplayer(t, s, func(context.Context, dlq.Message) error { <-release; return nil }, dlq.ReplayerConfig{})
		stop := run(t, r)
		synctest.Wait()
		if err := r.ReplayOne(context.Background(), id); !errors.Is(err, dlq.ErrBusy) {
			t.Fatalf("ReplayOne while Run replays it: %v, want ErrBusy", err)
		}
		close(release)
		synctest.Wait()
		stop()
	})
}

func TestReplayOnePanicIsRecordedAndReraised(t *testing.T) {
	s := dlqtest.NewMemory(nil)
	defer s.Close()
	id := mustPut(t, s, dlq.Message{Queue: "q"})
	r := newReplayer(t, s, func(context.Context, dlq.Message) error { panic("nil map") }, dlq.ReplayerConfig{})
	func() {
		defer func() {
			if p := recover(); p != "nil map" {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		_ = r.ReplayOne(context.Background(), id)
		t.Fatal("ReplayOne returned")
	}()
	m, err := s.Get(context.Background(), id)
	if err != nil || m.Replays != 1 || !strings.Contains(m.LastError, "panicked: nil map") {
		t.Fatalf("after a panic: %+v, %v", m, err)
	}
}

func TestReplayFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		for i := range 6 {
			m := dlq.Message{Queue: "q", Payload: fmt.Appendf(nil, "%d", i), Headers: map[string]string{"tenant": "a"}}
			if i%2 == 1 {
				m.Headers["tenant"] = "b"
			}
			if i >= 4 {
				m.State = dlq.StateParked
			}
			mustPut(t, s, m)
		}
		var mu sync.Mutex
		var seen []string
		r := newReplayer(t, s, func(_ context.Context, m dlq.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, string(m.Payload))
			if string(m.Payload) == "2" {
				return errors.New("no")
			}
			return nil
		}, dlq.ReplayerConfig{Concurrency: 1})
		res, err := r.Replay(ctx, dlq.Filter{Match: func(m dlq.Message) bool { return m.Headers["tenant"] == "a" }})
		if err != nil || res != (dlq.ReplayResult{Replayed: 2, Failed: 1}) {
			t.Fatalf("Replay(tenant a) = %+v, %v", res, err)
		}
		if got := strings.Join(seen, ","); got != "0,2,4" {
			t.Fatalf("replayed %s, want 0,2,4", got)
		}
		seen = nil
		res, err = r.Replay(ctx, dlq.Filter{State: dlq.StateParked})
		if err != nil || res != (dlq.ReplayResult{Replayed: 1}) || strings.Join(seen, ",") != "5" {
			t.Fatalf("Replay(parked) = %+v, %v, saw %v", res, err, seen)
		}
		seen = nil
		res, err = r.Replay(ctx, dlq.Filter{Limit: 1})
		if err != nil || res != (dlq.ReplayResult{Replayed: 1}) || strings.Join(seen, ",") != "1" {
			t.Fatalf("Replay(limit 1) = %+v, %v, saw %v", res, err, seen)
		}
		seen = nil
		res, err = r.ReplayAll(ctx)
		if err != nil || res != (dlq.ReplayResult{Replayed: 1, Failed: 1}) || strings.Join(seen, ",") != "2,3" {
			t.Fatalf("ReplayAll = %+v, %v, saw %v", res, err, seen)
		}
	})
}

func TestReplayStopsWhenGateCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dlqtest.NewMemory(nil)
		defer s.Close()
		for range 5 {
			mustPut(t, s, dlq.Message{Queue: "q"})
		}
		var healthy atomic.Bool
		healthy.Store(true)
		n := 0
		r := newReplayer(t, s, func(context.Context, dlq.Message) error {
			n++
			if n == 2 {
				healthy.Store(false) // the target went down again
			}
			return nil
		}, dlq.ReplayerConfig{Gate: healthy.Load, Concurrency: 1})
		res, err := r.ReplayAll(context.Background())
		if !errors.Is(err, dlq.ErrUnhealthy) || res.Replayed != 2 {
			t.Fatalf("ReplayAll = %+v, %v; want 2 replayed then ErrUnhealthy", res, err)
		}
	})
}

func TestReplayerWithBoltStore(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		s, err := dlq.OpenBolt(filepath.Join(dir, "dlq.db"), dlq.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 20 {
			mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
		}
		var calls atomic.Int32
		r := newReplayer(t, s, func(_ context.Context, m dlq.Message) error {
			if calls.Add(1)%3 == 0 {
				return errors.New("flaky")
			}
			return nil
		}, dlq.ReplayerConfig{Backoff: func(int) time.Duration { return time.Second }})
		stop := run(t, r)
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		if ready, parked := depth(t, s); ready != 0 || parked != 0 {
			t.Fatalf("%d ready, %d parked left", ready, parked)
		}
		if st := r.Stats(); st.Replayed != 20 || st.Failed == 0 {
			t.Fatalf("Stats = %+v", st)
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReplayerSnapshot(t *testing.T) {
	s := dlqtest.NewMemory(nil)
	defer s.Close()
	mustPut(t, s, dlq.Message{Queue: "q"})
	mustPut(t, s, dlq.Message{Queue: "q", State: dlq.StateParked})
	r := newReplayer(t, s, func(context.Context, dlq.Message) error { return nil }, dlq.ReplayerConfig{})
	snap, err := r.Snapshot(context.Background())
	if err != nil || snap.Queue.Queue != "q" || snap.Queue.Ready != 1 || snap.Queue.Parked != 1 || snap.Queue.OldestReady.IsZero() || snap.Replayer != (dlq.ReplayerStats{}) {
		t.Fatalf("Snapshot = %+v, %v", snap, err)
	}
	r2 := newReplayer(t, dlqtest.NewMemory(nil), func(context.Context, dlq.Message) error { return nil }, dlq.ReplayerConfig{})
	if snap, err := r2.Snapshot(context.Background()); err != nil || snap.Queue.Queue != "q" || snap.Queue.Depth() != 0 {
		t.Fatalf("Snapshot of an empty queue = %+v, %v", snap, err)
	}
}

func TestNewReplayerValidates(t *testing.T) {
	s := dlqtest.NewMemory(nil)
	h := func(context.Context, dlq.Message) error { return nil }
	for _, tc := range []struct {
		store dlq.Store
		queue string
		h     dlq.Handler
		cfg   dlq.ReplayerConfig
		want  string
	}{
		{nil, "q", h, dlq.ReplayerConfig{}, "needs a Store"},
		{s, "q", nil, dlq.ReplayerConfig{}, "needs a Handler"},
		{s, "", h, dlq.ReplayerConfig{}, "queue name"},
		{s, "q", h, dlq.ReplayerConfig{MaxReplays: -1}, "ReplayerConfig.MaxReplays must be >= 0, got -1"},
		{s, "q", h, dlq.ReplayerConfig{Concurrency: -2}, "ReplayerConfig.Concurrency must be >= 0, got -2"},
		{s, "q", h, dlq.ReplayerConfig{PollInterval: -time.Second}, "ReplayerConfig.PollInterval must be >= 0, got -1s"},
		{s, "q", h, dlq.ReplayerConfig{Lease: -time.Second}, "ReplayerConfig.Lease must be >= 0, got -1s"},
	} {
		_, err := dlq.NewReplayer(tc.store, tc.queue, tc.h, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewReplayer(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestOutcomeAndStateStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{dlq.OutcomeReplayed.String(), "replayed"},
		{dlq.OutcomeReleased.String(), "released"},
		{dlq.Outcome(9).String(), "Outcome(9)"},
		{dlq.StateParked.String(), "parked"},
		{dlq.State(9).String(), "State(9)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
