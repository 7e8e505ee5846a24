package window

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The reference model of both windows is the obvious one: a slice of every
// outcome recorded, filtered by the window when asked.

type entry struct {
	epoch int64 // the time slice the outcome was recorded in
	flags uint8
	seq   int // order of recording
}

func countOf(es []entry, keep func(entry) bool) Counts {
	var c Counts
	for _, e := range es {
		if keep(e) {
			c.add(e.flags, 1)
		}
	}
	return c
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

var flagsGen = rapid.SampledFrom([]uint8{0, Failure, Slow, Failure | Slow})

func TestRingMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 12).Draw(t, "size")
		r := NewRing(size)
		var model []uint8
		t.Repeat(map[string]func(*rapid.T){
			"record": func(t *rapid.T) {
				f := flagsGen.Draw(t, "flags")
				r.Record(f)
				model = append(model, f)
			},
			"reset": func(t *rapid.T) {
				r.Reset()
				model = model[:0]
			},
			"": func(t *rapid.T) {
				var want Counts
				for _, f := range model[max(0, len(model)-size):] {
					want.add(f, 1)
				}
				if got := r.Counts(); got != want {
					t.Fatalf("Counts() = %+v, model (last %d of %d outcomes) says %+v", got, size, len(model), want)
				}
			},
		})
	})
}

// bucketsHarness drives a Buckets and its model with one shared time.
type bucketsHarness struct {
	b       *Buckets
	n       int64
	width   int64
	now     time.Time
	entries []entry
	seq     int
	// For the lower bound under a clock that goes back.
	lastEpoch    int64
	sinceBackSeq int // entries recorded from this seq on came after the last step back
}

func newHarness(t *rapid.T) *bucketsHarness {
	span := time.Duration(rapid.Int64Range(1, 400).Draw(t, "span"))
	n := rapid.IntRange(1, 12).Draw(t, "n")
	b := NewBuckets(span, n)
	// Start near 2026 or near the Unix epoch, where Unix nanoseconds change
	// sign, so that bucket alignment is checked on both sides of zero.
	base := rapid.SampledFrom([]time.Time{t0, time.Unix(0, 0)}).Draw(t, "base")
	h := &bucketsHarness{
		b:     b,
		n:     int64(len(b.buckets)),
		width: b.width,
		now:   base.Add(time.Duration(rapid.Int64Range(-1000, 1000).Draw(t, "offset"))),
	}
	if want := int64(b.Span()); h.width*h.n != want || want > int64(span) || h.n > int64(n) {
		t.Fatalf("NewBuckets(%v, %d): %d buckets of %dns, Span() %v", span, n, h.n, h.width, b.Span())
	}
	h.lastEpoch = h.epoch()
	return h
}

func (h *bucketsHarness) epoch() int64 { return floorDiv(h.now.UnixNano(), h.width) }

// step draws a move of the clock: often to a bucket boundary or one
// nanosecond either side of it, sometimes by several spans.
func (h *bucketsHarness) step(t *rapid.T) time.Duration {
	w := h.width
	next := (floorDiv(h.now.UnixNano(), w) + 1) * w // the next boundary
	toBoundary := next - h.now.UnixNano()
	d := rapid.SampledFrom([]int64{
		0, 1, toBoundary - 1, toBoundary, toBoundary + 1, w, w * (h.n - 1), w * h.n, w*h.n + 1,
	}).Draw(t, "step")
	if rapid.IntRange(0, 9).Draw(t, "far") == 0 {
		d = rapid.Int64Range(0, 4*w*h.n).Draw(t, "far step")
	}
	return time.Duration(max(d, 0))
}

// observe notes the time of a call into the window, for the lower bound.
func (h *bucketsHarness) observe() {
	if e := h.epoch(); e < h.lastEpoch {
		h.sinceBackSeq = h.seq
		h.lastEpoch = e
	} else {
		h.lastEpoch = e
	}
}

func (h *bucketsHarness) record(t *rapid.T) {
	f := flagsGen.Draw(t, "flags")
	h.observe()
	h.b.RecordAt(h.now, f)
	h.entries = append(h.entries, entry{epoch: h.epoch(), flags: f, seq: h.seq})
	h.seq++
}

func (h *bucketsHarness) inWindow(e entry) bool {
	cur := h.epoch()
	return e.epoch > cur-h.n && e.epoch <= cur
}

func TestBucketsMatchModel(t *testing.T) {
	// Time only moves forward: Counts must be exactly the outcomes whose
	// slice is one of the last n slices, the current one included.
	rapid.Check(t, func(t *rapid.T) {
		h := newHarness(t)
		t.Repeat(map[string]func(*rapid.T){
			"record":  h.record,
			"advance": func(t *rapid.T) { h.now = h.now.Add(h.step(t)) },
			"reset": func(t *rapid.T) {
				h.b.Reset()
				h.entries = h.entries[:0]
			},
			"": func(t *rapid.T) {
				h.observe()
				want := countOf(h.entries, h.inWindow)
				if got := h.b.CountsAt(h.now); got != want {
					t.Fatalf("Counts(%v) = %+v, model says %+v (%d buckets of %dns, current slice %d, outcomes %v)",
						h.now.UnixNano(), got, want, h.n, h.width, h.epoch(), h.entries)
				}
			},
		})
	})
}

func TestBucketsClockBackwardsBounds(t *testing.T) {
	// The clock may also go back. Outcomes from "the future" may then be
	// kept or dropped, but the counts stay between two bounds:
	//   - never an outcome older than the window (as of the current time);
	//   - always every outcome in the window that was recorded after the
	//     clock last went back.
	rapid.Check(t, func(t *rapid.T) {
		h := newHarness(t)
		t.Repeat(map[string]func(*rapid.T){
			"record":  h.record,
			"advance": func(t *rapid.T) { h.now = h.now.Add(h.step(t)) },
			"back":    func(t *rapid.T) { h.now = h.now.Add(-h.step(t)) },
			"": func(t *rapid.T) {
				h.observe()
				got := h.b.CountsAt(h.now)
				cur := h.epoch()
				upper := countOf(h.entries, func(e entry) bool { return e.epoch > cur-h.n })
				lower := countOf(h.entries, func(e entry) bool { return h.inWindow(e) && e.seq >= h.sinceBackSeq })
				if !within(lower, got, upper) {
					t.Fatalf("Counts at slice %d = %+v, want between %+v and %+v (%d buckets of %dns, outcomes %v, since-back seq %d)",
						cur, got, lower, upper, h.n, h.width, h.entries, h.sinceBackSeq)
				}
				if got.Failures > got.Calls || got.Slow > got.Calls {
					t.Fatalf("Counts = %+v: more failures or slow calls than calls", got)
				}
			},
		})
	})
}

func within(lo, c, hi Counts) bool {
	return lo.Calls <= c.Calls && c.Calls <= hi.Calls &&
		lo.Failures <= c.Failures && c.Failures <= hi.Failures &&
		lo.Slow <= c.Slow && c.Slow <= hi.Slow
}
