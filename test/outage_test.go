package test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/retry"
)

// TestOutageAndRecovery drives fallback → retry → breaker → bulkhead →
// timeout through an outage and back. Retries are 3 attempts 100ms apart;
// the breaker opens after 5 consecutive failures for 10s and closes after 2
// probe successes, one probe at a time.
//
// The count that matters: the dependency is called 6 times during the
// outage (3 + 2 attempts, then the breaker opens) and not once more until
// the open period ends, however many calls arrive; the retry does not spin
// on the breaker's rejection, which is not retryable.
func TestOutageAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t, defaultStack())
		up := &upstream{version: 1}
		start := time.Now()
		// The breaker opens when the second attempt of step 2 fails, at
		// 300ms, so probes are due at 10.3s.
		probeAt := 300*time.Millisecond + 10*time.Second

		type step struct {
			at          time.Duration // from start
			mode, ver   int           // the dependency's script from this step on
			agent       string
			stateBefore breaker.State // checked at `at`, before the call, if not 0
			want        Status
			branch      fallback.Branch
			errIs       []error // the primary's failure (Outcome.Err) must match all
			elapsed     time.Duration
			calls       int   // dependency calls so far
			retries     int64 // OnRetry calls so far
			state       breaker.State
		}
		steps := []step{
			// Healthy: the primary answers and becomes agent a's last good value.
			{at: 0, mode: healthy, ver: 1, agent: "a", want: Status{"a", 1}, branch: fallback.BranchPrimary,
				calls: 1, state: breaker.StateClosed},
			// Outage: 3 attempts, 100ms apart, exhaust the retry (3
			// consecutive failures); the last good value answers.
			{at: 0, mode: failing, agent: "a", want: Status{"a", 1}, branch: fallback.BranchLastGood,
				errIs: []error{retry.ErrExhausted, errUnavailable}, elapsed: 200 * time.Millisecond,
				calls: 4, retries: 2, state: breaker.StateClosed},
			// Failures 4 and 5 open the breaker; the third attempt is
			// rejected and not retried. Agent b has no last good value: the
			// default answers.
			{at: 200 * time.Millisecond, mode: failing, agent: "b", want: unknown, branch: fallback.BranchDefault,
				errIs: []error{breaker.ErrOpen, sluice.ErrRejected}, elapsed: 200 * time.Millisecond,
				calls: 6, retries: 4, state: breaker.StateOpen},
			// Open: rejected at once, no retry, no wait, no call.
			{at: 400 * time.Millisecond, mode: failing, agent: "a", want: Status{"a", 1}, branch: fallback.BranchLastGood,
				errIs: []error{breaker.ErrOpen, sluice.ErrRejected}, calls: 6, retries: 4, state: breaker.StateOpen},
			{at: 5 * time.Second, mode: healthy, ver: 2, agent: "b", want: unknown, branch: fallback.BranchDefault,
				errIs: []error{breaker.ErrOpen}, calls: 6, retries: 4, state: breaker.StateOpen},
			// The last nanosecond of the open period: still rejected, though
			// the dependency is back.
			{at: probeAt - 1, mode: healthy, ver: 2, agent: "a", want: Status{"a", 1}, branch: fallback.BranchLastGood,
				errIs: []error{breaker.ErrOpen}, calls: 6, retries: 4, state: breaker.StateOpen},
			// OpenFor has passed: half-open, the first probe succeeds.
			{at: probeAt, mode: healthy, ver: 2, agent: "a", stateBefore: breaker.StateHalfOpen,
				want: Status{"a", 2}, branch: fallback.BranchPrimary, calls: 7, retries: 4, state: breaker.StateHalfOpen},
			// The second probe success closes it.
			{at: probeAt, mode: healthy, ver: 2, agent: "b", want: Status{"b", 2}, branch: fallback.BranchPrimary,
				calls: 8, retries: 4, state: breaker.StateClosed},
			// A second, shorter outage: the last good value is now version 2.
			{at: 11 * time.Second, mode: failing, agent: "a", want: Status{"a", 2}, branch: fallback.BranchLastGood,
				errIs: []error{retry.ErrExhausted, errUnavailable}, elapsed: 200 * time.Millisecond,
				calls: 11, retries: 6, state: breaker.StateClosed},
		}
		for i, st := range steps {
			sleepUntil(t, start.Add(st.at))
			up.set(st.mode, st.ver)
			if st.stateBefore != 0 {
				if got := s.br.StateAt(time.Now()); got != st.stateBefore {
					t.Fatalf("step %d (at %v): breaker %v before the call, want %v", i, st.at, got, st.stateBefore)
				}
			}
			v, o, elapsed := s.get(t, up, st.agent)
			if v != st.want || o.Branch != st.branch {
				t.Fatalf("step %d (at %v): Get(%s) = %+v from %v, want %+v from %v (primary error: %v)",
					i, st.at, st.agent, v, o.Branch, st.want, st.branch, o.Err)
			}
			if st.errIs == nil && o.Err != nil {
				t.Fatalf("step %d: primary failed with %v, want success", i, o.Err)
			}
			if miss := matchesAll(o.Err, st.errIs...); miss != nil {
				t.Fatalf("step %d: primary error %v does not match %v", i, o.Err, miss)
			}
			if elapsed != st.elapsed {
				t.Fatalf("step %d: took %v of virtual time, want %v", i, elapsed, st.elapsed)
			}
			if got := up.count(); got != st.calls {
				t.Fatalf("step %d: dependency called %d times so far, want %d", i, got, st.calls)
			}
			if got := s.retries.Load(); got != st.retries {
				t.Fatalf("step %d: %d retries so far, want %d", i, got, st.retries)
			}
			if got := s.br.StateAt(time.Now()); got != st.state {
				t.Fatalf("step %d: breaker %v after the call, want %v", i, got, st.state)
			}
		}

		// The totals agree with the steps: 15 attempts for 9 calls, and the
		// 4 rejections counted once each, never retried.
		rs := s.rt.Stats()
		if rs.Calls != int64(len(steps)) || rs.Attempts != 15 || rs.Retries != 6 {
			t.Errorf("retry stats: %d calls, %d attempts, %d retries; want %d, 15, 6", rs.Calls, rs.Attempts, rs.Retries, len(steps))
		}
		bs := s.br.Stats()
		if bs.Failures != 8 || bs.Rejected != 4 || bs.Successes != 3 {
			t.Errorf("breaker stats: %d failures, %d rejected, %d successes; want 8, 4, 3", bs.Failures, bs.Rejected, bs.Successes)
		}
		fs := s.fb.Stats()
		if fs.Primary != 3 || fs.LastGood != 4 || fs.Default != 2 || fs.Exhausted != 0 {
			t.Errorf("fallback stats: %+v; want 3 primary, 4 last good, 2 default", fs)
		}
	})
}

// TestOpenBreakerIsNotRetried checks the retry's decision on a rejection
// directly: a call that arrives while the breaker is open makes exactly one
// attempt and returns the breaker's error, with its RetryAfter, at once.
func TestOpenBreakerIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := defaultStack()
		cfg.retry.MaxAttempts = 10
		s := newStack(t, cfg)
		s.br.ForceOpen()
		up := &upstream{}
		p := sluice.NewPipeline(s.rt, s.br, s.bh, s.to) // no fallback: see the error
		for i := range 100 {
			start := time.Now()
			err := p.Do(t.Context(), up.do)
			if miss := matchesAll(err, breaker.ErrOpen, sluice.ErrRejected); miss != nil {
				t.Fatalf("call %d: %v does not match %v", i, err, miss)
			}
			if el := time.Since(start); el != 0 {
				t.Fatalf("call %d took %v, want no wait", i, el)
			}
		}
		if rs := s.rt.Stats(); rs.Attempts != 100 || rs.Retries != 0 || s.retries.Load() != 0 || up.count() != 0 {
			t.Fatalf("100 rejected calls: %d attempts, %d retries, %d OnRetry, %d dependency calls; want 100, 0, 0, 0",
				rs.Attempts, rs.Retries, s.retries.Load(), up.count())
		}
	})
}
