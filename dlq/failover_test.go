package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
)

// openFailoverBolt opens a Bolt file in a new temporary directory.
func openFailoverBolt(t *testing.T, clock sluice.Clock) *dlq.Bolt {
	t.Helper()
	s, err := dlq.OpenBolt(filepath.Join(t.TempDir(), "dlq.db"), dlq.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A Failover over two healthy stores passes the conformance suite: with
// the primary up it is the primary.
func TestFailoverConformance(t *testing.T) {
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		f, err := dlq.NewFailover(dlq.FailoverOptions{Primary: openFailoverBolt(t, clock), Local: openFailoverBolt(t, clock)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

// Messages left in the local store by an earlier run move to the primary
// (put anew: a Bolt primary is not an Importer) when a Failover starts.
func TestFailoverMovesEarlierLocalMessages(t *testing.T) {
	primary, local := openFailoverBolt(t, nil), openFailoverBolt(t, nil)
	for i := range 3 {
		if _, err := local.Put(context.Background(), dlq.Message{Queue: "q", Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := dlq.NewFailover(dlq.FailoverOptions{Primary: primary, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The first migrator pass runs at once; List merges both stores
	// meanwhile, so every message is listed once whatever the pass did.
	ms, err := f.List(context.Background(), dlq.Query{})
	if err != nil || len(ms) != 3 {
		t.Fatalf("List = %d messages, %v; want 3", len(ms), err)
	}
	for i, m := range ms {
		if len(m.Payload) != 1 || m.Payload[0] != byte(i) {
			t.Fatalf("message %d has payload %v", i, m.Payload)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); f.Degraded(); {
		if time.Now().After(deadline) {
			t.Fatalf("still degraded after 5s: %v, %+v", f.LastError(), f.Counts())
		}
		time.Sleep(time.Millisecond) // polling the migrator's progress, bounded above
	}
	if got, err := primary.List(context.Background(), dlq.Query{}); err != nil || len(got) != 3 {
		t.Fatalf("the primary holds %d messages (%v), want 3", len(got), err)
	}
	if got, err := local.List(context.Background(), dlq.Query{}); err != nil || len(got) != 0 {
		t.Fatalf("the local store holds %d messages (%v), want none", len(got), err)
	}
	if c := f.Counts(); c.Moved != 3 || c.LocalPuts != 0 {
		t.Fatalf("counts %+v, want 3 moved", c)
	}
}

func TestNewFailoverValidates(t *testing.T) {
	s := openFailoverBolt(t, nil)
	defer s.Close()
	for i, opt := range []dlq.FailoverOptions{
		{Local: s},
		{Primary: s},
		{Primary: s, Local: s, Timeout: -1},
		{Primary: s, Local: s, RetryInterval: -1},
		{Primary: s, Local: s, MigrateBatch: -1},
	} {
		if _, err := dlq.NewFailover(opt); err == nil {
			t.Errorf("case %d: NewFailover(%+v) accepted", i, opt)
		}
	}
}

// What counts as the primary being unreachable: anything but a store's
// answers and a context ended by the caller.
func TestDefaultUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), true},
		{fmt.Errorf("redis: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("x: %w", dlq.ErrQueueFull), false},
		{fmt.Errorf("x: %w", dlq.ErrTooLarge), false},
		{fmt.Errorf("x: %w", dlq.ErrInvalidMessage), false},
		{fmt.Errorf("x: %w", dlq.ErrNotFound), false},
		{dlq.ErrClosed, false},
		{context.Canceled, false},
	} {
		if got := dlq.DefaultUnavailable(tc.err); got != tc.want {
			t.Errorf("DefaultUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
