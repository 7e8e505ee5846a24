package window

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is aligned to every bucket width used below, so bucket boundaries fall
// on round offsets from it.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	ok   = uint8(0)
	fail = Failure
	slow = Slow
	both = Failure | Slow
)

func TestCountsRates(t *testing.T) {
	tests := []struct {
		c          Counts
		fail, slow float64
	}{
		{Counts{}, 0, 0},
		{Counts{Calls: 4}, 0, 0},
		{Counts{Calls: 4, Failures: 1, Slow: 3}, 0.25, 0.75},
		{Counts{Calls: 2, Failures: 2, Slow: 2}, 1, 1},
	}
	for i, tt := range tests {
		if got := tt.c.FailureRate(); got != tt.fail {
			t.Errorf("case %d: FailureRate() = %v, want %v", i, got, tt.fail)
		}
		if got := tt.c.SlowRate(); got != tt.slow {
			t.Errorf("case %d: SlowRate() = %v, want %v", i, got, tt.slow)
		}
	}
}

func TestRingSteps(t *testing.T) {
	r := NewRing(3)
	if r.Size() != 3 {
		t.Fatalf("Size() = %d, want 3", r.Size())
	}
	steps := []struct {
		record uint8
		want   Counts
	}{
		{fail, Counts{1, 1, 0}},
		{slow, Counts{2, 1, 1}},
		{ok, Counts{3, 1, 1}},
		{both, Counts{3, 1, 2}}, // evicts the first failure
		{ok, Counts{3, 1, 1}},   // evicts the slow call
		{ok, Counts{3, 1, 1}},   // evicts a success
		{ok, Counts{3, 0, 0}},   // evicts the failed slow call
		{fail, Counts{3, 1, 0}},
	}
	for i, s := range steps {
		r.Record(s.record)
		if got := r.Counts(); got != s.want {
			t.Fatalf("step %d: after Record(%d) Counts() = %+v, want %+v", i, s.record, got, s.want)
		}
	}
	r.Reset()
	if got := r.Counts(); got != (Counts{}) {
		t.Fatalf("after Reset Counts() = %+v, want zero", got)
	}
	// After a Reset the ring fills from empty again: nothing stale is evicted.
	r.Record(fail)
	r.Record(fail)
	if got, want := r.Counts(), (Counts{2, 2, 0}); got != want {
		t.Fatalf("after Reset and two failures Counts() = %+v, want %+v", got, want)
	}
}

func TestRingSizeBelowOne(t *testing.T) {
	for _, size := range []int{0, -5} {
		r := NewRing(size)
		if r.Size() != 1 {
			t.Fatalf("NewRing(%d).Size() = %d, want 1", size, r.Size())
		}
		r.Record(fail)
		r.Record(ok)
		if got, want := r.Counts(), (Counts{1, 0, 0}); got != want {
			t.Fatalf("NewRing(%d): Counts() = %+v, want %+v (only the last outcome)", size, got, want)
		}
	}
}

// bstep is one step against a Buckets: record flags at offset at from t0,
// or, when query is set, read the counts at that offset.
type bstep struct {
	at     time.Duration
	query  bool
	record uint8
	want   Counts // checked on query steps
}

func rec(at time.Duration, flags uint8) bstep { return bstep{at: at, record: flags} }
func query(at time.Duration, calls, failures, slow int64) bstep {
	return bstep{at: at, query: true, want: Counts{calls, failures, slow}}
}

func runBuckets(t *testing.T, b *Buckets, base time.Time, steps []bstep) {
	t.Helper()
	for i, s := range steps {
		now := base.Add(s.at)
		if !s.query {
			b.RecordAt(now, s.record)
			continue
		}
		if got := b.CountsAt(now); got != s.want {
			t.Fatalf("step %d: Counts(t0 %+d ns) = %+v, want %+v", i, s.at.Nanoseconds(), got, s.want)
		}
	}
}

func TestBucketsExpiryAtExactBoundaries(t *testing.T) {
	// 10 s in 10 buckets of 1 s: an outcome recorded in slice [k s, k+1 s)
	// is counted until, and not at, (k+10) s.
	const s, ms, ns = time.Second, time.Millisecond, time.Nanosecond
	b := NewBuckets(10*s, 10)
	if b.Span() != 10*s {
		t.Fatalf("Span() = %v, want 10s", b.Span())
	}
	runBuckets(t, b, t0, []bstep{
		query(0, 0, 0, 0),
		rec(0, fail),
		rec(s-ns, slow), // last nanosecond of the first bucket
		rec(s, ok),      // first nanosecond of the second
		query(s, 3, 1, 1),
		query(10*s-ns, 3, 1, 1), // the first bucket's last instant in the window
		query(10*s, 1, 0, 0),    // it leaves whole, both its outcomes at once
		query(11*s-ns, 1, 0, 0),
		query(11*s, 0, 0, 0),
		rec(11*s+500*ms, both),
		query(20*s+999*ms, 1, 1, 1),
		query(21*s, 0, 0, 0),
	})
}

func TestBucketsLongGapEmptiesWindow(t *testing.T) {
	const s = time.Second
	b := NewBuckets(10*s, 10)
	runBuckets(t, b, t0, []bstep{
		rec(0, fail), rec(3*s, fail), rec(9*s, ok),
		query(9*s, 3, 2, 0),
		// A jump of many spans lands in the same ring slot as a live bucket
		// (epoch 1009 ≡ 9 mod 10): that bucket must be emptied, not reused.
		rec(1009*s, ok),
		query(1009*s, 1, 0, 0),
		query(1018*s, 1, 0, 0),
		query(1019*s, 0, 0, 0),
	})
}

func TestBucketsRecordExpiresOldBuckets(t *testing.T) {
	// Recording into the current bucket must also expire the buckets that
	// left the window since the last call.
	const s = time.Second
	b := NewBuckets(4*s, 4)
	runBuckets(t, b, t0, []bstep{
		rec(0, fail), rec(1*s, fail), rec(2*s, fail), rec(3*s, fail),
		rec(5*s, ok), // epochs 0 and 1 leave
		query(5*s, 3, 2, 0),
	})
}

func TestBucketsClockBackwards(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name  string
		steps []bstep
	}{
		{
			// A step back within the current bucket changes nothing.
			name: "within bucket",
			steps: []bstep{
				rec(5*s+900*time.Millisecond, fail),
				rec(5*s+100*time.Millisecond, ok),
				query(5*s, 2, 1, 0),
			},
		},
		{
			// A step back by less than the span keeps every bucket: outcomes
			// "from the future" stay counted until their slot is reused.
			name: "less than span",
			steps: []bstep{
				rec(5*s, fail), rec(7*s, fail),
				query(6*s, 2, 2, 0),
				rec(6*s, ok),
				query(7*s, 3, 2, 0),
				query(8*s, 3, 2, 0),
				query(9*s, 2, 1, 0),  // epoch 5 leaves
				query(10*s, 1, 1, 0), // epoch 6
				query(11*s, 0, 0, 0), // epoch 7
			},
		},
		{
			// Going back to a slice that shares a ring slot with a live
			// bucket (epoch 9 → 5, slot 1 of 4) drops that bucket: it
			// cannot be told apart from an expired one.
			name: "collides with live bucket",
			steps: []bstep{
				rec(8*s, slow), rec(9*s, fail),
				query(5*s, 1, 0, 1),
				rec(5*s, ok),
				query(5*s, 2, 0, 1),
			},
		},
		{
			// Going back more than a span and then forward again: the
			// outcome recorded in the past must leave the window as soon as
			// the clock is back, even though the current slot is unchanged.
			name: "back and forth",
			steps: []bstep{
				rec(9*s, ok),   // epoch 9, slot 1
				rec(2*s, fail), // epoch 2, slot 2: 7 s older than epoch 9
				query(9*s, 1, 0, 0),
				query(10*s, 1, 0, 0),
				query(13*s, 0, 0, 0),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runBuckets(t, NewBuckets(4*s, 4), t0, tt.steps)
		})
	}
}

func TestBucketsSpanSmallerThanBucketCount(t *testing.T) {
	// 5 ns cannot be split into 10 buckets: it becomes 5 buckets of 1 ns.
	b := NewBuckets(5, 10)
	if b.Span() != 5 || len(b.buckets) != 5 {
		t.Fatalf("NewBuckets(5ns, 10): Span() = %v with %d buckets, want 5ns in 5", b.Span(), len(b.buckets))
	}
	runBuckets(t, b, t0, []bstep{
		rec(0, fail), rec(1, ok), rec(4, slow),
		query(4, 3, 1, 1),
		query(5, 2, 0, 1),
		query(6, 1, 0, 1),
		query(9, 0, 0, 0),
	})

	// A span of 1 ns is one bucket of 1 ns.
	one := NewBuckets(1, 4)
	if one.Span() != 1 {
		t.Fatalf("NewBuckets(1ns, 4).Span() = %v, want 1ns", one.Span())
	}
	runBuckets(t, one, t0, []bstep{
		rec(0, fail),
		query(0, 1, 1, 0),
		query(1, 0, 0, 0),
	})
}

func TestBucketsSpanRounding(t *testing.T) {
	// A span that does not divide by n is rounded down to n equal buckets.
	b := NewBuckets(10, 3)
	if b.Span() != 9 {
		t.Fatalf("NewBuckets(10ns, 3).Span() = %v, want 9ns", b.Span())
	}
	for _, n := range []int{0, -1} {
		if got := NewBuckets(time.Second, n); len(got.buckets) != 1 || got.Span() != time.Second {
			t.Fatalf("NewBuckets(1s, %d): %d buckets spanning %v, want 1 of 1s", n, len(got.buckets), got.Span())
		}
	}
}

func TestBucketsBeforeUnixEpoch(t *testing.T) {
	// Times before 1970 have negative Unix nanoseconds; slices must still be
	// width-aligned (floor, not truncation toward zero) and empty buckets
	// told apart from a bucket of a negative slice.
	const s = time.Second
	base := time.Unix(0, 0)
	runBuckets(t, NewBuckets(2*s, 2), base, []bstep{
		rec(-1500*time.Millisecond, fail), // slice -2
		rec(-500*time.Millisecond, ok),    // slice -1
		query(-500*time.Millisecond, 2, 1, 0),
		query(0, 1, 0, 0),
		query(500*time.Millisecond, 1, 0, 0),
		query(s, 0, 0, 0),
		rec(3*s, fail),
		query(3*s, 1, 1, 0),
	})
}

func TestBucketsReset(t *testing.T) {
	const s = time.Second
	b := NewBuckets(10*s, 10)
	runBuckets(t, b, t0, []bstep{rec(0, fail), rec(s, slow), query(s, 2, 1, 1)})
	b.Reset()
	runBuckets(t, b, t0, []bstep{
		query(s, 0, 0, 0),
		rec(s, ok),
		query(s, 1, 0, 0),
	})
	b.Reset()
	// After a Reset, time may start anywhere, earlier included.
	runBuckets(t, b, t0, []bstep{rec(-s, fail), query(-s, 1, 1, 0)})
}

func TestBucketsNoAllocs(t *testing.T) {
	b := NewBuckets(10*time.Second, 10)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(300 * time.Millisecond)
		b.RecordAt(now, Failure)
		_ = b.CountsAt(now)
	})
	if allocs != 0 {
		t.Fatalf("Record+Counts allocate %v times per call, want 0", allocs)
	}
}

func BenchmarkRingRecord(b *testing.B) {
	r := NewRing(100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Record(uint8(i) & Failure)
	}
}

func BenchmarkBucketsRecord(b *testing.B) {
	w := NewBuckets(60*time.Second, 10)
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Millisecond)
		w.RecordAt(now, uint8(i)&Failure)
	}
}
