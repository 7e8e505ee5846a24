package pool

import "math"

// Peak EWMA, after Finagle's and Linkerd's balancers: the estimate jumps to
// any sample above it (so a latency spike is seen at once) and otherwise
// moves towards the sample with weight 1 − e^(−Δt/τ), Δt being the time
// since the previous sample (so that it recovers cautiously, at the pace of
// time rather than of traffic). Between samples it decays towards zero at
// the same rate, so that a replica left alone because it was slow is tried
// again.

// latencyAt returns the estimate at ns, in ns.
func (r *Replica) latencyAt(ns int64) float64 {
	c := math.Float64frombits(r.ewma.Load())
	if st := r.stamp.Load(); st != 0 && ns > st {
		td := ns - st
		c *= math.Exp(-float64(td) / r.pool.set.tau)
	}
	return c
}

// costAt is the balancer's cost of sending r one more request at ns.
func (r *Replica) costAt(ns int64) float64 {
	return r.latencyAt(ns) * float64(r.outstanding.Load()+1) / r.weightF
}

// observe folds a latency sample taken at ns into the estimate; floor keeps
// the sample from lowering it (a failure). Concurrent samples race on one
// compare-and-swap word; after a few lost races a sample is dropped rather
// than spin.
func (r *Replica) observe(ns int64, rtt float64, floor bool) {
	for range 4 {
		bits, st := r.ewma.Load(), r.stamp.Load()
		c := math.Float64frombits(bits)
		w := 1.0
		if st == 0 {
			w = 0 // the first sample replaces InitialLatency
		} else if td := ns - st; td > 0 {
			w = math.Exp(-float64(td) / r.pool.set.tau)
		}
		if floor {
			rtt = max(rtt, c)
		}
		if rtt > c {
			c = rtt
		} else {
			c = c*w + rtt*(1-w)
		}
		if r.ewma.CompareAndSwap(bits, math.Float64bits(c)) {
			if ns > st || st == 0 {
				r.stamp.CompareAndSwap(st, ns)
			}
			return
		}
	}
}

// smoothSequence returns the order in which the Weighted balancer visits
// the replicas: one cycle of smooth weighted round-robin (each step, every
// replica's credit grows by its weight and the one with the most credit is
// taken and pays the total), over the weights divided by their greatest
// common divisor. Precomputing the cycle lets picks share only a counter.
func smoothSequence(rs []*Replica) []uint16 {
	g := 0
	for _, r := range rs {
		g = gcd(g, r.weight)
	}
	w := make([]int, len(rs))
	total := 0
	for i, r := range rs {
		w[i] = r.weight / g
		total += w[i]
	}
	credit := make([]int, len(rs))
	seq := make([]uint16, total)
	for k := range seq {
		best := 0
		for i := range credit {
			credit[i] += w[i]
			if credit[i] > credit[best] {
				best = i
			}
		}
		credit[best] -= total
		seq[k] = uint16(best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
