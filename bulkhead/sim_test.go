package bulkhead

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// The simulated dependency for the convergence tests: a server that answers
// in about 10ms up to 20 concurrent calls and slows down as the square of
// the excess beyond that (contention), with ±20% noise from a seeded source.
const simCapacity = 20

func simLatency(inflight int, r *rand.Rand) time.Duration {
	base := 10 * time.Millisecond
	f := 1.0
	if inflight > simCapacity {
		x := float64(inflight) / simCapacity
		f = x * x
	}
	noise := 0.8 + 0.4*r.Float64()
	return time.Duration(float64(base) * f * noise)
}

type simCall struct {
	end, start time.Time
}

type simHeap []simCall

func (h simHeap) Len() int           { return len(h) }
func (h simHeap) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h simHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *simHeap) Push(x any)        { *h = append(*h, x.(simCall)) }
func (h *simHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simulate drives est in virtual time: clients callers call back to back,
// each admitted only while fewer than est.Limit() calls are in flight,
// until calls calls have completed. It returns the limit after each
// completion.
func simulate(est Estimator, clients, calls int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 1))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h simHeap
	inflight := 0
	admit := func() {
		for inflight < clients && inflight < est.Limit() {
			inflight++
			heap.Push(&h, simCall{end: now.Add(simLatency(inflight, r)), start: now})
		}
	}
	admit()
	trace := make([]int, 0, calls)
	for range calls {
		c := heap.Pop(&h).(simCall)
		now = c.end
		trace = append(trace, est.SampleAt(now, now.Sub(c.start), inflight, false))
		inflight--
		admit()
	}
	return trace
}
