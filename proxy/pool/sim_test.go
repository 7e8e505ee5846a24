package pool

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-go/sluice/sluicetest"
)

// simResult is what one run of the recovery simulation measured.
type simResult struct {
	recovery      time.Duration // from the replica's return until every later bin has goodput >= 95 %
	amplification float64       // upstream calls (attempts, retries, checks) per request that made one, during the outage
	outageGoodput float64
	maxChecks     int // most checks of one replica started within one Interval
}

// simulate runs three replicas in virtual time, 1 ms steps, for 25 s: each
// serves a request in 20 ms and at most 10 at once (500 requests/s);
// 1200 requests/s arrive. Replica 0 is down from 5 s to 15 s: it refuses
// connections in 1 ms. A failed attempt is retried once on another
// replica; a replica already at its 10 is skipped (the request is tried on
// another, or fails, without calling any). With checks, every replica is
// checked every 200 ms (a check takes 1 ms and fails while it is down).
func simulate(t *testing.T, checks bool) simResult {
	const (
		capacity = 10
		service  = 20 * time.Millisecond
		refuse   = time.Millisecond
		rate     = 1.2 // requests per ms
		bin      = 100 * time.Millisecond
	)
	down0, up0, end := 5*time.Second, 15*time.Second, 25*time.Second
	iv := 200 * time.Millisecond
	cfg := Config{Replicas: endpoints(3), Clock: sluicetest.NewFakeClock(t0), Rand: rand.New(rand.NewPCG(3, 4))}
	if checks {
		cfg.Health = Health{Interval: iv, Timeout: 100 * time.Millisecond}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	type request struct {
		bin     int
		retried bool
	}
	type attempt struct {
		a   Attempt
		req *request
		end time.Time
		ok  bool
	}
	nbins := int(end / bin)
	arrived, served := make([]int, nbins), make([]int, nbins)
	var flying []attempt
	var outageCalls, outageFirst int
	isDown := func(r *Replica, at time.Duration) bool { return r.Index() == 0 && at >= down0 && at < up0 }

	var now time.Duration
	// send picks a replica for req, skipping full ones; false: no call made.
	send := func(req *request, tried *Replica) bool {
		ex := make([]*Replica, 0, 3)
		if tried != nil {
			ex = append(ex, tried)
		}
		for range 2 {
			a, err := p.PickAt(t0.Add(now), ex...)
			if err != nil {
				return false
			}
			r := a.Replica()
			if r.Outstanding() > capacity {
				a.DoneAt(t0.Add(now), 0, Ignored)
				ex = append(ex, r)
				continue
			}
			if now >= down0 && now < up0 {
				outageCalls++
				if tried == nil {
					outageFirst++
				}
			}
			at := attempt{a: a, req: req, end: t0.Add(now + service), ok: true}
			if isDown(r, now) {
				at.end, at.ok = t0.Add(now+refuse), false
			}
			flying = append(flying, at)
			return true
		}
		return false
	}

	sched := newSchedule(t0, 3, iv)
	type probe struct {
		i   int
		end time.Duration
	}
	var probes []probe
	lastCheck := []time.Duration{-iv, -iv, -iv}
	maxChecks := 0
	var due []int
	acc := 0.0
	for now = 0; now < end; now += time.Millisecond {
		at := t0.Add(now)
		kept := flying[:0]
		var retry []attempt
		for _, f := range flying {
			if at.Before(f.end) {
				kept = append(kept, f)
				continue
			}
			if f.ok {
				f.a.DoneAt(at, service, Success)
				served[f.req.bin]++
			} else {
				f.a.DoneAt(at, refuse, Failure)
				retry = append(retry, f)
			}
		}
		flying = kept
		for _, f := range retry {
			if !f.req.retried {
				f.req.retried = true
				send(f.req, f.a.Replica())
			}
		}
		if checks {
			keptP := probes[:0]
			for _, pr := range probes {
				if now < pr.end {
					keptP = append(keptP, pr)
					continue
				}
				var err error
				if isDown(p.Replicas()[pr.i], now) {
					err = errors.New("connection refused")
				}
				p.CheckResultAt(at, p.Replicas()[pr.i], err)
				sched.doneAt(pr.i)
			}
			probes = keptP
			due = sched.dueAt(at, due[:0])
			for _, i := range due {
				if now-lastCheck[i] < iv {
					maxChecks = max(maxChecks, 2)
				}
				maxChecks = max(maxChecks, 1)
				lastCheck[i] = now
				probes = append(probes, probe{i, now + time.Millisecond})
				if now >= down0 && now < up0 {
					outageCalls++
				}
			}
		}
		for acc += rate; acc >= 1; acc-- {
			req := &request{bin: int(now / bin)}
			arrived[req.bin]++
			send(req, nil)
		}
	}
	res := simResult{amplification: float64(outageCalls) / float64(outageFirst), maxChecks: maxChecks, recovery: end - up0}
	// Bins whose requests were all done: up to the last service time.
	last := int((end-service)/bin) - 1
	for b := last; b >= int(up0/bin); b-- {
		if float64(served[b]) < 0.95*float64(arrived[b]) {
			break
		}
		res.recovery = time.Duration(b)*bin - up0
	}
	var a, s int
	for b := int(down0/bin) + 1; b < int(up0/bin); b++ {
		a += arrived[b]
		s += served[b]
	}
	res.outageGoodput = float64(s) / float64(a)
	return res
}

// TestRecovery: with checks every 200 ms, goodput is back to 95 % within
// 1 s of the replica's return, the outage costs at most 10 % more upstream
// calls than requests, and no replica is checked twice in an interval.
// Without checks the replica stays out for its ejection time (30 s), so
// goodput does not recover within the run.
func TestRecovery(t *testing.T) {
	with := simulate(t, true)
	t.Logf("with checks: recovery %v, amplification %.4f, outage goodput %.3f", with.recovery, with.amplification, with.outageGoodput)
	if with.recovery > time.Second {
		t.Errorf("goodput back to 95 %% %v after the return, want within 1 s", with.recovery)
	}
	if with.amplification > 1.1 {
		t.Errorf("amplification %.3f during the outage, want <= 1.1", with.amplification)
	}
	if with.maxChecks != 1 {
		t.Errorf("a replica was checked %d times within an interval", with.maxChecks)
	}
	if with.outageGoodput > 0.9 || with.outageGoodput < 0.75 {
		t.Errorf("outage goodput %.3f: two replicas serve 1000 of 1200 requests/s, want about 0.83", with.outageGoodput)
	}
	without := simulate(t, false)
	t.Logf("without checks: recovery %v, amplification %.4f", without.recovery, without.amplification)
	if without.recovery <= 5*time.Second {
		t.Errorf("without checks goodput recovered in %v: the test cannot tell checks from none", without.recovery)
	}
}
