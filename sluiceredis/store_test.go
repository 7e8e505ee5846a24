package sluiceredis_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
	"github.com/sluice-go/sluice/internal/redistest"
	"github.com/sluice-go/sluice/sluiceredis"
)

var prefixes atomic.Int64

// newStore returns a Store on srv with a prefix of its own, so that stores
// sharing one server start empty and never meet.
func newStore(t *testing.T, srv *redistest.Server, opt sluiceredis.StoreOptions) *sluiceredis.Store {
	t.Helper()
	opt.Client = srv.Client()
	if opt.Prefix == "" {
		opt.Prefix = fmt.Sprintf("sluice:{dlq-%d}", prefixes.Add(1))
	}
	s, err := sluiceredis.NewStore(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The Redis store passes the same conformance suite as the bbolt store.
func TestStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		return newStore(t, srv, sluiceredis.StoreOptions{Clock: clock})
	})
}

// Two stores with their own clients on one prefix are one queue: what one
// puts the other lists, and concurrent claims from both hand each message
// to exactly one of them; a claim left by a crashed claimer comes back to
// the other when its lease ends.
func TestStoreSharedAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, sluiceredis.StoreOptions{Prefix: "sluice:{shared}"})
	b := newStore(t, srv, sluiceredis.StoreOptions{Prefix: "sluice:{shared}"})
	const n = 200
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		if _, err := s.Put(bg, dlq.Message{Queue: "q", Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := b.Stats(bg); err != nil || len(st) != 1 || st[0].Ready != n {
		t.Fatalf("Stats from b = %+v, %v; want %d ready", st, err, n)
	}
	now := time.Now()
	var mu sync.Mutex
	seen := map[dlq.ID]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		s := []*sluiceredis.Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ms, err := s.ClaimAt(bg, "q", now, time.Hour, 5)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct messages, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("message %s claimed %d times within its lease", id, k)
		}
	}
	// a "crashes" holding its claims; b takes them once the lease ends.
	if ms, _ := b.ClaimAt(bg, "q", now.Add(time.Hour-time.Nanosecond), time.Minute, n); len(ms) != 0 {
		t.Fatalf("claimed %d messages before the lease ended", len(ms))
	}
	ms, err := b.ClaimAt(bg, "q", now.Add(time.Hour), time.Minute, n)
	if err != nil || len(ms) != n {
		t.Fatalf("after the lease b claimed %d, %v; want %d", len(ms), err, n)
	}
}

// With appendfsync always, every Put that returned survives a SIGKILL of
// Redis; while Redis is down, calls fail with ErrUnavailable within the
// timeout, and the store works again once Redis is back.
//
// The timeout is a second: each Put before the kill waits for an fsync,
// which on a loaded machine can take longer than a short timeout would
// allow. The failing call's bound is the timeout plus half of it for the
// scheduling of a loaded machine.
func TestStoreDurableAcrossKill(t *testing.T) {
	srv := redistest.Start(t, redistest.AppendFsync("always"))
	s := newStore(t, srv, sluiceredis.StoreOptions{Timeout: time.Second})
	limit := s.Options().Timeout * 3 / 2
	var acked []dlq.ID
	for i := range 50 {
		id, err := s.Put(bg, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	srv.Kill()
	start := time.Now()
	_, err := s.Put(bg, dlq.Message{Queue: "q"})
	if el := time.Since(start); !errors.Is(err, sluiceredis.ErrUnavailable) || el > limit {
		t.Fatalf("Put with Redis down = %v after %v; want ErrUnavailable within %v", err, el, limit)
	}
	srv.Restart()
	for _, id := range acked {
		if _, err := s.Get(bg, id); err != nil {
			t.Fatalf("acknowledged message %s lost: %v", id, err)
		}
	}
	if _, err := s.Put(bg, dlq.Message{Queue: "q"}); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
}

// A hung Redis costs a call no more than the timeout.
func TestStoreTimeoutOnHungRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, sluiceredis.StoreOptions{Timeout: 50 * time.Millisecond})
	if _, err := s.Put(bg, dlq.Message{Queue: "q"}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	_, err := s.Stats(bg)
	if el := time.Since(start); !errors.Is(err, sluiceredis.ErrUnavailable) || el > 500*time.Millisecond {
		t.Fatalf("Stats on a hung Redis = %v after %v", err, el)
	}
}

func TestStoreLimits(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, sluiceredis.StoreOptions{MaxMessageBytes: 100, MaxQueueMessages: 2})
	if _, err := s.Put(bg, dlq.Message{Queue: "q", Payload: make([]byte, 101)}); !errors.Is(err, dlq.ErrTooLarge) {
		t.Fatalf("Put of 101 bytes = %v, want ErrTooLarge", err)
	}
	for range 2 {
		if _, err := s.Put(bg, dlq.Message{Queue: "q"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(bg, dlq.Message{Queue: "q"}); !errors.Is(err, dlq.ErrQueueFull) {
		t.Fatalf("third Put = %v, want ErrQueueFull", err)
	}
	if _, err := s.Put(bg, dlq.Message{Queue: "other"}); err != nil {
		t.Fatalf("another queue is full too: %v", err)
	}
	if _, err := sluiceredis.NewStore(sluiceredis.StoreOptions{}); err == nil {
		t.Fatal("NewStore without a client accepted")
	}
	if got := s.Options(); got.Timeout != 2*time.Second || got.MaxQueueMessages != 2 {
		t.Fatalf("Options() = %+v", got)
	}
}
