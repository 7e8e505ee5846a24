package test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// TestTimeoutPlacement compares a timeout inside the retry (per attempt)
// with one outside it (for the whole call), in exact virtual time. Retries
// are 3 attempts with a constant 100ms (or 200ms) wait.
func TestTimeoutPlacement(t *testing.T) {
	named := func(name string, d time.Duration) *timeout.Timeout {
		to, err := timeout.New(timeout.Config{Name: name, Timeout: d})
		if err != nil {
			t.Fatal(err)
		}
		return to
	}
	rt := func(wait, attemptTimeout time.Duration) *retry.Retry {
		r, err := retry.New(retry.Config{
			MaxAttempts: 3, Backoff: retry.Constant(wait), Jitter: retry.NoJitter,
			Budget: retry.NoBudget{}, AttemptTimeout: attemptTimeout,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name     string
		policies func() []sluice.Policy
		mode     int
		latency  time.Duration
		elapsed  time.Duration
		attempts int
		errIs    []error
		errIsNot []error
		limitBy  string // Name of the outermost *timeout.Error, if any
	}{
		{
			// Each attempt hangs until its own 1s limit: 3 × 1s + 2 × 100ms.
			name: "per attempt inside retry",
			policies: func() []sluice.Policy {
				return []sluice.Policy{rt(100*time.Millisecond, 0), named("attempt", time.Second)}
			},
			mode:    hanging,
			elapsed: 3200 * time.Millisecond, attempts: 3,
			errIs:   []error{retry.ErrExhausted, timeout.ErrExceeded, context.DeadlineExceeded},
			limitBy: "attempt",
		},
		{
			// The retry's own AttemptTimeout does the same without a policy.
			name:     "retry AttemptTimeout",
			policies: func() []sluice.Policy { return []sluice.Policy{rt(100*time.Millisecond, time.Second)} },
			mode:     hanging,
			elapsed:  3200 * time.Millisecond, attempts: 3,
			errIs: []error{retry.ErrExhausted, retry.ErrAttemptTimeout, context.DeadlineExceeded},
		},
		{
			// Attempts fail after 400ms each; the overall 1.1s limit cuts
			// the second wait (1.0s–1.2s) short: 2 attempts, 1.1s, and the
			// retry is not reported exhausted.
			name: "overall outside retry",
			policies: func() []sluice.Policy {
				return []sluice.Policy{named("overall", 1100*time.Millisecond), rt(200*time.Millisecond, 0)}
			},
			mode: failing, latency: 400 * time.Millisecond,
			elapsed: 1100 * time.Millisecond, attempts: 2,
			errIs:    []error{timeout.ErrExceeded, context.DeadlineExceeded, errUnavailable},
			errIsNot: []error{retry.ErrExhausted},
			limitBy:  "overall",
		},
		{
			// Both: attempts time out at 1s and 2.2s; the third starts at
			// 2.2s and is cut by the overall 2.5s limit, which the inner
			// timeout leaves to the caller's deadline.
			name: "overall outside, per attempt inside",
			policies: func() []sluice.Policy {
				return []sluice.Policy{named("overall", 2500*time.Millisecond), rt(100*time.Millisecond, 0), named("attempt", time.Second)}
			},
			mode:    hanging,
			elapsed: 2500 * time.Millisecond, attempts: 3,
			errIs:    []error{timeout.ErrExceeded, context.DeadlineExceeded},
			errIsNot: []error{retry.ErrExhausted},
			limitBy:  "overall",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{mode: tt.mode, latency: tt.latency}
				p := sluice.NewPipeline(tt.policies()...)
				start := time.Now()
				err := p.Do(t.Context(), up.do)
				if el := time.Since(start); el != tt.elapsed {
					t.Errorf("took %v of virtual time, want %v (err %v)", el, tt.elapsed, err)
				}
				if up.count() != tt.attempts {
					t.Errorf("%d attempts, want %d", up.count(), tt.attempts)
				}
				if miss := matchesAll(err, tt.errIs...); miss != nil {
					t.Errorf("error %v does not match %v", err, miss)
				}
				for _, not := range tt.errIsNot {
					if errors.Is(err, not) {
						t.Errorf("error %v matches %v, want not", err, not)
					}
				}
				var te *timeout.Error
				if errors.As(err, &te) != (tt.limitBy != "") || tt.limitBy != "" && te.Name != tt.limitBy {
					t.Errorf("outermost *timeout.Error is %+v, want one named %q", te, tt.limitBy)
				}
			})
		})
	}
}
