package breaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

// errRefused is a network failure, as a dial to a dead upstream returns.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

// tripHarness runs calls through a breaker on a fake clock.
type tripHarness struct {
	t     *testing.T
	clock *sluicetest.FakeClock
	b     *Breaker
	p     *sluice.Pipeline
}

func newTripHarness(t *testing.T, cfg Config) *tripHarness {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	cfg.Clock = clock
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &tripHarness{t: t, clock: clock, b: b, p: sluice.NewPipeline(b)}
}

// call runs one call at since (after t0) that returns err after taking d.
func (h *tripHarness) call(since time.Duration, err error, d time.Duration) error {
	h.clock.Set(t0.Add(since))
	return h.p.Do(context.Background(), func(context.Context) error {
		h.clock.Advance(d)
		return err
	})
}

// An open breaker's Stats keep the figures that tripped it, after its
// window has moved on, and half-open reports the probes'; each rule that
// can open a breaker is named as the reason.
func TestStatsKeepTheFiguresThatTrippedIt(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		run  func(h *tripHarness) time.Duration // makes it trip; returns when
		want Trip                               // At is filled in from run
	}{
		{"failure rate", Config{FailureRateThreshold: 0.5, MinimumCalls: 10, WindowType: TimeWindow, WindowDuration: 10 * time.Second, OpenFor: 10 * time.Second},
			func(h *tripHarness) time.Duration {
				for i := range 4 {
					_ = h.call(time.Duration(i)*100*time.Millisecond, nil, 0)
				}
				for i := range 6 {
					_ = h.call(time.Second+time.Duration(i)*100*time.Millisecond, errRefused, 0)
				}
				return 1500 * time.Millisecond
			},
			Trip{Reason: TripFailureRate, Calls: 10, Failures: 6, FailureRate: 0.6, ConsecutiveFailures: 6, Cause: errRefused}},
		{"consecutive failures", Config{FailureThreshold: 3, OpenFor: 10 * time.Second},
			func(h *tripHarness) time.Duration {
				_ = h.call(0, nil, 0)
				for i := 1; i <= 3; i++ {
					_ = h.call(time.Duration(i)*time.Second, errRefused, 0)
				}
				return 3 * time.Second
			},
			Trip{Reason: TripConsecutive, Calls: 4, Failures: 3, FailureRate: 0.75, ConsecutiveFailures: 3, Cause: errRefused}},
		{"slow calls", Config{SlowCallDuration: time.Second, SlowCallRateThreshold: 0.5, MinimumCalls: 4, WindowSize: 4, OpenFor: 10 * time.Second},
			func(h *tripHarness) time.Duration {
				_ = h.call(0, nil, 0)
				_ = h.call(time.Second, nil, 0)
				_ = h.call(2*time.Second, nil, 2*time.Second)
				_ = h.call(5*time.Second, nil, 2*time.Second)
				return 7 * time.Second
			},
			Trip{Reason: TripSlowRate, Calls: 4, SlowRate: 0.5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTripHarness(t, tc.cfg)
			at := tc.run(h)
			want := tc.want
			want.At = t0.Add(at)
			// Late in the open period, when a time window has emptied.
			st := h.b.StatsAt(t0.Add(at + 9*time.Second))
			if st.State != StateOpen {
				t.Fatalf("state %v, want open", st.State)
			}
			if st.LastTrip != want {
				t.Errorf("LastTrip = %+v\nwant       %+v", st.LastTrip, want)
			}
		})
	}
}

// Half-open reports the probes' figures; a failed probe re-opens the
// breaker with the probes' figures as the reason.
func TestHalfOpenReportsProbes(t *testing.T) {
	h := newTripHarness(t, Config{FailureThreshold: 1, OpenFor: 10 * time.Second, HalfOpenCalls: 2, SuccessThreshold: 3})
	_ = h.call(0, errRefused, 0)
	if err := h.call(10*time.Second, nil, 0); err != nil {
		t.Fatal(err)
	}
	_ = h.call(11*time.Second, nil, 0)
	st := h.b.StatsAt(t0.Add(11 * time.Second))
	if st.State != StateHalfOpen || st.ProbeSuccesses != 2 {
		t.Fatalf("state %v with %d probe successes, want half-open with 2", st.State, st.ProbeSuccesses)
	}
	if st.LastTrip.Reason != TripConsecutive {
		t.Errorf("half-open LastTrip.Reason = %v, want the opening's reason kept", st.LastTrip.Reason)
	}
	_ = h.call(12*time.Second, errRefused, 0)
	st = h.b.StatsAt(t0.Add(12 * time.Second))
	want := Trip{At: t0.Add(12 * time.Second), Reason: TripProbeFailed, Calls: 3, Failures: 1, FailureRate: 1.0 / 3, ConsecutiveFailures: 1, Cause: errRefused}
	if st.State != StateOpen || st.LastTrip != want {
		t.Errorf("after a failed probe: %v, LastTrip = %+v\nwant %+v", st.State, st.LastTrip, want)
	}
	if st.ProbeSuccesses != 0 {
		t.Errorf("open breaker reports %d probe successes, want 0", st.ProbeSuccesses)
	}
}

// The rejection of an open breaker carries the failure that opened it:
// errors.As and errors.Unwrap reach it, while it stays an ErrOpen and
// sluice.ErrRejected rejection with a RetryAfter, classified as
// FailureRejected by the shared classifier and by user rules that would
// match the cause — so an outer breaker does not count it.
func TestOpenRejectionCarriesTheCause(t *testing.T) {
	cause := &sluice.StatusError{Code: 503}
	h := newTripHarness(t, Config{FailureThreshold: 1, OpenFor: 10 * time.Second, HalfOpenCalls: 1})
	_ = h.call(0, cause, 0)
	err := h.call(time.Second, nil, 0)
	if !errors.Is(err, ErrOpen) || !errors.Is(err, sluice.ErrRejected) {
		t.Fatalf("rejection %v: want ErrOpen and sluice.ErrRejected", err)
	}
	var se *sluice.StatusError
	if !errors.As(err, &se) || se != cause {
		t.Errorf("errors.As(rejection, *StatusError) = %v, want the failure that opened the breaker", se)
	}
	if errors.Unwrap(err) != error(cause) {
		t.Errorf("errors.Unwrap(rejection) = %v, want %v", errors.Unwrap(err), cause)
	}
	if ra, ok := sluice.RetryAfter(err); !ok || ra != 9*time.Second {
		t.Errorf("RetryAfter = %v, %v, want 9s (the breaker's, not the cause's)", ra, ok)
	}
	ctx := context.Background()
	if f := sluice.Classify(ctx, err); f.Type != sluice.FailureRejected || f.Retryable || f.IsFailure() {
		t.Errorf("Classify(rejection) = %+v, want FailureRejected, not retryable", f)
	}
	rules := &sluice.Classifier{Rules: []sluice.Rule{{Statuses: []int{503}, Type: sluice.FailureUnavailable, Retryable: true}}}
	if f := rules.Classify(ctx, err); f.Type != sluice.FailureRejected || f.Retryable {
		t.Errorf("a user rule matching the cause classified the rejection as %+v, want FailureRejected", f)
	}
	// A budget refusal or a wrapper around the rejection is a rejection still.
	if f := sluice.Classify(ctx, fmt.Errorf("outer: %w", err)); f.Type != sluice.FailureRejected {
		t.Errorf("Classify(wrapped rejection) = %+v, want FailureRejected", f)
	}
	// Half-open with its probe slot taken: the same cause.
	h.clock.Set(t0.Add(10 * time.Second))
	p, perr := h.b.AllowAt(h.clock.Now())
	if perr != nil {
		t.Fatal(perr)
	}
	_, busy := h.b.AllowAt(h.clock.Now())
	if !errors.Is(busy, ErrOpen) || !errors.As(busy, &se) || se != cause {
		t.Errorf("busy half-open rejection %v does not carry the cause", busy)
	}
	p.DoneAt(h.clock.Now(), Success, 0)

	// An outer breaker does not count the inner one's rejections.
	outer := MustNew(Config{Name: "outer", FailureThreshold: 1, Clock: h.clock})
	inner := MustNew(Config{Name: "inner", FailureThreshold: 1, OpenFor: time.Hour, Clock: h.clock})
	stack := sluice.NewPipeline(outer, inner)
	_ = sluice.NewPipeline(inner).Do(ctx, func(context.Context) error { return errRefused })
	for range 5 {
		if err := stack.Do(ctx, func(context.Context) error { return nil }); !errors.Is(err, ErrOpen) {
			t.Fatalf("stacked call: %v, want the inner rejection", err)
		}
	}
	if st := outer.Stats(); st.State != StateClosed || st.Failures != 0 {
		t.Errorf("outer breaker %v with %d failures after inner rejections wrapping a network failure, want closed with 0", st.State, st.Failures)
	}
}
