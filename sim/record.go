package sim

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
)

// step is the width of a time-series bucket.
const step = int64(time.Second)

// recoveryWindow is the number of buckets over which goodput is compared with
// the offered rate when measuring recovery: long enough to average out the
// randomness of arrivals (about 2 % at 500 calls/s), short enough to place
// the recovery within a few seconds.
const recoveryWindow = 5

// recoveryShare is the share of the offered rate goodput must be back to.
const recoveryShare = 0.95

// recorder collects what one policy's run produced.
type recorder struct {
	n                       int   // buckets
	incStart, incEnd        int64 // the incident window
	offered, upstream, good []int64

	latencies []int64 // of every logical call, ns

	offeredN, upstreamN, okN int64
	incOffered, incUpstream  int64
	rejected, budgetRefused  int64
	queued, wasted           int64
	layerCalls               []int64
	probes, incProbes        int64

	fine *fine // the recovery scenario's figures, or nil
}

func newRecorder(duration, incStart, incEnd int64, layers int) *recorder {
	n := int((duration + step - 1) / step)
	return &recorder{
		n: n, incStart: incStart, incEnd: incEnd,
		offered: make([]int64, n), upstream: make([]int64, n), good: make([]int64, n),
		layerCalls: make([]int64, layers),
	}
}

func (r *recorder) bucket(t int64) int {
	if t < 0 {
		return -1
	}
	b := int(t / step)
	if b >= r.n {
		return -1
	}
	return b
}

func (r *recorder) inIncident(t int64) bool { return t >= r.incStart && t < r.incEnd }

// arrived counts a logical call offered at t.
func (r *recorder) arrived(t int64) {
	r.offeredN++
	if b := r.bucket(t); b >= 0 {
		r.offered[b]++
	}
	if r.inIncident(t) {
		r.incOffered++
	}
}

// sent counts an attempt leaving layer i at t; bottom says it reaches the
// upstream server.
func (r *recorder) sent(i int, t int64, bottom bool) {
	r.layerCalls[i]++
	if !bottom {
		return
	}
	r.upstreamN++
	if b := r.bucket(t); b >= 0 {
		r.upstream[b]++
	}
	if r.inIncident(t) {
		r.incUpstream++
	}
}

// probe counts a health check of instance i leaving at t: an upstream
// call too.
func (r *recorder) probe(i int, t int64) {
	r.probes++
	r.upstreamN++
	if b := r.bucket(t); b >= 0 {
		r.upstream[b]++
	}
	if r.inIncident(t) {
		r.incUpstream++
		r.incProbes++
	}
	if r.fine != nil {
		r.fine.checks[i] = append(r.fine.checks[i], t)
	}
}

// completed records the end of a logical call that arrived at arrive.
func (r *recorder) completed(arrive, now int64, err error) {
	r.latencies = append(r.latencies, now-arrive)
	if err == nil {
		r.okN++
		if b := r.bucket(now); b >= 0 {
			r.good[b]++
		}
		return
	}
	var be *retry.BudgetError
	var nr *sluicehttp.NoRetryError
	switch {
	case errors.Is(err, errCallerGaveUp):
		// The caller's deadline ended it, not a policy.
	case errors.Is(err, sluice.ErrRejected) && !errors.As(err, &be):
		r.rejected++ // shed here
	case errors.As(err, &nr) && nr.Reason != "":
		r.rejected++ // shed below, answered with Sluice-Reject
	}
}

// result turns the recording into a Result.
func (r *recorder) result(name, caseName string, duration int64) Result {
	res := Result{
		Name:          name,
		Case:          caseName,
		Offered:       r.offeredN,
		UpstreamCalls: r.upstreamN,
		Rejected:      r.rejected,
		Queued:        r.queued,
		BudgetRefused: r.budgetRefused,
		Wasted:        r.wasted,
		Series: Series{
			StepS:    float64(step) / 1e9,
			Offered:  r.offered,
			Upstream: r.upstream,
			Goodput:  r.good,
		},
	}
	if len(r.layerCalls) > 1 {
		res.LayerCalls = r.layerCalls
	}
	res.Amplification = ratio(r.upstreamN, r.offeredN)
	res.AmplificationIncident = ratio(r.incUpstream, r.incOffered)
	res.AmplificationPeak = r.peak()
	res.Goodput = round(float64(r.okN)/(float64(duration)/1e9), 2)
	res.SuccessRate = ratio(r.okN, r.offeredN)
	slices.Sort(r.latencies)
	res.P50ms = percentileMs(r.latencies, 0.50)
	res.P99ms = percentileMs(r.latencies, 0.99)
	res.P999ms = percentileMs(r.latencies, 0.999)
	res.RecoveryS = recovery(r.offered, r.good, int(r.incEnd/step))
	res.ProbeCalls = r.probes
	res.ProbeCallsIncident = r.incProbes
	if f := r.fine; f != nil {
		back, lost := f.recoveryFigures(r.incEnd, duration)
		res.Recovery95S = &back
		res.GoodputLostS = &lost
		res.ChecksPerInterval = f.maxChecksPerInterval()
	}
	return res
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return round(float64(a)/float64(b), 4)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// peak returns the highest amplification over windows of recoveryWindow
// buckets lying within the incident.
func (r *recorder) peak() float64 {
	first, last := int((r.incStart+step-1)/step), int(r.incEnd/step)-recoveryWindow
	best := 0.0
	for b := first; b <= last && b+recoveryWindow <= r.n; b++ {
		var up, off int64
		for i := b; i < b+recoveryWindow; i++ {
			up += r.upstream[i]
			off += r.offered[i]
		}
		best = max(best, ratio(up, off))
	}
	return best
}

// percentileMs returns the nearest-rank percentile q of sorted durations, in
// milliseconds.
func percentileMs(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return round(float64(sorted[i])/1e6, 2)
}

// recovery returns the seconds from bucket end until goodput is back within
// 5 % of the offered rate and stays there: the first bucket b >= end such
// that every window of recoveryWindow buckets from b on holds at least 95 %
// of the calls offered in it. It returns -1 if that never happens before the
// run ends.
func recovery(offered, good []int64, end int) float64 {
	n := len(offered)
	last := n - recoveryWindow // the last window start
	if end > last {
		return -1
	}
	// Scan backwards, keeping the earliest start from which every window
	// is good.
	start := -1
	var off, ok int64
	for i := n - 1; i >= n-recoveryWindow; i-- {
		off += offered[i]
		ok += good[i]
	}
	for b := last; b >= end; b-- {
		if float64(ok) < recoveryShare*float64(off) {
			break
		}
		start = b
		if b > 0 {
			off += offered[b-1] - offered[b-1+recoveryWindow]
			ok += good[b-1] - good[b-1+recoveryWindow]
		}
	}
	if start < 0 {
		return -1
	}
	return float64(start - end)
}
