package bulkhead

import (
	"slices"
	"testing"
	"time"
)

// A permit freed without a time (Release, an Update that raises the limit)
// goes to the head of the queue whatever its ticket's deadline: only the
// methods given the time, ReleaseAt and ExpireAt, pass over or take out a
// ticket whose wait ran out.
func TestDispatchWithoutTimeGrantsTheHead(t *testing.T) {
	b := mustNew(t, Config{Name: "db", MaxConcurrent: 1, MaxQueue: 3, MaxWait: time.Second})
	if _, ok, _ := b.EnqueueAt(at(0)); !ok {
		t.Fatal("first Enqueue was not admitted")
	}
	t1, _, _ := b.EnqueueAt(at(0))
	t2, _, _ := b.EnqueueAt(at(0))
	t3, _, _ := b.EnqueueAt(at(0))
	b.Release()
	if g := b.Granted(); !slices.Equal(g, []Ticket{t1}) {
		t.Fatalf("Release granted %v, want the first ticket", g)
	}
	cfg := b.Config()
	cfg.MaxConcurrent = 2
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if g := b.Granted(); !slices.Equal(g, []Ticket{t2}) {
		t.Fatalf("Update granted %v, want the second ticket", g)
	}
	if g := b.ReleaseAt(at(2 * time.Second)); len(g) != 0 {
		t.Fatalf("ReleaseAt past every deadline granted %v", g)
	}
	if exp, _ := b.ExpireAt(at(2 * time.Second)); !slices.Equal(exp, []Ticket{t3}) {
		t.Fatalf("ExpireAt = %v, want the third ticket, passed over by ReleaseAt", exp)
	}
}
