package hedge_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
	"github.com/sluice-go/sluice/retry"
)

// Every budget of package retry is a hedge.Budget as it is.
var (
	_ hedge.Budget = (*retry.RatioBudget)(nil)
	_ hedge.Budget = (*retry.TokenBudget)(nil)
	_ hedge.Budget = retry.NoBudget{}
	_ hedge.Budget = retry.Budget(nil)
)

// A hedge spends a retry from the budget; when none is left the hedge does
// not start, no later one does either, and the first attempt goes on.
func TestBudgetRefusalStopsHedging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each first attempt earns one whole retry; no reserve.
		b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 1, MinRetriesPerSecond: -1})
		if err != nil {
			t.Fatal(err)
		}
		b.AttemptAt(time.Now(), true, retry.Succeeded) // earns one hedge
		h := mustNew(t, hedge.Config{Delay: 100 * ms, MaxHedges: 3, Budget: b})
		l := newLog()
		err = sluice.NewPipeline(h).Do(context.Background(),
			latencies(l, []time.Duration{time.Second, time.Hour, time.Hour}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if l.count() != 2 {
			t.Errorf("%d attempts, want 2: the second hedge is refused", l.count())
		}
		if got := time.Since(l.start); got != time.Second {
			t.Errorf("returned after %v, want the first attempt's 1s", got)
		}
		if st := h.Stats(); st.Hedges != 1 || st.Refused != 1 {
			t.Errorf("Stats = %+v, want 1 hedge and 1 refusal (hedging stops at the first)", st)
		}
		if _, retries := b.CountsAt(time.Now()); retries != 1 {
			t.Errorf("the budget counted %d retries, want the one hedge", retries)
		}

		// Nothing left: the next slow call gets no hedge at all.
		l = newLog()
		if err := sluice.NewPipeline(h).Do(context.Background(), latencies(l, []time.Duration{time.Second}, nil)); err != nil {
			t.Fatal(err)
		}
		if l.count() != 1 || h.Stats().Refused != 2 {
			t.Errorf("%d attempts, %d refusals; want 1 and 2", l.count(), h.Stats().Refused)
		}
	})
}

// A Retry and a Hedge sharing the Retry's budget: the Retry's first
// attempts earn what the hedges spend.
func TestSharedRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := retry.NewBudget(retry.BudgetConfig{Ratio: 0.5, MinRetriesPerSecond: -1})
		if err != nil {
			t.Fatal(err)
		}
		rt := retry.MustNew(retry.Config{MaxAttempts: 2, Budget: b})
		h := mustNew(t, hedge.Config{Delay: 100 * ms, Budget: rt.Budget()})
		p := sluice.NewPipeline(rt, h)
		fast := func(context.Context) error { return nil }
		for range 4 {
			if err := p.Do(context.Background(), fast); err != nil {
				t.Fatal(err)
			}
		}
		// Four first attempts earned two hedges; each slow call's own first
		// attempt, counted when it ends, earns half of one more: 2 + 0.5k
		// hedges earned before the k-th slow call's hedge, so the first three
		// are allowed and the fourth (3.5 earned, 3 spent) is refused.
		for range 4 {
			l := newLog()
			if err := p.Do(context.Background(), latencies(l, []time.Duration{time.Second, 10 * ms}, nil)); err != nil {
				t.Fatal(err)
			}
		}
		if st := h.Stats(); st.Hedges != 3 || st.Refused != 1 {
			t.Errorf("Stats = %+v, want 3 hedges and 1 refusal", st)
		}
		if _, retries := b.CountsAt(time.Now()); retries != 3 {
			t.Errorf("the shared budget counted %d retries, want the 3 hedges", retries)
		}
	})
}
