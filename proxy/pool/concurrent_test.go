package pool

import (
	"sync"
	"testing"
	"time"
)

// TestConcurrent picks and reports from several goroutines at once (run
// with -race): afterwards nothing is outstanding, the cap held, and every
// replica out of rotation has a breaker that is not closed.
func TestConcurrent(t *testing.T) {
	for _, b := range []Balancer{P2C, RoundRobin, Weighted} {
		p := newPool(t, Config{Replicas: endpoints(5), Balancer: b, Outlier: Outlier{MaxEjectionPercent: 40, BaseEjectionTime: 50 * time.Millisecond}})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				now := t0
				var tried [2]*Replica
				for k := range 3000 {
					now = now.Add(time.Duration(g+1) * 10 * time.Microsecond)
					a, err := p.PickAt(now, tried[:k%2]...)
					if err != nil {
						continue
					}
					tried[0] = a.Replica()
					o := Success
					if i := a.Replica().Index(); i < 2 || i == 2 && k%3 == 0 {
						o = Failure // three failing replicas, two may go out
					}
					a.DoneAt(now, time.Millisecond, o)
				}
			})
		}
		wg.Wait()
		st := p.StatsAt(t0.Add(time.Second))
		if st.Out > st.MaxEjected || st.MaxEjected != 2 {
			t.Fatalf("%v: out %d, cap %d", b, st.Out, st.MaxEjected)
		}
		total := int64(0)
		for _, r := range st.Replicas {
			if r.Outstanding != 0 {
				t.Fatalf("%v: %s has %d outstanding", b, r.Addr, r.Outstanding)
			}
			total += r.EjectionsTotal
		}
		if total == 0 {
			t.Fatalf("%v: no replica was ever ejected; the test exercises nothing", b)
		}
	}
}
