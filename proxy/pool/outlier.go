package pool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice/breaker"
)

// link is a replica breaker's Shared link: the pool is the "fleet" that
// opens it (an ejection), turns it half-open (a trial) and closes it (the
// replica returns), through Link.ApplyAt. The breaker reports its trial's
// outcomes back through Report, which only queues them: the pool acts on
// them after the breaker call that produced them returns.
type link struct {
	r  *Replica
	l  *breaker.Link
	mu sync.Mutex
	q  []breaker.Report
}

var _ breaker.Shared = (*link)(nil)

// Attach keeps the breaker's side of the link.
func (k *link) Attach(l *breaker.Link) error {
	if k.l != nil {
		return errors.New("pool: a replica link serves one breaker")
	}
	k.l = l
	return nil
}

// Report queues what the breaker's rules did; the replica handles it in
// settleAt.
func (k *link) Report(rep breaker.Report) {
	k.mu.Lock()
	k.q = append(k.q, rep)
	k.mu.Unlock()
	k.r.reports.Store(true)
}

// AcquireProbe grants every trial slot the breaker asks for: the breaker
// itself bounds them to TrialRequests.
func (k *link) AcquireProbe(uint64, int, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}

// Close has nothing to stop.
func (k *link) Close() error { return nil }

// apply hands a record to the breaker, outside r.mu.
func (r *Replica) apply(now time.Time, f breaker.Fleet, ok bool) {
	if ok {
		r.link.l.ApplyAt(now, f)
	}
}

// settleAt handles the breaker's queued reports.
func (r *Replica) settleAt(now time.Time) {
	k := r.link
	k.mu.Lock()
	q := k.q
	k.q = nil
	r.reports.Store(false)
	k.mu.Unlock()
	for _, rep := range q {
		switch rep.Kind {
		case breaker.ReportProbeSuccess:
			r.mu.Lock()
			f, ok := r.trialSuccessLocked(rep)
			r.mu.Unlock()
			r.apply(now, f, ok)
		case breaker.ReportReopen, breaker.ReportTrip:
			r.mu.Lock()
			f, ok := r.trialFailedLocked(rep)
			r.mu.Unlock()
			r.apply(now, f, ok)
		}
	}
}

// trialSuccessLocked counts a trial success; enough of them return the
// replica to rotation.
func (r *Replica) trialSuccessLocked(rep breaker.Report) (breaker.Fleet, bool) {
	if rep.Epoch != r.epoch || !r.out.Load() {
		return breaker.Fleet{}, false
	}
	r.trialOK++
	if r.trialOK < rep.Successes {
		return breaker.Fleet{}, false
	}
	r.epoch++
	r.trialOK = 0
	r.down = false
	r.consecutive.Store(0)
	r.trialAt.Store(math.MaxInt64)
	r.out.Store(false)
	r.pool.ejected.Add(-1)
	return breaker.Fleet{Epoch: r.epoch, Open: false}, true
}

// trialFailedLocked ejects a replica whose trial failed (or hung) again,
// for its next, longer ejection time.
func (r *Replica) trialFailedLocked(rep breaker.Report) (breaker.Fleet, bool) {
	if !r.out.Load() || rep.Epoch != 0 && rep.Epoch != r.epoch {
		return breaker.Fleet{}, false
	}
	r.ejections++
	r.ejectTotal++
	return r.openLocked(rep.At, r.pool.set.ejectionTime(r.ejections), rep.Trip), true
}

// openLocked takes r out of rotation (its count already in Pool.ejected)
// until at+d, when it takes trial requests.
func (r *Replica) openLocked(at time.Time, d time.Duration, t breaker.Trip) breaker.Fleet {
	r.epoch++
	r.trialOK = 0
	end := at.Add(d)
	r.trialAt.Store(end.UnixNano())
	r.out.Store(true)
	r.wasOut = true
	t.At = at
	r.trip = t
	return breaker.Fleet{Epoch: r.epoch, Open: true, ProbeAt: end, Opens: r.ejections, Trip: t}
}

// halfOpenLocked puts an out replica on trial at once, keeping the figures
// of the ejection for the breaker's LastTrip.
func (r *Replica) halfOpenLocked(now time.Time) breaker.Fleet {
	r.epoch++
	r.trialOK = 0
	r.trialAt.Store(now.UnixNano())
	return breaker.Fleet{Epoch: r.epoch, Open: true, ProbeAt: now, Opens: r.ejections, Trip: r.trip}
}

// reserve takes one of the MaxEjectionPercent slots.
func (p *Pool) reserve() bool {
	for range 64 {
		c := p.ejected.Load()
		if c >= p.set.maxEjected {
			return false
		}
		if p.ejected.CompareAndSwap(c, c+1) {
			return true
		}
	}
	return false
}

// ejectAt ejects r at now for the reason in t, unless it is out already or
// the pool is at its MaxEjectionPercent.
func (p *Pool) ejectAt(now time.Time, r *Replica, t breaker.Trip) {
	r.mu.Lock()
	if r.out.Load() {
		r.mu.Unlock()
		return
	}
	if !p.reserve() {
		r.capped++
		r.mu.Unlock()
		return
	}
	r.ejections++
	r.ejectTotal++
	f := r.openLocked(now, p.set.ejectionTime(r.ejections), t)
	r.consecutive.Store(0)
	r.mu.Unlock()
	r.apply(now, f, true)
}

// rated is one replica's figures in a success-rate analysis.
type rated struct {
	r    *Replica
	rate float64
	s, t int64
}

var rateErr = errors.New("pool: success rate below the pool's")

// SweepAt runs the outlier analysis if an Interval has passed since the
// last: the success-rate ejections, and one ejection forgiven for each
// replica in rotation. Attempt.DoneAt calls it as outcomes arrive; call it
// also from a ticker if a pool may see no traffic. The first call starts
// the first interval.
func (p *Pool) SweepAt(now time.Time) {
	ns := now.UnixNano()
	if ns < p.nextEval.Load() || !p.evalMu.TryLock() {
		return
	}
	defer p.evalMu.Unlock()
	prev := p.nextEval.Load()
	if ns < prev {
		return
	}
	p.nextEval.Store(ns + int64(p.set.interval))
	p.rates = p.rates[:0]
	for _, r := range p.replicas {
		s, t := r.successes.Swap(0), r.total.Swap(0)
		r.mu.Lock()
		out := r.out.Load()
		if !out && !r.wasOut && r.ejections > 0 && prev != math.MinInt64 {
			r.ejections-- // a whole interval in rotation
		}
		r.wasOut = out
		r.mu.Unlock()
		if prev == math.MinInt64 || out {
			continue
		}
		if !p.set.srDisabled && t >= p.set.minRequests && t > 0 {
			p.rates = append(p.rates, rated{r: r, rate: float64(s) / float64(t), s: s, t: t})
		}
	}
	if len(p.rates) < p.set.minHosts || len(p.rates) == 0 {
		return
	}
	thr := successThreshold(p.rates, p.set.stdevFactor)
	slices.SortFunc(p.rates, func(a, b rated) int { return cmpFloat(a.rate, b.rate) })
	for _, x := range p.rates {
		if x.rate >= thr {
			break
		}
		p.ejectAt(now, x.r, breaker.Trip{
			Reason: breaker.TripFailureRate, Calls: x.t, Failures: x.t - x.s,
			FailureRate: 1 - x.rate, Cause: rateErr,
		})
	}
}

// successThreshold returns mean − factor × (population) standard deviation
// of the rates.
func successThreshold(rs []rated, factor float64) float64 {
	var sum float64
	for _, x := range rs {
		sum += x.rate
	}
	mean := sum / float64(len(rs))
	var v float64
	for _, x := range rs {
		v += (x.rate - mean) * (x.rate - mean)
	}
	return mean - factor*math.Sqrt(v/float64(len(rs)))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CheckResultAt applies an active health check of r that ended at now with
// err (nil: passed). UnhealthyThreshold failures in a row mark r down: out
// of rotation (MaxEjectionPercent does not hold checks back) until the
// checks pass again. A passing check puts an out replica on trial at once,
// instead of at the end of its ejection: after one check if it was ejected
// by its traffic, after HealthyThreshold in a row if it was marked down.
// The Checker calls it; a caller with checks of its own may too.
func (p *Pool) CheckResultAt(now time.Time, r *Replica, err error) {
	h := p.set.check
	r.mu.Lock()
	var f breaker.Fleet
	ok := false
	if err != nil {
		r.checkFail++
		r.checkOK = 0
		r.lastErr = err
		if r.checkFail >= max(h.UnhealthyThreshold, 1) {
			if !r.out.Load() {
				p.ejected.Add(1)
				r.ejectTotal++
			}
			r.down = true
			f, ok = r.openLocked(now, p.set.downHold(), breaker.Trip{
				Reason: breaker.TripConsecutive, ConsecutiveFailures: r.checkFail,
				Cause: fmt.Errorf("pool: %d health checks failed in a row, the last: %w", r.checkFail, err),
			}), true
		}
	} else {
		r.checkOK++
		r.checkFail = 0
		due := now.UnixNano() < r.trialAt.Load()
		if r.out.Load() && due && (!r.down || r.checkOK >= max(h.HealthyThreshold, 1)) {
			r.down = false
			f, ok = r.halfOpenLocked(now), true
		}
	}
	r.mu.Unlock()
	r.apply(now, f, ok)
}
