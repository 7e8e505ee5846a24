package issues

import (
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/window"
)

// TestWindowBucketsClockBackAndForth: with 4 buckets of 1s,
//
//	Record(t0+9s, ok); Record(t0+2s, failure); Counts(t0+9s)
//
// returned 2 calls and 1 failure, counting an outcome 7s older than the 4s
// window. Buckets expired old buckets only when the current bucket changed
// slice, and after the clock had gone back and come forward again the
// current bucket (slice 9) was still up to date. Found by the rapid
// property test of internal/window. Fixed by expiring whenever the slice
// differs from the one last seen.
func TestWindowBucketsClockBackAndForth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := window.NewBuckets(4*time.Second, 4)
	b.RecordAt(t0.Add(9*time.Second), 0)
	b.RecordAt(t0.Add(2*time.Second), window.Failure)
	if got, want := b.CountsAt(t0.Add(9*time.Second)), (window.Counts{Calls: 1}); got != want {
		t.Fatalf("Counts = %+v, want %+v: the failure at +2s is older than the window at +9s", got, want)
	}
}
