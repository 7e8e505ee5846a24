package test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
)

// TestRetryBudgetBoundsOutageLoad offers 2000 calls per second of virtual
// time to limiter → retry → dependency during a total outage. The limiter
// (1000/s, no wait) admits every other call; the retry would make 3
// attempts of each. With the default retry budget (retries up to 10 % of
// the first attempts of the last 10s plus 10 per second) the dependency
// sees at most 1.11 × the admitted calls once the budget's first window
// has passed; without a budget, 3×.
func TestRetryBudgetBoundsOutageLoad(t *testing.T) {
	const (
		offeredEvery = 500 * time.Microsecond // 2000 calls/s
		window       = 10 * time.Second       // the default budget's window
		measured     = 10 * time.Second       // after the first window
	)
	tests := []struct {
		name   string
		budget retry.Budget // nil: the default RatioBudget
		// retries is the range of retries the dependency may see in the
		// measured span (one budget window), given the calls admitted then.
		retries func(admitted int) (lo, hi int)
	}{
		// At most 10 % of the window's first attempts plus the reserve of
		// 10/s × 10s; at least the 10 %, so the budget does grant its share.
		// For 10 000 admitted calls: at most 1.11 dependency calls each.
		{name: "default budget", retries: func(a int) (int, int) { return a / 10, a/10 + 100 }},
		{name: "no budget", budget: retry.NoBudget{}, retries: func(a int) (int, int) { return 2 * a, 2 * a }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, err := ratelimit.New(ratelimit.Config{Name: "admission", Rate: 1000, Burst: 1})
				if err != nil {
					t.Fatal(err)
				}
				// Zero backoff keeps each call on the driver's goroutine and
				// within its 500µs slot; the budget decides on counts, not waits.
				rt, err := retry.New(retry.Config{
					MaxAttempts: 3, Backoff: retry.Constant(0), Jitter: retry.NoJitter, Budget: tt.budget,
				})
				if err != nil {
					t.Fatal(err)
				}
				p := sluice.NewPipeline(lim, rt)
				up := &upstream{mode: failing}

				start := time.Now()
				var admitted, limited, upAtWindow, admittedAtWindow int
				n := int((window + measured) / offeredEvery)
				for i := range n {
					sleepUntil(t, start.Add(time.Duration(i)*offeredEvery))
					if i == int(window/offeredEvery) {
						upAtWindow, admittedAtWindow = up.count(), admitted
					}
					before := up.count()
					err := p.Do(t.Context(), up.do)
					switch {
					case errors.Is(err, ratelimit.ErrLimited):
						limited++
						if up.count() != before {
							t.Fatalf("call %d was rate limited but reached the dependency", i)
						}
					case errors.Is(err, retry.ErrExhausted), errors.Is(err, retry.ErrBudgetExhausted):
						admitted++
						if !errors.Is(err, errUnavailable) {
							t.Fatalf("call %d: %v does not carry the last attempt's error", i, err)
						}
					default:
						t.Fatalf("call %d: unexpected error %v", i, err)
					}
				}
				if admitted != n/2 || limited != n/2 {
					t.Fatalf("limiter admitted %d and refused %d of %d, want half each", admitted, limited, n)
				}
				calls, adm := up.count()-upAtWindow, admitted-admittedAtWindow
				t.Logf("dependency calls per admitted call: %.4f in the first window, %.4f after it",
					float64(upAtWindow)/float64(admittedAtWindow), float64(calls)/float64(adm))
				if lo, hi := tt.retries(adm); calls-adm < lo || calls-adm > hi {
					t.Fatalf("after the first window: %d admitted calls made %d retries, want within [%d, %d]",
						adm, calls-adm, lo, hi)
				}
			})
		})
	}
}
