package retry

import (
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/internal/stripe"
)

// durationBounds are the upper bounds of the duration histogram's buckets:
// Prometheus's default buckets, extended to the minutes a retried call can
// take.
var durationBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
}

// durationBoundsSeconds returns the upper bounds, in seconds, of the buckets of
// Stats.Duration.
func durationBoundsSeconds() []float64 {
	out := make([]float64, len(durationBounds))
	for i, b := range durationBounds {
		out[i] = b.Seconds()
	}
	return out
}

// maxAttemptSlots bounds the attempts counted by number; attempts numbered
// higher are counted in the last slot.
const maxAttemptSlots = 64

// Stats is a snapshot of a Retry's statistics since it was made. Counts are
// exact; they are read one by one, so a snapshot taken under load may be off
// by the calls that finished while it was read.
type Stats struct {
	// Name is the policy's Config.Name, the metrics' operation label.
	Name string
	// Calls is the number of calls finished (each may have made several
	// attempts).
	Calls int64
	// Successes and Failures split Calls by outcome. A failure is any error
	// returned, including the caller's own cancellation.
	Successes, Failures int64
	// Attempts is the number of attempts made by finished calls, and
	// Retries the number of those that were not a call's first.
	Attempts, Retries int64
	// Exhausted counts calls that failed with ErrExhausted,
	// BudgetRefused those that failed with ErrBudgetExhausted.
	Exhausted, BudgetRefused int64
	// SuccessRate is Successes / Calls, 0 when there were no calls.
	SuccessRate float64
	// AttemptsByNumber[i] is the number of attempts numbered i+1 (so [0] is
	// Calls): the series of retry_attempts_total{operation, attempt}. Its
	// length is the policy's MaxAttempts, or the highest attempt number
	// seen if that is larger, at most 64 (the last slot then also counts
	// attempts numbered higher).
	AttemptsByNumber []int64
	// Duration is the histogram of call durations, first attempt to last,
	// for retry_duration_seconds.
	Duration Histogram
}

// Histogram is a snapshot of a duration histogram, in the shape a Prometheus
// const histogram takes. It is estimated from a sample of calls (see
// Config.SampleEvery), each weighted by the sampling interval.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending; the +Inf
	// bucket is implied.
	Bounds []float64
	// Counts are cumulative: Counts[i] counts durations <= Bounds[i].
	Counts []uint64
	// Count counts every observation (the +Inf bucket), Sum adds them up in
	// seconds.
	Count uint64
	Sum   float64
}

type stats struct {
	firstOK            stripe.Counter // calls that succeeded at once; a RatioBudget reads it too
	laterOK            stripe.Counter // calls that succeeded on a retry
	failures           stripe.Counter
	hist               [len(durationBounds) + 1]stripe.Counter
	sumMicros          stripe.Counter                // µs, not ns: ns would overflow in months at high rates
	byNumber           [maxAttemptSlots]atomic.Int64 // attempts numbered 2 and up, by call end
	exhausted, refused atomic.Int64
}

// observe records a timed call, weighted by the sampling interval.
func (s *stats) observe(d time.Duration, weight int64) {
	i := 0
	for i < len(durationBounds) && d > durationBounds[i] {
		i++
	}
	s.hist[i].Add(weight)
	s.sumMicros.Add((int64(d) + 500) / 1000 * weight)
}

// ended records the end of a call that made attempts attempts.
func (s *stats) ended(ok bool, attempts int) {
	switch {
	case ok && attempts == 1:
		s.firstOK.Inc()
	case ok:
		s.laterOK.Inc()
	default:
		s.failures.Inc()
	}
	for n := 2; n <= attempts; n++ {
		s.byNumber[min(n, maxAttemptSlots)-1].Add(1)
	}
}

func (s *stats) snapshot(name string, maxAttempts int) Stats {
	st := Stats{Name: name}
	st.Successes = s.firstOK.Load() + s.laterOK.Load()
	st.Failures = s.failures.Load()
	st.Calls = st.Successes + st.Failures
	if st.Calls > 0 {
		st.SuccessRate = float64(st.Successes) / float64(st.Calls)
	}
	st.Exhausted = s.exhausted.Load()
	st.BudgetRefused = s.refused.Load()

	n := min(maxAttempts, maxAttemptSlots)
	var by [maxAttemptSlots]int64
	by[0] = st.Calls
	for i := 1; i < maxAttemptSlots; i++ {
		by[i] = s.byNumber[i].Load()
		if by[i] != 0 {
			n = max(n, i+1)
		}
	}
	st.AttemptsByNumber = append([]int64(nil), by[:n]...)
	for _, c := range by {
		st.Attempts += c
	}
	st.Retries = st.Attempts - st.Calls

	h := Histogram{Bounds: durationBoundsSeconds(), Counts: make([]uint64, len(durationBounds))}
	var cum uint64
	for i := range s.hist {
		cum += uint64(max(s.hist[i].Load(), 0))
		if i < len(durationBounds) {
			h.Counts[i] = cum
		}
	}
	h.Count = cum
	h.Sum = float64(s.sumMicros.Load()) / 1e6
	st.Duration = h
	return st
}
