// Package window holds the sliding windows that policies measure rates over:
// Ring, the last N outcomes, and Buckets, the outcomes of the last span of
// time. Neither is safe for concurrent use; the owning policy serialises
// access. Both take the time as an argument where it matters.
package window

import (
	"math"
	"time"
)

// Outcome flags recorded in a Ring or Buckets.
const (
	Failure uint8 = 1 << iota // the call failed
	Slow                      // the call was slower than its threshold
)

// CountsAt are the totals of a window.
type Counts struct {
	Calls    int64
	Failures int64
	Slow     int64
}

// FailureRate returns Failures/Calls, or 0 for an empty window.
func (c Counts) FailureRate() float64 {
	if c.Calls == 0 {
		return 0
	}
	return float64(c.Failures) / float64(c.Calls)
}

// SlowRate returns Slow/Calls, or 0 for an empty window.
func (c Counts) SlowRate() float64 {
	if c.Calls == 0 {
		return 0
	}
	return float64(c.Slow) / float64(c.Calls)
}

func (c *Counts) add(flags uint8, sign int64) {
	c.Calls += sign
	if flags&Failure != 0 {
		c.Failures += sign
	}
	if flags&Slow != 0 {
		c.Slow += sign
	}
}

// Ring is a count-based window: the flags of the last Size outcomes.
type Ring struct {
	flags  []uint8
	next   int
	counts Counts
}

// NewRing returns a Ring holding the last size outcomes; size below 1 is 1.
func NewRing(size int) *Ring {
	if size < 1 {
		size = 1
	}
	return &Ring{flags: make([]uint8, size)}
}

// Size returns the capacity of the ring.
func (r *Ring) Size() int { return len(r.flags) }

// RecordAt adds an outcome, evicting the oldest once the ring is full.
func (r *Ring) Record(flags uint8) {
	if r.counts.Calls == int64(len(r.flags)) {
		r.counts.add(r.flags[r.next], -1)
	}
	r.flags[r.next] = flags
	r.counts.add(flags, 1)
	r.next++
	if r.next == len(r.flags) {
		r.next = 0
	}
}

// CountsAt returns the totals over the outcomes held.
func (r *Ring) Counts() Counts { return r.counts }

// Reset empties the ring.
func (r *Ring) Reset() {
	clear(r.flags)
	r.next = 0
	r.counts = Counts{}
}

// Buckets is a time-based window: the outcomes of the last Span, kept in n
// buckets of Span/n each, so old outcomes leave the window one bucket at a
// time. If the clock goes back, outcomes recorded at the later times stay
// counted until their bucket is reused for another slice of time, but no
// outcome is counted once it is older than the window as of now.
type Buckets struct {
	width   int64 // bucket width in nanoseconds
	buckets []bucket
	counts  Counts
	last    int64 // epoch of the last advance; noEpoch after New and Reset
}

// noEpoch marks an empty bucket. Epochs of times before 1970 are negative,
// so -1 cannot serve.
const noEpoch = math.MinInt64

type bucket struct {
	epoch  int64 // index of the time slice this bucket holds
	counts Counts
}

// NewBuckets returns a window over span split into n buckets. span must be
// positive; n below 1 is 1 and is lowered so that buckets are at least 1ns.
func NewBuckets(span time.Duration, n int) *Buckets {
	if n < 1 {
		n = 1
	}
	if span < time.Duration(n) {
		n = max(1, int(span))
	}
	b := &Buckets{width: int64(span) / int64(n), buckets: make([]bucket, n), last: noEpoch}
	for i := range b.buckets {
		b.buckets[i].epoch = noEpoch
	}
	return b
}

// Span returns the length of time the window covers.
func (b *Buckets) Span() time.Duration { return time.Duration(b.width * int64(len(b.buckets))) }

// advance drops buckets that have left the window as of now and returns the
// bucket for now.
func (b *Buckets) advance(now time.Time) *bucket {
	ns := now.UnixNano()
	epoch := ns / b.width
	if ns%b.width < 0 {
		epoch-- // floor, so that slices before 1970 are aligned too
	}
	n := int64(len(b.buckets))
	cur := &b.buckets[int(((epoch%n)+n)%n)]
	// Compare with the last epoch, not only the current bucket's: after the
	// clock went back and forth, the current bucket may be up to date while
	// a bucket recorded in the past has since left the window.
	if epoch != b.last {
		b.last = epoch
		// Expire every bucket older than the window; cheap since n is small.
		for i := range b.buckets {
			bk := &b.buckets[i]
			if bk.epoch != noEpoch && bk.epoch <= epoch-n {
				b.counts.Calls -= bk.counts.Calls
				b.counts.Failures -= bk.counts.Failures
				b.counts.Slow -= bk.counts.Slow
				bk.counts = Counts{}
				bk.epoch = noEpoch
			}
		}
		if cur.epoch != epoch {
			// A bucket from the future (the clock went back) is dropped too.
			if cur.epoch != noEpoch {
				b.counts.Calls -= cur.counts.Calls
				b.counts.Failures -= cur.counts.Failures
				b.counts.Slow -= cur.counts.Slow
				cur.counts = Counts{}
			}
			cur.epoch = epoch
		}
	}
	return cur
}

// RecordAt adds an outcome at time now.
func (b *Buckets) RecordAt(now time.Time, flags uint8) {
	b.advance(now).counts.add(flags, 1)
	b.counts.add(flags, 1)
}

// CountsAt returns the totals over the window as of now.
func (b *Buckets) CountsAt(now time.Time) Counts {
	b.advance(now)
	return b.counts
}

// Reset empties the window.
func (b *Buckets) Reset() {
	for i := range b.buckets {
		b.buckets[i] = bucket{epoch: noEpoch}
	}
	b.counts = Counts{}
	b.last = noEpoch
}
