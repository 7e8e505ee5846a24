package hedge_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
)

// An answer at the very instant the delay passes races the hedge's timer;
// whichever way the race goes, the call returns the answer at the delay and
// leaves nothing running.
func TestAnswerAtTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms, MaxHedges: 2})
		p := sluice.NewPipeline(h)
		for range 50 {
			l := newLog()
			err := p.Do(context.Background(), latencies(l, []time.Duration{100 * ms, time.Hour, time.Hour}, nil))
			if err != nil || time.Since(l.start) != 100*ms {
				t.Fatalf("err %v after %v, want nil at 100ms", err, time.Since(l.start))
			}
			if l.count() > 2 {
				t.Fatalf("%d attempts", l.count())
			}
		}
	})
}

// Many calls at once in real time, with delays close to the attempts'
// latencies, so that timers fire while attempts return: every call gets an
// answer that one of its own attempts produced and returned with success.
// Run with -race.
func TestConcurrentCallsRealTime(t *testing.T) {
	h := mustNew(t, hedge.Config{Delay: 100 * time.Microsecond, MaxHedges: 2})
	p := sluice.NewPipeline(h)
	unavailable := &sluice.StatusError{Code: 503}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for k := range 150 {
				lat := [3]time.Duration{}
				fail := [3]bool{}
				for i := range lat {
					lat[i] = time.Duration(rnd.IntN(300)) * time.Microsecond
					fail[i] = rnd.IntN(5) == 0
				}
				var okMu sync.Mutex
				ok := map[[2]int]bool{}
				v, err := sluice.Get(context.Background(), p, func(ctx context.Context) ([2]int, error) {
					i := hedge.Attempt(ctx)
					if err := wait(ctx, lat[i]); err != nil {
						return [2]int{k, -1}, err
					}
					if fail[i] {
						return [2]int{k, -2}, unavailable
					}
					okMu.Lock()
					ok[[2]int{k, i}] = true
					okMu.Unlock()
					return [2]int{k, i}, nil
				})
				switch {
				case err == nil && !ok[v]:
					t.Errorf("call %d answered %v, which no attempt of it returned with success", k, v)
				case err != nil && !errors.Is(err, unavailable):
					t.Errorf("call %d: err %v, want nil or the 503", k, err)
				}
			}
		})
	}
	wg.Wait()
	st := h.Stats()
	if st.Calls != 600 || st.Hedges == 0 {
		t.Errorf("Stats = %+v, want 600 calls and some hedges", st)
	}
	t.Logf("%+v", st)
}
