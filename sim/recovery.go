package sim

import (
	"time"

	"github.com/sluice-go/sluice/breaker"
)

// This file is the recovery scenario's part: active health checks that put
// an open breaker on trial as soon as a check passes, and the measurement
// of goodput lost after the upstream recovers, at a resolution finer than
// the per-second series.

// PolicySluiceDefaultChecks is the default policy with active health
// checks: every checkInterval each policy instance sends one check to the
// upstream, and a passing check moves an open breaker to half-open at once,
// through the breaker's Shared link. It is simulated by the recovery
// scenario (and wherever it is named in Options.Policies); it is not in
// BuiltinPolicies, which every scenario runs.
const PolicySluiceDefaultChecks = "sluice-default-checks"

// checkInterval is the health checks' period: one check per instance (per
// replica) per interval.
const checkInterval = 200 * time.Millisecond

// The recovery scenario's timeline: the outage scenario's (60 s of
// healthy traffic, then 45 s of 503s), so that the breaker is in the same
// phase of its open periods when the upstream recovers, and 30 s after it.
const (
	recoveryWarmup = warmup
	recoveryOutage = 45 * time.Second
	recoveryTail   = 30 * time.Second
)

// fineStep is the resolution of the recovery measurement, and fineWindow
// the buckets over which the success share is judged.
const (
	fineStep   = int64(100 * time.Millisecond)
	fineWindow = 5
)

// recoveryPolicies are the policies the recovery scenario compares when
// Options.Policies is empty.
func recoveryPolicies() []string {
	return []string{PolicyNaive, PolicySluiceDefault, PolicySluiceDefaultChecks}
}

// checkLink is an instance's breaker's Shared link, driven by the health
// checks instead of a fleet record: a passing check applies an open record
// whose probe time is now (the breaker goes half-open at once and runs its
// own probes), and the probes' successes, reported back, close it with a
// closed record. Reports arrive under the breaker's lock, so each is acted
// on in an event of its own, at the same virtual time.
type checkLink struct {
	w     *world
	link  *breaker.Link
	epoch uint64
	opens int // openings since the breaker last closed
	oks   int // probe successes of the current epoch
}

var _ breaker.Shared = (*checkLink)(nil)

// Attach keeps the breaker's side of the link.
func (k *checkLink) Attach(l *breaker.Link) error { k.link = l; return nil }

// Report queues r, to be handled once the breaker call that made it ends.
func (k *checkLink) Report(r breaker.Report) { k.w.after(0, func() { k.handle(r) }) }

// AcquireProbe grants every probe slot: the instance's breaker is the only
// one in its "fleet", and it counts its own half-open calls.
func (k *checkLink) AcquireProbe(uint64, int, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}

// Close does nothing: the link has no goroutines.
func (k *checkLink) Close() error { return nil }

func (k *checkLink) handle(r breaker.Report) {
	switch r.Kind {
	case breaker.ReportTrip, breaker.ReportReopen:
		k.opens++
		if r.Kind == breaker.ReportReopen && r.Epoch == k.epoch {
			// Acknowledge the failed trial so that the record stays the
			// breaker's own opening, until its open time ends or a check
			// passes.
			k.apply(breaker.Fleet{Open: true, ProbeAt: r.At.Add(r.OpenFor), Opens: k.opens, Trip: r.Trip})
		}
	case breaker.ReportProbeSuccess:
		if r.Epoch != k.epoch {
			return
		}
		k.oks++
		if k.oks >= r.Successes {
			k.opens = 0
			k.apply(breaker.Fleet{Open: false})
		}
	}
}

// checkPassed is the result of a passing health check: an open breaker
// goes on trial now.
func (k *checkLink) checkPassed(br *breaker.Breaker) {
	now := k.w.time()
	if br.StateAt(now) != breaker.StateOpen {
		return
	}
	k.apply(breaker.Fleet{Open: true, ProbeAt: now, Opens: max(k.opens, 1)})
}

func (k *checkLink) apply(f breaker.Fleet) {
	k.epoch++
	k.oks = 0
	f.Epoch = k.epoch
	k.link.ApplyAt(k.w.time(), f)
}

// startChecks schedules instance i's health checks, one every
// checkInterval from an offset that spreads the n instances' checks over
// the first interval. A check is one request to the upstream, counted as
// an upstream call; it passes if the upstream answers 2xx. It takes no
// worker: a health endpoint answers without queueing behind real work.
func (r *run) startChecks(in *inst, i int, srv *server) {
	if in.checks == nil {
		return
	}
	w := r.w
	var check func()
	check = func() {
		r.rec.probe(in.chain, w.now)
		w.after(srv.net(), func() {
			ok := !(srv.cs.kind == kindOutage && srv.cs.active(w.now))
			w.after(srv.net(), func() {
				if ok {
					in.checks.checkPassed(in.br)
				}
			})
		})
		if t := w.now + int64(checkInterval); t < int64(r.cs.duration) {
			w.at(t, check)
		}
	}
	w.at(int64(checkInterval)*int64(i)/int64(r.n), check)
}

// fine is the recovery scenario's recording: per arrival bucket of
// fineStep, the calls that arrived and those of them that succeeded, and
// each instance's check times.
type fine struct {
	arrived, ok []int64
	checks      [][]int64 // per instance, the times its checks left
}

func newFine(duration int64, instances int) *fine {
	n := int((duration + fineStep - 1) / fineStep)
	return &fine{arrived: make([]int64, n), ok: make([]int64, n), checks: make([][]int64, instances)}
}

func (f *fine) completed(arrive int64, err error) {
	b := int(arrive / fineStep)
	if b < 0 || b >= len(f.arrived) {
		return
	}
	f.arrived[b]++
	if err == nil {
		f.ok[b]++
	}
}

// recoveryFigures returns the seconds from end until the calls arriving
// succeed again at recoveryShare for good (every window of fineWindow
// buckets from then on), or -1; and the goodput lost from end until the
// run's last bucket, in seconds of the offered rate: the calls that failed
// divided by the calls offered per second.
func (f *fine) recoveryFigures(end, duration int64) (backS, lostS float64) {
	first, n := int(end/fineStep), int(duration/fineStep)
	start := -1
	for b := n - fineWindow; b >= first; b-- {
		var off, ok int64
		for i := b; i < b+fineWindow; i++ {
			off += f.arrived[i]
			ok += f.ok[i]
		}
		if float64(ok) < recoveryShare*float64(off) {
			break
		}
		start = b
	}
	backS = -1
	if start >= 0 {
		backS = round(float64(int64(start)*fineStep-end)/1e9, 1)
	}
	var off, failed int64
	for b := first; b < n; b++ {
		off += f.arrived[b]
		failed += f.arrived[b] - f.ok[b]
	}
	if off > 0 {
		rate := float64(off) / (float64(int64(n-first)*fineStep) / 1e9)
		lostS = round(float64(failed)/rate, 2)
	}
	return backS, lostS
}

// maxChecksPerInterval returns the most checks any instance sent within
// one checkInterval (a window [t, t+interval)).
func (f *fine) maxChecksPerInterval() int {
	best := 0
	for _, ts := range f.checks {
		lo := 0
		for hi, t := range ts {
			for t-ts[lo] >= int64(checkInterval) {
				lo++
			}
			best = max(best, hi-lo+1)
		}
	}
	return best
}
