package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/sluicetest"
)

// A request that exhausted its retries goes to the dead-letter queue; an
// operator lists the queue and reads its depth and age.
func ExampleOpenBolt() {
	dir, _ := os.MkdirTemp("", "dlq-example")
	defer os.RemoveAll(dir)
	clock := sluicetest.NewFakeClock(time.Time{}) // 2026-01-01, for stable output

	s, err := dlq.OpenBolt(filepath.Join(dir, "dlq.db"), dlq.Options{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.Background()

	// Put returns once the message is on disk.
	_, err = s.Put(ctx, dlq.Message{
		Queue:     "agents",
		Payload:   []byte(`{"cmd":"reboot","agent":"a-17"}`),
		Headers:   map[string]string{"Method": "POST", "Path": "/agents/a-17/commands"},
		Attempts:  5,
		LastError: "dial tcp 10.0.0.17:9000: connection refused",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	clock.Advance(90 * time.Second)
	_, _ = s.Put(ctx, dlq.Message{Queue: "agents", Payload: []byte(`{"cmd":"update","agent":"a-3"}`)})

	msgs, _ := s.List(ctx, dlq.Query{Queue: "agents"})
	for _, m := range msgs {
		fmt.Printf("%s %s attempts=%d put=%s\n", m.State, m.Payload, m.Attempts, m.Enqueued().Format(time.TimeOnly))
	}
	stats, _ := s.Stats(ctx)
	for _, q := range stats {
		fmt.Printf("queue %s: depth %d, oldest %v\n", q.Queue, q.Depth(), q.OldestAgeAt(clock.Now()))
	}

	_, err = s.Put(ctx, dlq.Message{Queue: "agents", Payload: make([]byte, 2<<20)})
	fmt.Println(errors.Is(err, dlq.ErrTooLarge))
	// Output:
	// ready {"cmd":"reboot","agent":"a-17"} attempts=5 put=00:00:00
	// ready {"cmd":"update","agent":"a-3"} attempts=0 put=00:01:30
	// queue agents: depth 2, oldest 1m30s
	// true
}

// The Replayer sends due messages again while the target is healthy, and
// deletes each one only after the handler succeeded.
func ExampleReplayer_Run() {
	dir, _ := os.MkdirTemp("", "dlq-example")
	defer os.RemoveAll(dir)
	s, err := dlq.OpenBolt(filepath.Join(dir, "dlq.db"), dlq.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, cmd := range []string{"reboot a-17", "update a-3", "ping a-9"} {
		_, _ = s.Put(ctx, dlq.Message{Queue: "agents", Payload: []byte(cmd)})
	}

	seen := 0
	send := func(ctx context.Context, m dlq.Message) error {
		fmt.Println("sent", string(m.Payload))
		if seen++; seen == 3 {
			cancel() // enough for the example; a service runs until shutdown
		}
		return nil
	}
	agentsUp := func() bool { return true } // e.g. the agents breaker is closed
	r, err := dlq.NewReplayer(s, "agents", send, dlq.ReplayerConfig{Gate: agentsUp, Concurrency: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Run(ctx); err != nil {
		fmt.Println(err)
	}
	st := r.Stats()
	fmt.Printf("replayed %d, failed %d\n", st.Replayed, st.Failed)
	// Output:
	// sent reboot a-17
	// sent update a-3
	// sent ping a-9
	// replayed 3, failed 0
}

// An operator replays a queue on demand after fixing the target: parked
// messages too, each at most once, with the usual bookkeeping on failure.
func ExampleReplayer_ReplayAll() {
	dir, _ := os.MkdirTemp("", "dlq-example")
	defer os.RemoveAll(dir)
	s, err := dlq.OpenBolt(filepath.Join(dir, "dlq.db"), dlq.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.Background()
	_, _ = s.Put(ctx, dlq.Message{Queue: "db-writes", Payload: []byte("INSERT 1")})
	_, _ = s.Put(ctx, dlq.Message{Queue: "db-writes", Payload: []byte("INSERT 2"), State: dlq.StateParked})
	_, _ = s.Put(ctx, dlq.Message{Queue: "db-writes", Payload: []byte("bad row")})

	write := func(ctx context.Context, m dlq.Message) error {
		if string(m.Payload) == "bad row" {
			return errors.New("constraint violation")
		}
		return nil
	}
	r, _ := dlq.NewReplayer(s, "db-writes", write, dlq.ReplayerConfig{Concurrency: 1})
	res, err := r.ReplayAll(ctx)
	fmt.Printf("%+v %v\n", res, err)
	left, _ := s.List(ctx, dlq.Query{Queue: "db-writes"})
	for _, m := range left {
		fmt.Printf("left: %s replays=%d error=%q\n", m.Payload, m.Replays, m.LastError)
	}
	// Output:
	// {Replayed:2 Failed:1 Parked:0 Released:0 Skipped:0} <nil>
	// left: bad row replays=1 error="constraint violation"
}
