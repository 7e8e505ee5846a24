package pool

import (
	"testing"
	"time"

	"github.com/sluice-go/sluice/sluicetest"
)

// BenchmarkPick measures PickAt and Attempt.DoneAt (a success) over eight
// replicas, from b.RunParallel's goroutines: run with -cpu 1,2 to see the
// cost of sharing. The time is passed in, so no clock is read.
func BenchmarkPick(b *testing.B) {
	for _, bal := range []Balancer{P2C, RoundRobin, Weighted} {
		b.Run(bal.String(), func(b *testing.B) {
			es := endpoints(8)
			for i := range es {
				es[i].Weight = 1 + i%3
			}
			p, err := New(Config{Replicas: es, Balancer: bal, Clock: sluicetest.NewFakeClock(t0)})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				now := t0
				for pb.Next() {
					now = now.Add(time.Microsecond)
					a, err := p.PickAt(now)
					if err != nil {
						b.Fatal(err)
					}
					a.DoneAt(now, time.Millisecond, Success)
				}
			})
		})
	}
}

// BenchmarkPickExclude is a retry's pick: the first attempt's replica
// excluded.
func BenchmarkPickExclude(b *testing.B) {
	p, err := New(Config{Replicas: endpoints(8), Clock: sluicetest.NewFakeClock(t0)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	first := p.Replicas()[3]
	b.ReportAllocs()
	for b.Loop() {
		a, _ := p.PickAt(t0, first)
		a.DoneAt(t0, time.Millisecond, Success)
	}
}
