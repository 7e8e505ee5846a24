package hedge

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The latency histogram: log-scale buckets with subBuckets buckets per
// power of two. Latencies below 2·subBuckets ns each have a bucket of their
// own; above, a bucket holds the values v with the same bit length and the
// same subBits bits after the leading one, so its width is at most
// 1/subBuckets of its lower bound. Reporting a bucket's midpoint is then
// within 1/(2·subBuckets) of any value in it.
const (
	subBits    = 4
	subBuckets = 1 << subBits
	maxBits    = 36 // latencies up to 2³⁶-1 ns (about 68.7 s) are told apart
	maxTracked = 1<<maxBits - 1
	numBuckets = (maxBits-subBits)*subBuckets + subBuckets
	numSlices  = 5 // the window moves a fifth of its span at a time
)

// RelativeError is the documented error of the percentile estimator: for
// latencies up to about 68.7 s, the delay it computes (before MinDelay and
// MaxDelay apply) is within this fraction of the exact nearest-rank
// percentile of the latencies in the window. Longer latencies count as
// 68.7 s.
const RelativeError = 1.0 / 32 // 1/(2·subBuckets)

// bucketOf returns the bucket of a latency of ns nanoseconds.
func bucketOf(ns int64) int {
	v := uint64(max(min(ns, maxTracked), 0))
	if v < 2*subBuckets {
		return int(v)
	}
	s := bits.Len64(v) - (subBits + 1)
	return s*subBuckets + int(v>>s)
}

// bucketValue returns the value reported for bucket i: its midpoint.
func bucketValue(i int) int64 {
	if i < 2*subBuckets {
		return int64(i)
	}
	s := i/subBuckets - 1
	lower := int64(i-s*subBuckets) << s
	return lower + int64(1)<<s/2
}

// slice is one time slice of the window: the histogram of the latencies
// observed during it. Counts are atomics, so observing takes no lock; only
// moving a slice on to a new span of time takes the estimator's mutex.
type slice struct {
	epoch  atomic.Int64 // the span of time, in slice widths since 1970; noEpoch when empty
	counts [numBuckets]atomic.Uint32
}

const noEpoch = math.MinInt64

// estimator computes the hedge delay as a percentile of recent first-attempt
// latencies over a sliding window of numSlices time slices.
type estimator struct {
	p          float64
	width      int64 // ns per slice
	minSamples int64
	fallback   time.Duration
	minDelay   time.Duration
	maxDelay   time.Duration // 0: no bound

	rotate sync.Mutex // serialises moving a slice on
	slices [numSlices]slice

	// The delay the executor uses, recomputed when a new slice begins or
	// minSamples observations have arrived since the last computation.
	cached      atomic.Int64 // ns
	cachedEpoch atomic.Int64
	since       atomic.Int64
	computing   atomic.Bool
}

func newEstimator(cfg Config) *estimator {
	e := &estimator{
		p:          cfg.Percentile,
		width:      max(int64(cfg.Window)/numSlices, 1),
		minSamples: int64(cfg.MinSamples),
		fallback:   cfg.Delay,
		minDelay:   cfg.MinDelay,
		maxDelay:   cfg.MaxDelay,
	}
	for i := range e.slices {
		e.slices[i].epoch.Store(noEpoch)
	}
	e.cached.Store(int64(cfg.Delay))
	e.cachedEpoch.Store(noEpoch)
	return e
}

func (e *estimator) epoch(now time.Time) int64 {
	ns := now.UnixNano()
	q := ns / e.width
	if ns < 0 && ns%e.width != 0 {
		q--
	}
	return q
}

func slot(epoch int64) int {
	i := int(epoch % numSlices)
	if i < 0 {
		i += numSlices
	}
	return i
}

// observeAt files a latency observed at now. A latency observed at a time
// more than a window older than the newest slice is dropped.
func (e *estimator) observeAt(now time.Time, latency time.Duration) {
	ep := e.epoch(now)
	s := &e.slices[slot(ep)]
	if cur := s.epoch.Load(); cur != ep {
		if cur > ep {
			return // from a span the window has left
		}
		e.moveOn(s, ep)
	}
	s.counts[bucketOf(int64(latency))].Add(1)
	e.since.Add(1)
}

// moveOn empties s for the span ep, unless another goroutine did.
// An observation that races with it may land in the emptied slice or be
// lost; at the rates where that can happen one observation does not move a
// percentile.
func (e *estimator) moveOn(s *slice, ep int64) {
	e.rotate.Lock()
	defer e.rotate.Unlock()
	if s.epoch.Load() >= ep {
		return
	}
	for i := range s.counts {
		s.counts[i].Store(0)
	}
	s.epoch.Store(ep)
}

// percentileAt returns the estimated percentile of the latencies in the
// window as of now, and the number of them.
func (e *estimator) percentileAt(now time.Time) (time.Duration, int64) {
	ep := e.epoch(now)
	var live [numSlices]*slice
	n := 0
	for i := range e.slices {
		if se := e.slices[i].epoch.Load(); se <= ep && se > ep-numSlices {
			live[n] = &e.slices[i]
			n++
		}
	}
	var merged [numBuckets]uint64
	var total uint64
	for _, s := range live[:n] {
		for i := range s.counts {
			c := uint64(s.counts[i].Load())
			merged[i] += c
			total += c
		}
	}
	if total == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(e.p * float64(total)))
	rank = min(max(rank, 1), total)
	var cum uint64
	for i, c := range merged {
		cum += c
		if cum >= rank {
			return time.Duration(bucketValue(i)), int64(total)
		}
	}
	return time.Duration(bucketValue(numBuckets - 1)), int64(total)
}

// delayAt returns the delay as of now: the percentile within the bounds,
// or the fallback delay while the window holds fewer than minSamples.
func (e *estimator) delayAt(now time.Time) time.Duration {
	d, n := e.percentileAt(now)
	if n < e.minSamples || n == 0 {
		return e.fallback
	}
	d = max(d, e.minDelay)
	if e.maxDelay > 0 {
		d = min(d, e.maxDelay)
	}
	return d
}

// delayFor returns the delay for a call starting at now: the cached one,
// recomputed first (by one goroutine at a time; the others use the value
// already cached) when now is in a newer slice than the cached value's or
// enough observations arrived since.
func (e *estimator) delayFor(now time.Time) time.Duration {
	ep := e.epoch(now)
	if ep > e.cachedEpoch.Load() || e.since.Load() >= max(e.minSamples, 1) {
		if e.computing.CompareAndSwap(false, true) {
			e.since.Store(0)
			e.cached.Store(int64(e.delayAt(now)))
			e.cachedEpoch.Store(ep)
			e.computing.Store(false)
		}
	}
	return time.Duration(e.cached.Load())
}
