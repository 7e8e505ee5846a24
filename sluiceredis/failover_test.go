package sluiceredis_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

// failoverSetup is a Failover over a Redis store and a Bolt file, with the
// two stores kept at hand to look into them directly.
type failoverSetup struct {
	f      *dlq.Failover
	redis  *sluiceredis.Store // a second instance on the primary's prefix
	bolt   *dlq.Bolt          // the Failover's own local store
	prefix string
}

// newFailover makes a Failover whose primary is a Store on srv with a
// prefix of its own (and the given timeout) and whose local store is a
// Bolt file in dir (a new temporary directory if empty).
func newFailover(t *testing.T, srv *redistest.Server, dir string, timeout time.Duration, clock sluice.Clock) failoverSetup {
	t.Helper()
	prefix := fmt.Sprintf("sluice:{failover-%d}", prefixes.Add(1))
	primary := newStore(t, srv, sluiceredis.StoreOptions{Prefix: prefix, Timeout: timeout, Clock: clock})
	if dir == "" {
		dir = t.TempDir()
	}
	bolt, err := dlq.OpenBolt(filepath.Join(dir, "local.db"), dlq.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	f, err := sluiceredis.NewFailover(primary, bolt, dlq.FailoverOptions{Timeout: timeout, RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return failoverSetup{f: f, redis: newStore(t, srv, sluiceredis.StoreOptions{Prefix: prefix}), bolt: bolt, prefix: prefix}
}

// all lists every message of s, page by page.
func all(t *testing.T, s dlq.Store) []dlq.Message {
	t.Helper()
	var out []dlq.Message
	q := dlq.Query{Limit: 100}
	for range 1000 {
		ms, err := s.List(bg, q)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(ms) == 0 {
			return out
		}
		out = append(out, ms...)
		q.After = ms[len(ms)-1].ID
	}
	t.Fatal("List does not end")
	return nil
}

func idsOf(ms []dlq.Message) []dlq.ID {
	out := make([]dlq.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// waitShared polls until f is back in shared mode, for at most 10s.
func waitShared(t *testing.T, f *dlq.Failover) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.Degraded(); {
		if time.Now().After(deadline) {
			t.Fatalf("still degraded 10s after Redis came back (last error %v, counts %+v)", f.LastError(), f.Counts())
		}
		time.Sleep(5 * time.Millisecond) // polling the migrator's progress, bounded above
	}
}

// With Redis up the Failover passes the Store conformance suite.
func TestFailoverConformance(t *testing.T) {
	srv := redistest.Start(t)
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		return newFailover(t, srv, "", 2*time.Second, clock).f
	})
}

// Redis killed: puts keep succeeding, into bolt, each within the timeout
// and a margin; reads show them, claims hand them out and acknowledgements
// reach them. After a restart the migrator moves them to Redis with their
// IDs and states, bolt empties, the store is shared again by itself, and
// nothing is lost.
func TestFailoverRedisKilled(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 200 * time.Millisecond
	s := newFailover(t, srv, "", timeout, nil)
	var want []dlq.ID
	putN := func(n int, what string) {
		var slowest time.Duration
		for i := range n {
			start := time.Now()
			id, err := s.f.Put(bg, dlq.Message{Queue: "q", Payload: []byte(fmt.Sprintf("%s %d", what, i))})
			if err != nil {
				t.Fatalf("%s: Put %d: %v", what, i, err)
			}
			el := time.Since(start)
			if el > timeout+300*time.Millisecond {
				t.Fatalf("%s: Put %d took %v with a %v timeout", what, i, el, timeout)
			}
			slowest = max(slowest, el)
			want = append(want, id)
		}
		t.Logf("%s: %d puts, the slowest %v", what, n, slowest)
	}
	putN(20, "shared")
	if s.f.Degraded() || len(all(t, s.bolt)) != 0 || len(all(t, s.redis)) != 20 {
		t.Fatalf("with Redis up: degraded %v, %d in bolt, %d in Redis; want 0 and 20", s.f.Degraded(), len(all(t, s.bolt)), len(all(t, s.redis)))
	}

	srv.Kill()
	putN(50, "degraded")
	if !s.f.Degraded() || !errors.Is(s.f.LastError(), dlq.ErrPrimaryDown) {
		t.Fatalf("Redis killed: degraded %v, last error %v", s.f.Degraded(), s.f.LastError())
	}
	if c := s.f.Counts(); c.LocalPuts != 50 {
		t.Fatalf("counts %+v, want 50 local puts", c)
	}
	if got := len(all(t, s.f)); got != 50 {
		t.Fatalf("List while Redis is down shows %d, want the 50 local messages", got)
	}
	if st, err := s.f.Stats(bg); err != nil || len(st) != 1 || st[0].Ready != 50 {
		t.Fatalf("Stats while Redis is down = %+v, %v; want 50 ready", st, err)
	}
	// Replay goes on from the local messages: claim 3, acknowledge one,
	// fail one, park one.
	now := time.Now()
	claimed, err := s.f.ClaimAt(bg, "q", now, time.Hour, 3)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("ClaimAt while Redis is down = %d messages, %v; want 3", len(claimed), err)
	}
	if err := s.f.Delete(bg, claimed[0].ID); err != nil {
		t.Fatalf("Delete of a local message: %v", err)
	}
	if err := s.f.Fail(bg, claimed[1].ID, dlq.ReplayFailure{At: now, Error: "503", NextReplay: now.Add(time.Minute)}); err != nil {
		t.Fatalf("Fail of a local message: %v", err)
	}
	if err := s.f.Park(bg, claimed[2].ID); err != nil {
		t.Fatalf("Park of a local message: %v", err)
	}
	want = slices.DeleteFunc(want, func(id dlq.ID) bool { return id == claimed[0].ID })
	// A message that is only in Redis cannot be changed meanwhile.
	if err := s.f.Delete(bg, want[0]); !errors.Is(err, dlq.ErrPrimaryDown) {
		t.Fatalf("Delete of a message in the dead Redis = %v, want an error saying it is unreachable", err)
	}

	srv.Restart()
	waitShared(t, s.f)
	inRedis := all(t, s.redis)
	if got := idsOf(inRedis); !slices.Equal(got, want) {
		t.Fatalf("after the restart Redis holds %d messages, want the %d put (IDs kept)", len(got), len(want))
	}
	if left := all(t, s.bolt); len(left) != 0 {
		t.Fatalf("%d messages left in bolt after the migration", len(left))
	}
	if c := s.f.Counts(); c.Moved != 49 {
		t.Fatalf("counts %+v, want 49 moved", c)
	}
	t.Logf("after the restart: %d in Redis, none in bolt, counts %+v", len(inRedis), s.f.Counts())
	failed, err := s.redis.Get(bg, claimed[1].ID)
	if err != nil || failed.Attempts != 1 || failed.LastError != "503" || !failed.NextReplay.Equal(now.Add(time.Minute)) {
		t.Fatalf("the failed message in Redis = %+v, %v; want its failure kept", failed, err)
	}
	if parked, err := s.redis.Get(bg, claimed[2].ID); err != nil || parked.State != dlq.StateParked {
		t.Fatalf("the parked message in Redis = %+v, %v", parked, err)
	}
	// Shared again: a put goes to Redis.
	id, err := s.f.Put(bg, dlq.Message{Queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.redis.Get(bg, id); err != nil {
		t.Fatalf("a put after the recovery is not in Redis: %v", err)
	}
}

// A hung Redis (SIGSTOP) costs a put the timeout, once: the put goes to
// bolt, later ones go there at once, and all of them reach Redis after it
// resumes. The put that timed out was sent, so Redis runs it when it
// resumes: that one message may be there twice (once under the ID Redis
// gave it, never answered, once under bolt's).
func TestFailoverRedisHung(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	s := newFailover(t, srv, "", timeout, nil)
	if _, err := s.f.Put(bg, dlq.Message{Queue: "q"}); err != nil { // connected
		t.Fatal(err)
	}
	srv.Pause()
	for i := range 10 {
		start := time.Now()
		if _, err := s.f.Put(bg, dlq.Message{Queue: "q"}); err != nil {
			t.Fatalf("Put %d to a hung Redis: %v", i, err)
		}
		if el := time.Since(start); el > timeout+300*time.Millisecond {
			t.Fatalf("Put %d took %v with a %v timeout", i, el, timeout)
		}
	}
	if !s.f.Degraded() || s.f.Counts().LocalPuts != 10 {
		t.Fatalf("degraded %v, counts %+v; want degraded with 10 local puts", s.f.Degraded(), s.f.Counts())
	}
	local := idsOf(all(t, s.bolt))
	srv.Resume()
	waitShared(t, s.f)
	inRedis := idsOf(all(t, s.redis))
	if n := len(inRedis); n != 11 && n != 12 {
		t.Fatalf("Redis holds %d messages after resuming, want 11 (12 with the timed-out put)", n)
	}
	for _, id := range local {
		if !slices.Contains(inRedis, id) {
			t.Fatalf("local message %s did not reach Redis", id)
		}
	}
}

// Redis's answers are not outages: a message too large or a full queue is
// refused, not put into bolt.
func TestFailoverAnswersAreNotOutages(t *testing.T) {
	srv := redistest.Start(t)
	prefix := fmt.Sprintf("sluice:{failover-%d}", prefixes.Add(1))
	primary := newStore(t, srv, sluiceredis.StoreOptions{Prefix: prefix, MaxMessageBytes: 100, MaxQueueMessages: 1})
	bolt, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "local.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := sluiceredis.NewFailover(primary, bolt, dlq.FailoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Put(bg, dlq.Message{Queue: "q", Payload: make([]byte, 200)}); !errors.Is(err, dlq.ErrTooLarge) {
		t.Fatalf("Put of 200 bytes over a 100-byte limit = %v, want ErrTooLarge", err)
	}
	if _, err := f.Put(bg, dlq.Message{Queue: "q"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(bg, dlq.Message{Queue: "q"}); !errors.Is(err, dlq.ErrQueueFull) {
		t.Fatalf("Put into a full queue = %v, want ErrQueueFull", err)
	}
	if _, err := f.Put(bg, dlq.Message{}); !errors.Is(err, dlq.ErrInvalidMessage) {
		t.Fatalf("Put without a queue = %v, want ErrInvalidMessage", err)
	}
	if c := f.Counts(); c.LocalPuts != 0 || f.LastError() != nil {
		t.Fatalf("counts %+v, last error %v; want no local put and no failure", c, f.LastError())
	}
}

// A crash between the copy to Redis and the local delete leaves a message
// in both; the next Failover on the same stores finds it in bolt, and the
// import (keyed by ID) stores nothing twice: Redis holds it once, bolt
// none.
func TestFailoverCrashBetweenCopyAndDelete(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	prefix := fmt.Sprintf("sluice:{failover-%d}", prefixes.Add(1))
	bolt, err := dlq.OpenBolt(filepath.Join(dir, "local.db"), dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := bolt.Put(bg, dlq.Message{Queue: "q", Payload: []byte("x"), Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bolt.Get(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	primary := newStore(t, srv, sluiceredis.StoreOptions{Prefix: prefix})
	if err := primary.Import(bg, m); err != nil { // the copy made before the crash
		t.Fatal(err)
	}
	f, err := sluiceredis.NewFailover(primary, bolt, dlq.FailoverOptions{RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitShared(t, f)
	got := all(t, newStore(t, srv, sluiceredis.StoreOptions{Prefix: prefix}))
	if len(got) != 1 || got[0].ID != id || got[0].Attempts != 2 {
		t.Fatalf("Redis holds %+v, want the one message %s", got, id)
	}
	if left, err := bolt.List(bg, dlq.Query{}); err != nil || len(left) != 0 {
		t.Fatalf("bolt holds %d messages (%v), want none", len(left), err)
	}
}

// Import keeps the ID and fields, does nothing for an ID stored already,
// and refuses the zero ID.
func TestStoreImport(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, sluiceredis.StoreOptions{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	var gen dlq.IDGenerator
	m := dlq.Message{ID: gen.NewAt(now), Queue: "q", Payload: []byte("p"), Attempts: 3, FirstFailure: now, LastFailure: now, NextReplay: now, State: dlq.StateParked, LastError: "e"}
	for range 2 {
		if err := s.Import(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(bg, m.ID)
	if err != nil || got.Attempts != 3 || got.State != dlq.StateParked || got.LastError != "e" || !got.NextReplay.Equal(now) {
		t.Fatalf("imported message = %+v, %v", got, err)
	}
	if n := len(all(t, s)); n != 1 {
		t.Fatalf("two imports of one ID stored %d messages", n)
	}
	if err := s.Import(bg, dlq.Message{Queue: "q"}); !errors.Is(err, dlq.ErrInvalidMessage) {
		t.Fatalf("Import of the zero ID = %v, want ErrInvalidMessage", err)
	}
}

// A Replayer over the Failover goes on replaying while Redis is down: it
// claims the messages put into bolt meanwhile and acknowledges them there;
// the messages that were in Redis wait, and are replayed once it is back.
// Every message is replayed once and none is left.
func TestFailoverReplayGoesOnWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	s := newFailover(t, srv, "", 200*time.Millisecond, nil)
	put := func(what string, n int) {
		for i := range n {
			if _, err := s.f.Put(bg, dlq.Message{Queue: "q", Payload: []byte(fmt.Sprintf("%s %d", what, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("shared", 5)
	srv.Kill()
	put("local", 10)
	var mu sync.Mutex
	seen := map[string]int{}
	r, err := dlq.NewReplayer(s.f, "q", func(_ context.Context, m dlq.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Payload)]++
		return nil
	}, dlq.ReplayerConfig{PollInterval: 10 * time.Millisecond, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	replayed := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for p, c := range seen {
			if strings.HasPrefix(p, prefix) {
				n += c
			}
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s (%d local and %d shared replayed)", what, replayed("local"), replayed("shared"))
			}
			time.Sleep(5 * time.Millisecond) // polling the replayer's progress, bounded above
		}
	}
	waitFor("the local messages replayed while Redis is down", func() bool { return replayed("local") == 10 })
	if n := replayed("shared"); n != 0 {
		t.Fatalf("%d messages from the dead Redis were replayed", n)
	}
	// Each is deleted (locally) after its handler returns.
	waitFor("the replayed messages deleted from bolt", func() bool { return len(all(t, s.bolt)) == 0 })
	if !s.f.Degraded() {
		t.Fatal("the store left degraded mode with Redis down")
	}
	srv.Restart()
	waitFor("the Redis messages replayed after the restart", func() bool { return replayed("shared") == 5 })
	waitShared(t, s.f)
	waitFor("Redis emptied", func() bool { return len(all(t, s.redis)) == 0 })
	mu.Lock()
	defer mu.Unlock()
	for p, c := range seen {
		if c != 1 {
			t.Fatalf("%q replayed %d times", p, c)
		}
	}
	if len(seen) != 15 {
		t.Fatalf("replayed %d distinct messages, want 15", len(seen))
	}
}
