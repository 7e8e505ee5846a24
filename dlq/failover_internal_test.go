package dlq

import (
	"testing"
	"time"
)

// Merging two stores' listings keeps ID order, counts a message in both
// once and stops at the limit.
func TestMergeByID(t *testing.T) {
	m := func(b byte) Message { return Message{ID: ID{b}} }
	got := mergeByID([]Message{m(1), m(3), m(5)}, []Message{m(2), m(3), m(6)}, 4)
	want := []byte{1, 2, 3, 5}
	if len(got) != len(want) {
		t.Fatalf("merged %d messages, want %d", len(got), len(want))
	}
	for i, b := range want {
		if got[i].ID != (ID{b}) {
			t.Fatalf("merged[%d] = %v, want %v", i, got[i].ID, ID{b})
		}
	}
}

// Merging stats sums the counts of a queue in both stores and keeps the
// earliest oldest times, a zero time counting as none.
func TestMergeStats(t *testing.T) {
	t1 := time.Unix(100, 0)
	t2 := time.Unix(200, 0)
	got := mergeStats(
		[]QueueStats{{Queue: "b", Ready: 1, OldestReady: t2}, {Queue: "a", Parked: 2, OldestParked: t2}},
		[]QueueStats{{Queue: "b", Ready: 3, Parked: 1, OldestReady: t1, OldestParked: t2, Bytes: 7}},
	)
	if len(got) != 2 || got[0].Queue != "a" || got[1].Queue != "b" {
		t.Fatalf("merged queues %+v, want a then b", got)
	}
	b := got[1]
	if b.Ready != 4 || b.Parked != 1 || b.Bytes != 7 || !b.OldestReady.Equal(t1) || !b.OldestParked.Equal(t2) {
		t.Fatalf("merged b = %+v", b)
	}
}
