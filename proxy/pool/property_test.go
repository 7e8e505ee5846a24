package pool

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicetest"
	"pgregory.net/rapid"
)

// modelReplica is the reference model of one replica's ejection: what the
// pool must do, written as plainly as possible.
type modelReplica struct {
	consecutive int
	out         bool
	until       time.Duration // trials from then
	ejections   int
	trialOK     int
	trialOut    bool
}

type inflight struct {
	a     Attempt
	i     int
	trial bool
}

// ejectionModel drives a pool and the model side by side.
type ejectionModel struct {
	p        *Pool
	m        []modelReplica
	now      time.Duration
	cap      int
	base     time.Duration
	max      time.Duration
	inflight []inflight
}

func (e *ejectionModel) at() time.Time { return t0.Add(e.now) }

func (e *ejectionModel) outCount() int {
	n := 0
	for _, r := range e.m {
		if r.out {
			n++
		}
	}
	return n
}

func (e *ejectionModel) ejectionTime(n int) time.Duration { return min(time.Duration(n)*e.base, e.max) }

// usable reports whether the model lets replica i take a request now.
func (e *ejectionModel) usable(i int) bool {
	r := e.m[i]
	return !r.out || e.now >= r.until && !r.trialOut
}

func (e *ejectionModel) pick(t *rapid.T) {
	var ex []*Replica
	exIdx := map[int]bool{}
	for i, r := range e.p.Replicas() {
		if rapid.Bool().Draw(t, "exclude") {
			ex = append(ex, r)
			exIdx[i] = true
		}
	}
	a, err := e.p.PickAt(e.at(), ex...)
	anyUsable, otherUsable := false, false
	for i := range e.m {
		if e.usable(i) {
			anyUsable = true
			otherUsable = otherUsable || !exIdx[i]
		}
	}
	if err != nil {
		if anyUsable {
			t.Fatalf("ErrNoReplica while the model has a usable replica")
		}
		return
	}
	i := a.Replica().Index()
	r := &e.m[i]
	if !e.usable(i) {
		t.Fatalf("picked %d, which the model says is out (until %v, now %v, trial out %v)", i, r.until, e.now, r.trialOut)
	}
	if exIdx[i] && otherUsable {
		t.Fatalf("picked excluded %d while another replica was usable", i)
	}
	if a.Trial() != r.out {
		t.Fatalf("picked %d: trial %v, model out %v", i, a.Trial(), r.out)
	}
	if r.out {
		r.trialOut = true
	}
	e.inflight = append(e.inflight, inflight{a: a, i: i, trial: r.out})
}

func (e *ejectionModel) done(t *rapid.T) {
	if len(e.inflight) == 0 {
		t.Skip("nothing in flight")
	}
	k := rapid.IntRange(0, len(e.inflight)-1).Draw(t, "which")
	f := e.inflight[k]
	e.inflight = slices.Delete(e.inflight, k, k+1)
	o := rapid.SampledFrom([]Outcome{Success, Failure, Failure, Ignored}).Draw(t, "outcome")
	f.a.DoneAt(e.at(), time.Millisecond, o)
	r := &e.m[f.i]
	if f.trial {
		r.trialOut = false
		switch o {
		case Success:
			r.trialOK++
			if r.trialOK >= 3 {
				*r = modelReplica{ejections: r.ejections}
			}
		case Failure:
			r.ejections++
			r.until = e.now + e.ejectionTime(r.ejections)
			r.trialOK = 0
		}
		return
	}
	switch o {
	case Success:
		r.consecutive = 0
	case Failure:
		r.consecutive++
		if r.consecutive >= 5 && !r.out && e.outCount() < e.cap {
			r.ejections++
			r.out, r.until, r.consecutive, r.trialOK = true, e.now+e.ejectionTime(r.ejections), 0, 0
		}
	}
}

func (e *ejectionModel) advance(t *rapid.T) {
	e.now += time.Duration(rapid.IntRange(1, 500).Draw(t, "ms")) * time.Millisecond
}

func (e *ejectionModel) check(t *rapid.T) {
	st := e.p.StatsAt(e.at())
	if st.Out > e.cap || e.outCount() != st.Out {
		t.Fatalf("out: pool %d, model %d, cap %d", st.Out, e.outCount(), e.cap)
	}
	for i, rs := range st.Replicas {
		if rs.Out != e.m[i].out {
			t.Fatalf("replica %d: pool out %v, model %v", i, rs.Out, e.m[i].out)
		}
		if closed := rs.Breaker.State == breaker.StateClosed; closed == rs.Out {
			t.Fatalf("replica %d: out %v but breaker %v", i, rs.Out, rs.Breaker.State)
		}
	}
}

// TestEjectionModel runs random picks, outcomes and time steps against the
// model: ejections never exceed the cap, an ejected replica is never picked
// (only trials once its ejection ended), exclusion holds whenever another
// replica is usable, and the breakers' states follow.
func TestEjectionModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "replicas")
		pct := rapid.IntRange(1, 100).Draw(t, "percent")
		b := rapid.SampledFrom([]Balancer{P2C, RoundRobin, Weighted}).Draw(t, "balancer")
		p, err := New(Config{
			Replicas: endpoints(n), Balancer: b, Clock: sluicetest.NewFakeClock(t0),
			Rand: rand.New(rand.NewPCG(uint64(n), uint64(pct))),
			Outlier: Outlier{MaxEjectionPercent: pct, BaseEjectionTime: time.Second, MaxEjectionTime: 3 * time.Second,
				SuccessRate: SuccessRate{Disabled: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		e := &ejectionModel{p: p, m: make([]modelReplica, n), cap: int(ejectionCap(n, pct)), base: time.Second, max: 3 * time.Second}
		t.Repeat(map[string]func(*rapid.T){
			"pick":    e.pick,
			"done":    e.done,
			"advance": e.advance,
			"":        e.check,
		})
	})
}

// TestBalancerProperties: round-robin gives every replica the same count
// over whole cycles, the weighted balancer gives exactly the weights'
// proportions over whole cycles (and never more than one cycle's share
// ahead in between), and P2C over two replicas always takes the cheaper.
func TestBalancerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ws := rapid.SliceOfN(rapid.IntRange(1, 20), 1, 8).Draw(t, "weights")
		es := endpoints(len(ws))
		total := 0
		for i, w := range ws {
			es[i].Weight = w
			total += w
		}
		for _, b := range []Balancer{RoundRobin, Weighted} {
			p, err := New(Config{Replicas: es, Balancer: b, Clock: sluicetest.NewFakeClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			cycles := rapid.IntRange(1, 5).Draw(t, "cycles")
			count := make([]int, len(ws))
			for range cycles * len(p.seq) * len(ws) {
				a, err := p.PickAt(t0)
				if err != nil {
					t.Fatal(err)
				}
				count[a.Replica().Index()]++
				a.DoneAt(t0, time.Millisecond, Success)
			}
			g := 0
			for _, w := range ws {
				g = gcd(g, w)
			}
			for i := range ws {
				want := cycles * len(p.seq)
				if b == Weighted {
					want = cycles * len(ws) * ws[i] / g
				}
				if count[i] != want {
					t.Fatalf("%v weights %v: replica %d got %d, want %d", b, ws, i, count[i], want)
				}
			}
			p.Close()
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		p, _ := New(Config{Replicas: endpoints(2), Clock: sluicetest.NewFakeClock(t0), Rand: rand.New(rand.NewPCG(7, 7))})
		defer p.Close()
		for _, r := range p.Replicas() {
			ms := rapid.IntRange(1, 1000).Draw(t, "latency ms")
			r.observe(t0.UnixNano(), float64(time.Duration(ms)*time.Millisecond), false)
			for range rapid.IntRange(0, 20).Draw(t, "outstanding") {
				r.admit(t0)
			}
		}
		cost := [2]float64{p.Replicas()[0].costAt(t0.UnixNano()), p.Replicas()[1].costAt(t0.UnixNano())}
		a, err := p.PickAt(t0)
		if err != nil {
			t.Fatal(err)
		}
		i := a.Replica().Index()
		if cost[i] > cost[1-i] {
			t.Fatalf("P2C took cost %v over %v", cost[i], cost[1-i])
		}
	})
}
