package ratelimit_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ratelimit"
)

// checkWindows fails if any window [t_i, t_j] of the sorted admission
// times holds more than burst + (t_j−t_i)/interval calls. It checks every
// window in one pass: the count in [t_i, t_j] minus its allowance is
// (j+1−t_j/I) + (t_i/I−i), so it keeps the running maximum of the second
// term; everything is multiplied by I to stay in integers.
func checkWindows(t *testing.T, times []int64, interval, burst int64) {
	t.Helper()
	slices.Sort(times)
	best := int64(-1 << 62) // max over i ≤ j of t_i − i·I
	for j, tj := range times {
		best = max(best, tj-int64(j)*interval)
		// (j+1)·I − t_j + best ≤ burst·I  ⇔  count ≤ burst + span/I
		if excess := int64(j+1)*interval - tj + best - burst*interval; excess > 0 {
			t.Fatalf("window ending at admission %d (t=%d) holds %d·I too many calls", j, tj, excess)
		}
	}
}

// TestConcurrentAdmissionsBounded races goroutines through AllowAt on a
// shared virtual clock that each of them advances: times arrive slightly
// out of order, CASes fail and retry, and still no window admits more than
// Burst + Rate×span.
func TestConcurrentAdmissionsBounded(t *testing.T) {
	const (
		goroutines = 8
		calls      = 10000
		interval   = 1000 // ns
		burst      = 25
	)
	for _, smooth := range []bool{false, true} {
		l, _ := newAt(t, ratelimit.Config{Rate: 1, Per: interval, Burst: burst, Smooth: smooth})
		var clock atomic.Int64
		admitted := make([][]int64, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range calls {
					now := clock.Add(int64(1 + (g+i)%13)) // ~7ns a call: far more calls than tokens
					if l.AllowAt(t0.Add(time.Duration(now)), 1) {
						admitted[g] = append(admitted[g], now)
					}
				}
			})
		}
		wg.Wait()
		all := slices.Concat(admitted...)
		checkWindows(t, all, interval, burst)
		if s := l.Stats(); s.Allowed != int64(len(all)) || s.Allowed+s.Rejected != goroutines*calls {
			t.Errorf("smooth %v: Stats %+v, admitted %d of %d", smooth, s, len(all), goroutines*calls)
		}
		// The limiter is not merely safe but useful: calls far outnumber
		// tokens, so nearly every token is used.
		span := clock.Load()
		if min := span/interval - goroutines; int64(len(all)) < min {
			t.Errorf("smooth %v: admitted %d over %dns, want at least %d", smooth, len(all), span, min)
		}
	}
}

// TestConcurrentRealClock races goroutines through Allow, Wait and Update
// on the system clock for a short while and checks the count admitted
// against the limit measured around the whole run.
func TestConcurrentRealClock(t *testing.T) {
	const rate, burst = 20000.0, 50
	l := ratelimit.MustNew(ratelimit.Config{Rate: rate, Burst: burst, MaxWait: time.Millisecond})
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if g == 0 {
					_ = l.Wait(t.Context())
				} else {
					l.Allow()
				}
			}
		})
	}
	wg.Go(func() { // rewrites the same limit while the others run
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := l.Update(ratelimit.Config{Rate: rate, Burst: burst, MaxWait: time.Millisecond}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	s := l.Stats()
	limit := int64(burst + rate*elapsed.Seconds())
	if s.Allowed > limit || s.Allowed < burst {
		t.Errorf("admitted %d in %v, want at most %d", s.Allowed, elapsed, limit)
	}
	if s.Tokens > burst {
		t.Errorf("tokens %v above Burst", s.Tokens)
	}
}
