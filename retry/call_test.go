package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"pgregory.net/rapid"
)

var errClient = &sluice.StatusError{Code: 400} // not retried by the shared classifier

// A Call driven in explicit time, step by step: the waits, the budget, the
// error that ends it, and the statistics it leaves.
func TestCallSteps(t *testing.T) {
	budget := mustBudget(t, BudgetConfig{Ratio: 0.5, MinRetriesPerSecond: 2}) // a reserve of 20 retries
	var events []Event
	r := mustNew(t, Config{
		Name: "op", MaxAttempts: 4, Backoff: Exponential(time.Second, 2, 10*time.Second), Jitter: NoJitter,
		Budget: budget, OnRetry: func(e Event) { events = append(events, e) },
	})
	type step struct {
		at        time.Duration // since t0, when the attempt's outcome is reported
		err       error         // nil: it succeeded
		wait      time.Duration // the wait FailedAt returns
		final     error         // the error the call ends with (matched with errors.Is); nil: goes on
		attempts  int
		exhausted bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"retried until success", []step{
			{at: 100 * time.Millisecond, err: errFlaky, wait: time.Second, attempts: 1},
			{at: 1200 * time.Millisecond, err: errFlaky, wait: 2 * time.Second, attempts: 2},
			{at: 3300 * time.Millisecond, attempts: 3},
		}},
		{"not retryable", []step{
			{at: 50 * time.Millisecond, err: errClient, final: errClient, attempts: 1},
		}},
		{"exhausted", []step{
			{at: 0, err: errFlaky, wait: time.Second, attempts: 1},
			{at: time.Second, err: errFlaky, wait: 2 * time.Second, attempts: 2},
			{at: 3 * time.Second, err: errFlaky, wait: 4 * time.Second, attempts: 3},
			{at: 7 * time.Second, err: errFlaky, final: ErrExhausted, attempts: 4, exhausted: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events = nil
			start := t0.Add(time.Hour)
			c := r.BeginAt(start, nil)
			var waits []time.Duration
			for i, s := range tc.steps {
				now := start.Add(s.at)
				if s.err == nil {
					c.SucceededAt(now)
				} else {
					wait, final := c.FailedAt(context.Background(), now, s.err)
					if (final == nil) != (s.final == nil) || (final != nil && !errors.Is(final, s.final)) {
						t.Fatalf("step %d: final = %v, want %v", i, final, s.final)
					}
					if final == nil {
						if wait != s.wait {
							t.Errorf("step %d: wait %v, want %v", i, wait, s.wait)
						}
						waits = append(waits, wait)
					}
					var ee *ExhaustedError
					if errors.As(final, &ee) != s.exhausted || (s.exhausted && ee.Attempts != s.attempts) {
						t.Errorf("step %d: final %#v, want exhausted=%v after %d attempts", i, final, s.exhausted, s.attempts)
					}
				}
				if c.Attempts() != s.attempts {
					t.Errorf("step %d: Attempts() = %d, want %d", i, c.Attempts(), s.attempts)
				}
			}
			if len(events) != len(waits) {
				t.Fatalf("OnRetry called %d times for %d waits", len(events), len(waits))
			}
			for i, e := range events {
				if e.Name != "op" || e.Attempt != i+1 || e.Delay != waits[i] {
					t.Errorf("event %d: %+v, want attempt %d, delay %v", i, e, i+1, waits[i])
				}
			}
		})
	}
	st := r.Stats()
	if st.Calls != 3 || st.Successes != 1 || st.Attempts != 8 || st.Exhausted != 1 {
		t.Errorf("stats %+v, want 3 calls, 1 success, 8 attempts, 1 exhausted", st)
	}
	if st.Duration.Count != 3 {
		t.Errorf("histogram counted %d calls, want all 3 (explicit calls are timed exactly)", st.Duration.Count)
	}
	// Under a second, 3.3 s, 7 s: the buckets <= 1 s, <= 5 s and <= 10 s.
	if got := st.Duration.Sum; got < 10.34 || got > 10.36 {
		t.Errorf("histogram sum %v s, want 0.05 + 3.3 + 7", got)
	}
}

// BeginAt, FailedAt and CanceledAt: a caller that gives up during the wait ends
// the call with an error that matches its cause and the last failure.
func TestCallCanceledDuringWait(t *testing.T) {
	r := mustNew(t, Config{Backoff: Constant(time.Second), Budget: NoBudget{}})
	c := r.BeginAt(t0, nil)
	if _, final := c.FailedAt(context.Background(), t0, errFlaky); final != nil {
		t.Fatalf("FailedAt = %v, want a retry", final)
	}
	cause := errors.New("caller left")
	err := c.CanceledAt(t0.Add(500*time.Millisecond), cause)
	if !errors.Is(err, cause) || !errors.Is(err, errFlaky) {
		t.Errorf("CanceledAt = %v, want one matching the cause and the last error", err)
	}
	if st := r.Stats(); st.Calls != 1 || st.Failures != 1 || st.Attempts != 1 {
		t.Errorf("stats %+v, want one failed call of one attempt", st)
	}
	for name, f := range map[string]func(){
		"SucceededAt after the end": func() { c.SucceededAt(t0) },
		"CanceledAt after the end":  func() { _ = c.CanceledAt(t0, cause) },
		"FailedAt with nil":         func() { c2 := r.BeginAt(t0, nil); _, _ = c2.FailedAt(context.Background(), t0, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// A caller whose context is done when the attempt fails gets its error back,
// and a non-idempotent call gets one attempt.
func TestCallGaveUpAndNonIdempotent(t *testing.T) {
	r := mustNew(t, Config{Budget: NoBudget{}})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	c := r.BeginAt(t0, nil)
	if _, final := c.FailedAt(done, t0, context.Canceled); final != context.Canceled {
		t.Errorf("caller gone: final = %v, want its own error", final)
	}
	c = r.BeginAt(t0, nil)
	if _, final := c.FailedAt(sluice.WithIdempotent(context.Background(), false), t0, errFlaky); final != errFlaky {
		t.Errorf("non-idempotent: final = %v, want the attempt's error", final)
	}
}

// Retry-After replaces the backoff, capped by the policy's Cap and spread by
// up to 10 % from the Call's own random source: the same seed, the same wait.
func TestCallRetryAfterSeeded(t *testing.T) {
	r := mustNew(t, Config{Backoff: Exponential(100*time.Millisecond, 2, 2*time.Second), Budget: NoBudget{}})
	wait := func(hint time.Duration, seed uint64) time.Duration {
		c := r.BeginAt(t0, rand.New(rand.NewPCG(seed, 1)))
		w, final := c.FailedAt(context.Background(), t0, &sluice.StatusError{Code: 503, RetryAfterHint: hint})
		if final != nil {
			t.Fatalf("FailedAt = %v, want a retry", final)
		}
		return w
	}
	if w := wait(time.Second, 1); w < time.Second || w > 1100*time.Millisecond {
		t.Errorf("Retry-After 1s: wait %v, want within [1s, 1.1s]", w)
	}
	if w := wait(time.Hour, 1); w < 2*time.Second || w > 2200*time.Millisecond {
		t.Errorf("Retry-After 1h: wait %v, want the 2s cap plus up to 10%%", w)
	}
	if a, b := wait(time.Second, 7), wait(time.Second, 7); a != b {
		t.Errorf("the same seed gave waits %v and %v", a, b)
	}
}

// outcome is one scripted attempt: how long it runs and how it ends.
type outcome struct {
	d   time.Duration
	err error
}

// Execute and a Call driven by hand take the same decisions: for any script
// of attempt outcomes and configuration, the same error, the same waits (told
// to OnRetry), the same budget decisions and the same statistics. Execute
// runs on the bubble's clock; the Call is given the same instants.
func TestPropertyCallMatchesExecute(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		maxAttempts := rapid.IntRange(1, 5).Draw(rt, "maxAttempts")
		maxElapsed := time.Duration(rapid.SampledFrom([]int{0, 2, 5}).Draw(rt, "maxElapsedS")) * time.Second
		idempotent := rapid.Bool().Draw(rt, "idempotent")
		backoff := rapid.SampledFrom([]Backoff{
			Exponential(time.Second, 2, 4*time.Second), Linear(500*time.Millisecond, time.Second, 3*time.Second), Constant(0),
		}).Draw(rt, "backoff")
		errs := []error{nil, errFlaky, errClient, &sluice.StatusError{Code: 503}}
		calls := make([][]outcome, rapid.IntRange(1, 4).Draw(rt, "calls")) // several calls share the budget
		for k := range calls {
			calls[k] = make([]outcome, maxAttempts)
			for i := range calls[k] {
				calls[k][i] = outcome{
					d:   time.Duration(rapid.IntRange(0, 1500).Draw(rt, "ms")) * time.Millisecond,
					err: errs[rapid.IntRange(0, len(errs)-1).Draw(rt, "err")],
				}
			}
		}
		var mismatch string
		synctest.Test(t, func(t *testing.T) {
			mismatch = compareCallWithExecute(t, Config{
				Name: "p", MaxAttempts: maxAttempts, MaxElapsed: maxElapsed, Backoff: backoff, Jitter: NoJitter, SampleEvery: 1,
			}, sluice.WithIdempotent(context.Background(), idempotent), calls)
		})
		if mismatch != "" {
			rt.Fatal(mismatch)
		}
	})
}

// compareCallWithExecute runs the scripted calls through Execute, on the
// bubble's clock, and through a Call given the same instants, each with a
// budget of its own (ratio 0.5, no reserve); it describes the first
// difference, or returns "".
func compareCallWithExecute(t *testing.T, cfg Config, ctx context.Context, calls [][]outcome) string {
	type run struct {
		r      *Retry
		events []Event
	}
	mk := func() *run {
		ru := &run{}
		c := cfg
		c.Budget = mustBudget(t, BudgetConfig{Ratio: 0.5, MinRetriesPerSecond: -1})
		c.OnRetry = func(e Event) { ru.events = append(ru.events, e) }
		ru.r = mustNew(t, c)
		return ru
	}
	ex, ca := mk(), mk()
	for k, script := range calls {
		start := time.Now()
		n := 0
		errEx := sluice.NewPipeline(ex.r).Do(ctx, func(context.Context) error {
			o := script[min(n, len(script)-1)]
			n++
			time.Sleep(o.d)
			return o.err
		})

		now := start
		c := ca.r.BeginAt(now, nil)
		var errCa error
		for i := 0; ; i++ {
			o := script[min(i, len(script)-1)]
			now = now.Add(o.d)
			if o.err == nil {
				c.SucceededAt(now)
				break
			}
			wait, final := c.FailedAt(ctx, now, o.err)
			if final != nil {
				errCa = final
				break
			}
			now = now.Add(wait)
		}
		switch {
		case fmt.Sprint(errEx) != fmt.Sprint(errCa) || reflect.TypeOf(errEx) != reflect.TypeOf(errCa):
			return fmt.Sprintf("call %d: Execute = %v, Call = %v", k, errEx, errCa)
		case c.Attempts() != n:
			return fmt.Sprintf("call %d: Execute made %d attempts, the Call %d", k, n, c.Attempts())
		case !time.Now().Equal(now):
			return fmt.Sprintf("call %d: Execute ended at +%v, the Call at +%v", k, time.Since(start), now.Sub(start))
		}
	}
	if !reflect.DeepEqual(ex.events, ca.events) {
		return fmt.Sprintf("OnRetry events differ:\nExecute %v\nCall    %v", ex.events, ca.events)
	}
	if se, sc := ex.r.Stats(), ca.r.Stats(); !reflect.DeepEqual(se, sc) {
		return fmt.Sprintf("stats differ:\nExecute %+v\nCall    %+v", se, sc)
	}
	return ""
}

// A server's Retry-After is capped by the policy's max delay, never by a
// Constant backoff's one delay: with Constant(20ms) a Retry-After of 1 s is
// waited (plus up to 10 %), and RetryAfterMax, when set, is the cap.
func TestRetryAfterCappedByMaxDelayNotBase(t *testing.T) {
	busy := &sluice.StatusError{Code: 503, RetryAfterHint: time.Second}
	long := &sluice.StatusError{Code: 503, RetryAfterHint: time.Hour}
	cases := []struct {
		name   string
		cfg    Config
		err    error
		lo, hi time.Duration
	}{
		{"constant, default max", Config{Backoff: Constant(20 * time.Millisecond)}, busy, time.Second, 1100 * time.Millisecond},
		{"constant, max 2s", Config{Backoff: Constant(20 * time.Millisecond), RetryAfterMax: 2 * time.Second}, busy, time.Second, 1100 * time.Millisecond},
		{"constant, capped at max 2s", Config{Backoff: Constant(20 * time.Millisecond), RetryAfterMax: 2 * time.Second}, long, 2 * time.Second, 2200 * time.Millisecond},
		{"constant, capped at the default max", Config{Backoff: Constant(20 * time.Millisecond)}, long, DefaultRetryAfterMax, DefaultRetryAfterMax * 11 / 10},
		{"exponential, capped at its cap", Config{Backoff: Exponential(time.Millisecond, 2, 500*time.Millisecond)}, busy, 500 * time.Millisecond, 550 * time.Millisecond},
		{"exponential, max below its cap", Config{Backoff: Exponential(time.Millisecond, 2, 5*time.Second), RetryAfterMax: 300 * time.Millisecond}, busy, 300 * time.Millisecond, 330 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Budget = NoBudget{}
			r := mustNew(t, tc.cfg)
			c := r.BeginAt(t0, rand.New(rand.NewPCG(1, 2)))
			wait, final := c.FailedAt(context.Background(), t0, tc.err)
			if final != nil {
				t.Fatalf("FailedAt ended the call: %v", final)
			}
			if wait < tc.lo || wait > tc.hi {
				t.Errorf("waited %v for the server's Retry-After, want within [%v, %v]", wait, tc.lo, tc.hi)
			}
		})
	}
}

func TestRetryAfterMaxMustNotBeNegative(t *testing.T) {
	if _, err := New(Config{RetryAfterMax: -time.Second}); err == nil || !strings.Contains(err.Error(), "RetryAfterMax") {
		t.Errorf("New with a negative RetryAfterMax: %v, want an error naming the field", err)
	}
}
