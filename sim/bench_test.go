package sim

import (
	"context"
	"testing"
)

// The simulator is single-threaded by design (one event loop per run), so
// there is no parallel benchmark: these measure the cost of simulated work.

// BenchmarkOutage reports the cost of one simulated logical call through
// sluice's default policy (ns/call), all events included.
func BenchmarkOutage(b *testing.B) {
	b.ReportAllocs()
	var calls int64
	for b.Loop() {
		rep, err := Run(context.Background(), Options{Scenario: ScenarioOutage, Seed: 1, Clients: 1, Policies: []string{PolicySluiceDefault}})
		if err != nil {
			b.Fatal(err)
		}
		calls += rep.Results[0].Offered
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls), "ns/call")
}

// BenchmarkOCCTrial is one trial of the backoff experiment at 100 clients
// with full jitter.
func BenchmarkOCCTrial(b *testing.B) {
	b.ReportAllocs()
	s := backoffStrategies()[2]
	rng := newRand(1)
	for b.Loop() {
		occTrial(100, s, rng)
	}
}

// BenchmarkEventQueue pushes and pops in steady state: no allocation once
// the heap has grown.
func BenchmarkEventQueue(b *testing.B) {
	b.ReportAllocs()
	var q eventQueue[int]
	rng := newRand(1)
	for i := range 1024 {
		q.push(int64(rng.IntN(1<<20)), i)
	}
	for b.Loop() {
		at, v := q.pop()
		q.push(at+int64(rng.IntN(1<<20)), v)
	}
}
