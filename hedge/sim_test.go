package hedge_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
)

// replicas is a service of three replicas behind a round-robin balancer:
// replica slow answers with a median of 500 ms, the others in about 10 ms.
// Each call's first attempt goes to the next replica in turn; attempt i of
// a call goes i replicas further on, so a hedge goes to another replica.
type replicas struct {
	slow  bool // replica slowReplica is slow; else all three are fast
	mu    sync.Mutex
	rnd   *rand.Rand
	next  int    // the round-robin position
	calls [3]int // attempts each replica received
}

const slowReplica = 2

// latency draws replica r's latency: the fast ones 8 ms plus an exponential
// of mean 2 ms (p99 ≈ 17 ms); the slow one log-normal, median 500 ms, σ 0.5.
func (s *replicas) latency(r int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r]++
	if s.slow && r == slowReplica {
		return time.Duration(500 * float64(ms) * math.Exp(0.5*s.rnd.NormFloat64()))
	}
	return 8*ms + time.Duration(s.rnd.ExpFloat64()*float64(2*ms))
}

// call runs one request through p, returning its latency and the replica
// its first attempt went to.
func (s *replicas) call(t *testing.T, p *sluice.Pipeline) (time.Duration, int) {
	s.mu.Lock()
	first := s.next
	s.next = (s.next + 1) % 3
	s.mu.Unlock()
	start := time.Now()
	err := p.Do(context.Background(), func(ctx context.Context) error {
		r := (first + hedge.Attempt(ctx)) % 3
		return wait(ctx, s.latency(r))
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start), first
}

func (s *replicas) total() int { return s.calls[0] + s.calls[1] + s.calls[2] }

func p99(d []time.Duration) time.Duration { return nearestRank(d, 0.99) }

// The goal at library level: one slow replica of three must not set the
// tail. Hedging each call to another replica after 20 ms (about the fast
// replicas' p99.5) keeps the p99 under three times the fast replicas' own
// p99, and the extra upstream calls go where they are needed: round-robin
// sends a third of the first attempts to the slow replica, and every one of
// those needs a hedge, so hedging must cost at least a third more calls;
// the test allows 10 % over that floor.
func TestSimulationSlowReplica(t *testing.T) {
	const n = 6000
	synctest.Test(t, func(t *testing.T) {
		// Without hedging: the baseline, and the fast replicas' own p99.
		base := &replicas{slow: true, rnd: rand.New(rand.NewPCG(1, 2))}
		plain := sluice.NewPipeline()
		var all, fast []time.Duration
		for range n {
			d, r := base.call(t, plain)
			all = append(all, d)
			if r != slowReplica {
				fast = append(fast, d)
			}
		}
		fastP99 := p99(fast)

		svc := &replicas{slow: true, rnd: rand.New(rand.NewPCG(1, 2))}
		h := mustNew(t, hedge.Config{Name: "replicas", Delay: 20 * ms})
		p := sluice.NewPipeline(h)
		var hedged []time.Duration
		for range n {
			d, _ := svc.call(t, p)
			hedged = append(hedged, d)
		}

		got := p99(hedged)
		slowFirst := n / 3 // first attempts sent to the slow replica
		st := h.Stats()
		t.Logf("fast replicas p99 %v; p99 without hedging %v, with %v (%.2f× the fast p99)",
			fastP99, p99(all), got, float64(got)/float64(fastP99))
		t.Logf("upstream calls: %d without hedging, %d with (%.3f×); %d hedges for %d slow first attempts (%.3f×); %d won",
			base.total(), svc.total(), float64(svc.total())/float64(base.total()), st.Hedges, slowFirst,
			float64(st.Hedges)/float64(slowFirst), st.Won)

		if fastP99 > 20*ms || fastP99 < 15*ms {
			t.Fatalf("fast replicas p99 %v: the model is off", fastP99)
		}
		if p99(all) < 250*ms {
			t.Fatalf("p99 without hedging %v: the slow replica should set it", p99(all))
		}
		if got >= 3*fastP99 {
			t.Errorf("p99 with hedging %v, want below 3× the fast replicas' p99 (%v)", got, 3*fastP99)
		}
		if st.Hedges < int64(slowFirst) {
			t.Errorf("%d hedges for %d first attempts to the slow replica: some slow calls were left alone", st.Hedges, slowFirst)
		}
		if float64(svc.total()) > 1.1*float64(base.total()+slowFirst) {
			t.Errorf("%d upstream calls, want at most 1.1 × (%d + %d): the floor of one hedge per slow first attempt",
				svc.total(), base.total(), slowFirst)
		}
		if slices.Max(hedged) >= 100*ms {
			t.Errorf("slowest hedged call %v: a hedge should rescue every call", slices.Max(hedged))
		}
	})
}

// In the steady state, all replicas healthy, hedging costs little: at most
// 10 % more upstream calls than no hedging, with the fixed delay of the
// test above and with a delay at the 95th percentile of recent latency
// (which hedges about 5 % of calls by construction).
func TestSimulationSteadyStateCost(t *testing.T) {
	const n = 6000
	cases := []struct {
		name string
		cfg  hedge.Config
	}{
		{"fixed 20ms", hedge.Config{Delay: 20 * ms}},
		{"p95", hedge.Config{Delay: 20 * ms, Percentile: 0.95, MinDelay: ms}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &replicas{rnd: rand.New(rand.NewPCG(3, 4))}
				for range n {
					base.call(t, sluice.NewPipeline())
				}
				svc := &replicas{rnd: rand.New(rand.NewPCG(3, 4))}
				h := mustNew(t, tc.cfg)
				p := sluice.NewPipeline(h)
				var lat []time.Duration
				for range n {
					d, _ := svc.call(t, p)
					lat = append(lat, d)
				}
				ratio := float64(svc.total()) / float64(base.total())
				t.Logf("upstream calls %d vs %d without hedging (%.3f×); %d hedges; p99 %v; delay now %v",
					svc.total(), base.total(), ratio, h.Stats().Hedges, p99(lat), h.Delay())
				if ratio > 1.1 {
					t.Errorf("upstream calls %.3f× those without hedging, want at most 1.1×", ratio)
				}
				if h.Stats().Hedges == 0 {
					t.Error("no hedge at all: the tail above the delay should get some")
				}
			})
		})
	}
}
