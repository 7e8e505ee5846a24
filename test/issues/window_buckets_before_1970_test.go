package issues

import (
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/window"
)

// TestWindowBucketsBefore1970: for times before 1970 (negative Unix
// nanoseconds) Buckets computed the time slice by truncating division, so
// slice 0 was two buckets wide, and it marked empty buckets with slice -1,
// so a bucket holding slice -1 was taken for empty: its counts were never
// expired and were carried into the next slice stored there. With 2
// buckets of 1s,
//
//	Record(-1.5s, failure); Record(-0.5s, ok); Counts(0s)
//
// returned 2 calls where the failure (slice -2) had left the window.
// Found by the rapid property test of internal/window. Fixed by flooring
// the division and marking empty buckets with math.MinInt64.
func TestWindowBucketsBefore1970(t *testing.T) {
	epoch := time.Unix(0, 0)
	b := window.NewBuckets(2*time.Second, 2)
	b.RecordAt(epoch.Add(-1500*time.Millisecond), window.Failure)
	b.RecordAt(epoch.Add(-500*time.Millisecond), 0)
	if got, want := b.CountsAt(epoch), (window.Counts{Calls: 1}); got != want {
		t.Fatalf("Counts(1970-01-01) = %+v, want %+v", got, want)
	}
	if got := b.CountsAt(epoch.Add(time.Second)); got != (window.Counts{}) {
		t.Fatalf("Counts(+1s) = %+v, want empty", got)
	}
}
