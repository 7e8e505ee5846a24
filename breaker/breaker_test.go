package breaker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one line of a step table: at a virtual time, do something and
// check the state afterwards.
type step struct {
	at      time.Duration // since t0
	do      string        // "call" (admit and finish at once), "admit", "finish", "check"
	permit  string        // name of the permit for admit/finish
	outcome Outcome
	elapsed time.Duration
	reject  bool  // call/admit: a rejection is expected
	state   State // expected state after the step
}

func runSteps(t *testing.T, cfg Config, steps []step) *Breaker {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	cfg.Clock = clock
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	permits := map[string]Permit{}
	for i, s := range steps {
		now := t0.Add(s.at)
		clock.Set(now)
		switch s.do {
		case "call", "admit":
			p, err := b.AllowAt(now)
			if (err != nil) != s.reject {
				t.Fatalf("step %d (%s at %v): err = %v, want rejection %v", i, s.do, s.at, err, s.reject)
			}
			if err != nil {
				if !errors.Is(err, ErrOpen) || !errors.Is(err, sluice.ErrRejected) {
					t.Fatalf("step %d: rejection %v is not ErrOpen and ErrRejected", i, err)
				}
				break
			}
			if s.do == "call" {
				p.DoneAt(now, s.outcome, s.elapsed)
			} else {
				permits[s.permit] = p
			}
		case "finish":
			p, ok := permits[s.permit]
			if !ok {
				t.Fatalf("step %d: no permit %q", i, s.permit)
			}
			p.DoneAt(now, s.outcome, s.elapsed)
		case "check":
		default:
			t.Fatalf("step %d: unknown action %q", i, s.do)
		}
		if got := b.StateAt(now); got != s.state {
			t.Fatalf("step %d (%s %v at %v): state %v, want %v", i, s.do, s.outcome, s.at, got, s.state)
		}
	}
	return b
}

const (
	ms  = time.Millisecond
	sec = time.Second
)

func TestSteps(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "consecutive failures trip, a success resets the run",
			cfg:  Config{FailureThreshold: 3, OpenFor: sec, SuccessThreshold: 1},
			steps: []step{
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 0, do: "call", outcome: Success, state: StateClosed},
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 10 * ms, do: "call", outcome: Failure, state: StateOpen},
				{at: sec + 10*ms - 1, do: "call", reject: true, state: StateOpen},
				{at: sec + 10*ms, do: "check", state: StateHalfOpen},
				{at: sec + 20*ms, do: "call", outcome: Success, state: StateClosed},
			},
		},
		{
			name: "default config trips after 5 consecutive failures and needs 3 probes",
			cfg:  Config{},
			steps: []step{
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateOpen},
				{at: 60*sec - 1, do: "call", reject: true, state: StateOpen},
				{at: 60 * sec, do: "call", outcome: Success, state: StateHalfOpen},
				{at: 60 * sec, do: "call", outcome: Success, state: StateHalfOpen},
				{at: 60 * sec, do: "call", outcome: Success, state: StateClosed},
			},
		},
		{
			name: "failure rate applies only once the window holds MinimumCalls",
			cfg:  Config{FailureRateThreshold: 0.5, WindowSize: 4, MinimumCalls: 4},
			steps: []step{
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Failure, state: StateClosed}, // 3 of 3 failed, but only 3 calls
				{do: "call", outcome: Success, state: StateOpen},   // 3 of 4
			},
		},
		{
			name: "count window forgets the oldest call",
			cfg:  Config{FailureRateThreshold: 0.5, WindowSize: 4, MinimumCalls: 4},
			steps: []step{
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Success, state: StateClosed},
				{do: "call", outcome: Success, state: StateClosed},
				{do: "call", outcome: Success, state: StateClosed}, // 1 of 4
				{do: "call", outcome: Failure, state: StateClosed}, // the first failure left: 1 of 4
				{do: "call", outcome: Success, state: StateClosed}, // 1 of 4
				{do: "call", outcome: Failure, state: StateOpen},   // 2 of 4
			},
		},
		{
			name: "ignored outcomes count for nothing",
			cfg:  Config{FailureThreshold: 2, FailureRateThreshold: 0.5, WindowSize: 2, MinimumCalls: 2},
			steps: []step{
				{do: "call", outcome: Failure, state: StateClosed},
				{do: "call", outcome: Ignored, state: StateClosed},
				{do: "call", outcome: Ignored, state: StateClosed},
				{do: "call", outcome: Failure, state: StateOpen}, // still consecutive
			},
		},
		{
			name: "slow call rate trips",
			cfg:  Config{SlowCallDuration: 100 * ms, SlowCallRateThreshold: 0.5, WindowSize: 2, MinimumCalls: 2},
			steps: []step{
				{do: "call", outcome: Success, elapsed: 100 * ms, state: StateClosed}, // not slower than
				{do: "call", outcome: Success, elapsed: 50 * ms, state: StateClosed},
				{do: "call", outcome: Success, elapsed: 101 * ms, state: StateOpen},
			},
		},
		{
			name: "a slow probe counts as a failed probe when slow calls can trip",
			cfg:  Config{SlowCallDuration: 100 * ms, SlowCallRateThreshold: 1, WindowSize: 1, MinimumCalls: 1, OpenFor: sec},
			steps: []step{
				{do: "call", outcome: Success, elapsed: sec, state: StateOpen},
				{at: sec, do: "call", outcome: Success, elapsed: 200 * ms, state: StateOpen},
			},
		},
		{
			name: "half-open admits exactly HalfOpenCalls probes at once",
			cfg:  Config{FailureThreshold: 1, OpenFor: sec, HalfOpenCalls: 2, SuccessThreshold: 2},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},
				{at: sec, do: "admit", permit: "p1", state: StateHalfOpen},
				{at: sec, do: "admit", permit: "p2", state: StateHalfOpen},
				{at: sec, do: "admit", reject: true, state: StateHalfOpen},
				{at: sec + ms, do: "finish", permit: "p1", outcome: Success, state: StateHalfOpen},
				{at: sec + ms, do: "admit", permit: "p3", state: StateHalfOpen},
				{at: sec + ms, do: "admit", reject: true, state: StateHalfOpen},
				{at: sec + 2*ms, do: "finish", permit: "p2", outcome: Success, state: StateClosed},
				{at: sec + 2*ms, do: "finish", permit: "p3", outcome: Failure, state: StateClosed}, // stale
			},
		},
		{
			name: "an ignored probe frees its slot",
			cfg:  Config{FailureThreshold: 1, OpenFor: sec, SuccessThreshold: 1},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},
				{at: sec, do: "admit", permit: "p1", state: StateHalfOpen},
				{at: sec, do: "admit", reject: true, state: StateHalfOpen},
				{at: sec, do: "finish", permit: "p1", outcome: Ignored, state: StateHalfOpen},
				{at: sec, do: "call", outcome: Success, state: StateClosed},
			},
		},
		{
			name: "a failed probe re-opens for longer, a successful close resets the backoff",
			cfg: Config{FailureThreshold: 1, OpenFor: sec, SuccessThreshold: 1,
				OpenBackoff: Backoff{Multiplier: 2, Max: 3 * sec}},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},                  // open 1s
				{at: sec, do: "call", outcome: Failure, state: StateOpen},         // open 2s
				{at: 3*sec - 1, do: "call", reject: true, state: StateOpen},       //
				{at: 3 * sec, do: "call", outcome: Failure, state: StateOpen},     // open 4s, capped at 3s
				{at: 6*sec - 1, do: "call", reject: true, state: StateOpen},       //
				{at: 6 * sec, do: "call", outcome: Success, state: StateClosed},   //
				{at: 7 * sec, do: "call", outcome: Failure, state: StateOpen},     // open 1s again
				{at: 8 * sec, do: "check", state: StateHalfOpen},                  //
				{at: 8 * sec, do: "call", outcome: Success, state: StateClosed},   //
				{at: 100 * sec, do: "check", state: StateClosed},                  //
				{at: 100 * sec, do: "call", outcome: Success, state: StateClosed}, //
			},
		},
		{
			name: "open turns half-open without traffic and stays there",
			cfg:  Config{FailureThreshold: 1, OpenFor: sec, HalfOpenMaxWait: sec},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},
				{at: sec, do: "check", state: StateHalfOpen},
				{at: time.Hour, do: "check", state: StateHalfOpen},
			},
		},
		{
			name: "hung probes: back to open after HalfOpenMaxWait, their outcomes ignored",
			cfg:  Config{FailureThreshold: 1, OpenFor: sec, HalfOpenMaxWait: 5 * sec, SuccessThreshold: 1},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},
				{at: 2 * sec, do: "admit", permit: "hung", state: StateHalfOpen}, // waits from 2s
				{at: 7*sec - 1, do: "admit", reject: true, state: StateHalfOpen},
				{at: 7 * sec, do: "check", state: StateOpen},
				{at: 8*sec - 1, do: "admit", reject: true, state: StateOpen},
				{at: 8 * sec, do: "check", state: StateHalfOpen},
				{at: 8 * sec, do: "finish", permit: "hung", outcome: Success, state: StateHalfOpen},
				{at: 8 * sec, do: "call", outcome: Success, state: StateClosed},
			},
		},
		{
			name: "a finished probe restarts the wait",
			cfg:  Config{FailureThreshold: 1, OpenFor: sec, HalfOpenCalls: 2, HalfOpenMaxWait: 5 * sec, SuccessThreshold: 3},
			steps: []step{
				{do: "call", outcome: Failure, state: StateOpen},
				{at: sec, do: "admit", permit: "a", state: StateHalfOpen},
				{at: sec, do: "admit", permit: "b", state: StateHalfOpen},
				{at: 4 * sec, do: "finish", permit: "a", outcome: Success, state: StateHalfOpen},
				{at: 9*sec - 1, do: "check", state: StateHalfOpen},
				{at: 9 * sec, do: "check", state: StateOpen},
			},
		},
		{
			name: "time window: old outcomes leave a bucket at a time",
			cfg: Config{WindowType: TimeWindow, WindowDuration: 10 * sec, WindowBuckets: 5,
				FailureRateThreshold: 0.5, MinimumCalls: 2},
			steps: []step{
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 10*sec - 1, do: "call", outcome: Success, state: StateOpen}, // 1 of 2
			},
		},
		{
			name: "time window: a failure 10s old has left",
			cfg: Config{WindowType: TimeWindow, WindowDuration: 10 * sec, WindowBuckets: 5,
				FailureRateThreshold: 0.5, MinimumCalls: 2},
			steps: []step{
				{at: 0, do: "call", outcome: Failure, state: StateClosed},
				{at: 10 * sec, do: "call", outcome: Success, state: StateClosed}, // the failure's bucket left
				{at: 11 * sec, do: "call", outcome: Success, state: StateClosed},
				{at: 11 * sec, do: "call", outcome: Failure, state: StateClosed}, // 1 of 3
				{at: 12 * sec, do: "call", outcome: Failure, state: StateOpen},   // 2 of 4
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.cfg, tt.steps) })
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{FailureThreshold: -1}, "Config.FailureThreshold must be >= 0, got -1"},
		{Config{FailureRateThreshold: 1.5}, "Config.FailureRateThreshold must be between 0 and 1, got 1.5"},
		{Config{FailureRateThreshold: -0.1}, "Config.FailureRateThreshold"},
		{Config{SlowCallDuration: -1}, "Config.SlowCallDuration must be >= 0"},
		{Config{SlowCallRateThreshold: 2}, "Config.SlowCallRateThreshold"},
		{Config{SlowCallRateThreshold: 0.5}, "Config.SlowCallDuration must be > 0 when SlowCallRateThreshold is set"},
		{Config{WindowSize: -1}, "Config.WindowSize"},
		{Config{WindowSize: 1 << 21}, "Config.WindowSize"},
		{Config{WindowDuration: sec}, "Config.WindowDuration must be zero for a CountWindow"},
		{Config{WindowBuckets: 3}, "Config.WindowBuckets must be zero for a CountWindow"},
		{Config{WindowType: TimeWindow, WindowSize: 3}, "Config.WindowSize must be zero for a TimeWindow"},
		{Config{WindowType: TimeWindow, WindowDuration: -sec}, "Config.WindowDuration must be >= 0"},
		{Config{WindowType: TimeWindow, WindowBuckets: -1}, "Config.WindowBuckets"},
		{Config{WindowType: 7}, "Config.WindowType must be CountWindow or TimeWindow, got WindowType(7)"},
		{Config{MinimumCalls: -1}, "Config.MinimumCalls must be >= 0"},
		{Config{WindowSize: 5, MinimumCalls: 6}, "Config.MinimumCalls must be <= WindowSize (5), got 6"},
		{Config{MinimumCalls: 101}, "Config.MinimumCalls must be <= WindowSize (100)"},
		{Config{OpenFor: -sec}, "Config.OpenFor must be >= 0"},
		{Config{OpenBackoff: Backoff{Multiplier: 0.5}}, "Config.OpenBackoff.Multiplier must be 0 or a finite number >= 1, got 0.5"},
		{Config{OpenBackoff: Backoff{Max: -1}}, "Config.OpenBackoff.Max must be >= 0"},
		{Config{OpenBackoff: Backoff{Max: sec}}, "Config.OpenBackoff.Max must be >= OpenFor (1m0s), got 1s"},
		{Config{OpenBackoff: Backoff{Jitter: 1}}, "Config.OpenBackoff.Jitter must be >= 0 and < 1, got 1"},
		{Config{HalfOpenCalls: -2}, "Config.HalfOpenCalls must be >= 0"},
		{Config{SuccessThreshold: -1}, "Config.SuccessThreshold must be >= 0"},
		{Config{HalfOpenMaxWait: -1}, "Config.HalfOpenMaxWait must be >= 0"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.field) || !strings.HasPrefix(err.Error(), "breaker: ") {
			t.Errorf("New(%+v) = %v, want an error containing %q", tt.cfg, err, tt.field)
		}
		if verr := tt.cfg.Validate(); verr == nil || err == nil || verr.Error() != err.Error() {
			t.Errorf("Validate(%+v) = %v, want New's error %v", tt.cfg, verr, err)
		}
	}
	for _, cfg := range []Config{{}, {WindowType: TimeWindow, FailureRateThreshold: 1, SlowCallDuration: sec, SlowCallRateThreshold: 1}} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", cfg, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew with an invalid Config did not panic")
		}
	}()
	MustNew(Config{FailureThreshold: -1})
}

func TestStateString(t *testing.T) {
	want := map[State]string{
		StateClosed: "closed", StateOpen: "open", StateHalfOpen: "half-open", StateDisabled: "disabled",
		StateForcedOpen: "forced-open", StateMetricsOnly: "metrics-only", State(42): "State(42)",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("State(%d).String() = %q, want %q", s, s.String(), w)
		}
		if b, _ := s.MarshalText(); string(b) != w {
			t.Errorf("MarshalText = %q, want %q", b, w)
		}
	}
	if Outcome(9).String() != "Outcome(9)" || Failure.String() != "failure" || CountWindow.String() != "count" || WindowType(3).String() != "WindowType(3)" {
		t.Error("Outcome or WindowType String wrong")
	}
}

// trip opens b by failures at now.
func trip(t *testing.T, b *Breaker, now time.Time) {
	t.Helper()
	for i := 0; b.StateAt(now) == StateClosed; i++ {
		if i > 1000 {
			t.Fatal("breaker does not trip")
		}
		p, err := b.AllowAt(now)
		if err != nil {
			t.Fatal(err)
		}
		p.DoneAt(now, Failure, 0)
	}
}

func TestRejectionError(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{Name: "db", FailureThreshold: 1, OpenFor: 10 * sec, Clock: clock})
	trip(t, b, t0)
	clock.Advance(3 * sec)
	_, err := b.AllowAt(clock.Now())
	if !errors.Is(err, ErrOpen) || !errors.Is(err, sluice.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	if got := err.Error(); got != `breaker "db": circuit open` {
		t.Errorf("Error() = %q", got)
	}
	if d, ok := sluice.RetryAfter(err); !ok || d != 7*sec {
		t.Errorf("RetryAfter = %v, %v; want 7s", d, ok)
	}
	clock.Advance(time.Hour)
	if d, _ := sluice.RetryAfter(err); d != 0 {
		t.Errorf("RetryAfter after the period = %v, want 0", d)
	}

	b.ForceOpen()
	_, err = b.AllowAt(clock.Now())
	if !errors.Is(err, ErrOpen) || err.Error() != `breaker "db": circuit forced open` {
		t.Errorf("forced: %v", err)
	}
	if d, ok := sluice.RetryAfter(err); !ok || d != 0 {
		t.Errorf("forced RetryAfter = %v, %v", d, ok)
	}

	anon := MustNew(Config{FailureThreshold: 1, OpenFor: sec, Clock: clock})
	trip(t, anon, clock.Now())
	clock.Advance(sec)
	if _, err := anon.AllowAt(clock.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = anon.AllowAt(clock.Now())
	if err == nil || err.Error() != "breaker: circuit half-open, all probe slots busy" {
		t.Errorf("busy: %v", err)
	}
}

func TestStats(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{Name: "api", FailureRateThreshold: 0.5, WindowSize: 4, MinimumCalls: 4,
		SlowCallDuration: sec, OpenFor: 30 * sec, Clock: clock})
	for _, o := range []Outcome{Success, Failure, Ignored, Success} {
		p, _ := b.AllowAt(clock.Now())
		p.DoneAt(clock.Now(), o, 2*sec)
	}
	clock.Advance(5 * sec)
	st := b.Stats()
	want := Stats{Name: "api", State: StateClosed, Shadow: StateClosed, Calls: 4, Successes: 2, Failures: 1,
		Ignored: 1, Slow: 4, WindowCalls: 3, FailureRate: 1.0 / 3, SlowRate: 1, InState: 5 * sec}
	if st != want {
		t.Fatalf("Stats =\n%+v, want\n%+v", st, want)
	}
	p, _ := b.AllowAt(clock.Now())
	p.DoneAt(clock.Now(), Failure, 0) // 2 of 4
	clock.Advance(10 * sec)
	b.AllowAt(clock.Now())
	st = b.Stats()
	if st.State != StateOpen || st.Rejected != 1 || st.NextProbeIn != 20*sec || st.InState != 10*sec || st.Opens != 1 {
		t.Fatalf("open Stats = %+v", st)
	}
	if b.Name() != "api" || b.Config().WindowSize != 4 {
		t.Error("Name or Config wrong")
	}
}

func TestManualModes(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	var changes []string
	b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, SuccessThreshold: 1, Clock: clock,
		OnStateChange: func(c StateChange) {
			changes = append(changes, fmt.Sprintf("%v->%v@%v%s", c.From, c.To, c.At.Sub(t0), map[bool]string{true: " (metrics-only)"}[c.MetricsOnly]))
		}})
	now := clock.Now

	b.ForceOpen()
	if _, err := b.AllowAt(now()); !errors.Is(err, ErrOpen) {
		t.Fatal("forced open admitted a call")
	}
	clock.Advance(time.Hour)
	if b.StateAt(now()) != StateForcedOpen {
		t.Fatal("forced open did not stay open")
	}

	b.Disable()
	for range 5 {
		p, err := b.AllowAt(now())
		if err != nil {
			t.Fatal("disabled rejected a call")
		}
		p.DoneAt(now(), Failure, 0)
	}
	if st := b.Stats(); st.State != StateDisabled || st.Failures != 5 || st.FailureRate != 1 {
		t.Fatalf("disabled stats %+v", st)
	}

	b.ForceClosed()
	if st := b.Stats(); st.State != StateClosed || st.WindowCalls != 0 {
		t.Fatalf("after ForceClosed: %+v", st)
	}

	b.SetMetricsOnly()
	p, _ := b.AllowAt(now())
	p.DoneAt(now(), Failure, 0) // the rules open, the breaker does not
	p, err := b.AllowAt(now())
	if err != nil || p.kind != permitPassive {
		t.Fatalf("metrics-only rejected or probed: %v", err)
	}
	p.DoneAt(now(), Success, 0)
	st := b.Stats()
	if st.State != StateMetricsOnly || st.Shadow != StateOpen || st.WouldReject != 1 || st.NextProbeIn != sec {
		t.Fatalf("metrics-only stats %+v", st)
	}
	clock.Advance(sec)
	p, _ = b.AllowAt(now())
	if !p.Probe() {
		t.Fatal("metrics-only half-open did not probe")
	}
	p.DoneAt(now(), Success, 0)
	if st := b.Stats(); st.Shadow != StateClosed {
		t.Fatalf("shadow = %v", st.Shadow)
	}

	p, _ = b.AllowAt(now())
	p.DoneAt(now(), Failure, 0)
	if st := b.Stats(); st.Shadow != StateOpen || st.Opens != 1 {
		t.Fatalf("metrics-only did not open its rules: %+v", st)
	}
	b.Reset()
	if st := b.Stats(); st.State != StateClosed || st.Opens != 0 {
		t.Fatalf("after Reset: %+v", st)
	}
	want := []string{
		"closed->forced-open@0s", "forced-open->disabled@1h0m0s", "disabled->closed@1h0m0s",
		"closed->metrics-only@1h0m0s", "closed->open@1h0m0s (metrics-only)",
		"open->half-open@1h0m1s (metrics-only)", "half-open->closed@1h0m1s (metrics-only)",
		"closed->open@1h0m1s (metrics-only)", "metrics-only->closed@1h0m1s",
	}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("changes\n%q, want\n%q", changes, want)
	}
}

func TestForceClosedKeepsBackoffResetClearsIt(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, OpenBackoff: Backoff{Multiplier: 2}, Clock: clock})
	trip(t, b, clock.Now())
	b.ForceClosed()
	trip(t, b, clock.Now())
	if st := b.Stats(); st.NextProbeIn != 2*sec {
		t.Fatalf("after ForceClosed the next open lasts %v, want 2s", st.NextProbeIn)
	}
	b.Reset()
	trip(t, b, clock.Now())
	if st := b.Stats(); st.NextProbeIn != sec {
		t.Fatalf("after Reset the next open lasts %v, want 1s", st.NextProbeIn)
	}
}

func TestJitter(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	// The same seed gives the same open periods, all within ±50 %.
	periods := func(seed uint64) []time.Duration {
		b := MustNew(Config{FailureThreshold: 1, OpenFor: 10 * sec, Clock: clock,
			OpenBackoff: Backoff{Jitter: 0.5, Rand: rand.New(rand.NewPCG(seed, 0))}})
		var out []time.Duration
		for range 20 {
			b.Reset()
			trip(t, b, clock.Now())
			d := b.Stats().NextProbeIn
			if d < 5*sec || d > 15*sec {
				t.Fatalf("jittered open period %v outside 5s..15s", d)
			}
			out = append(out, d)
		}
		return out
	}
	a, b := periods(1), periods(1)
	if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(a) == fmt.Sprint(periods(2)) {
		t.Fatalf("seeded jitter not repeatable or not random: %v", a)
	}
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{0, 5 * sec}, {0.5, 10 * sec}, {0.99, 14900 * ms}} {
		s, _ := newSettings(Config{OpenFor: 10 * sec, OpenBackoff: Backoff{Jitter: 0.5}})
		s.rand = func() float64 { return tc.r }
		if got := s.openDuration(0); got != tc.want {
			t.Errorf("rand %v: open for %v, want %v", tc.r, got, tc.want)
		}
	}
	// the cap holds after jitter
	s, _ := newSettings(Config{OpenFor: 10 * sec, OpenBackoff: Backoff{Multiplier: 3, Max: 20 * sec, Jitter: 0.5}})
	s.rand = func() float64 { return 0.99 }
	if d := s.openDuration(5); d != 20*sec {
		t.Errorf("capped jittered open = %v", d)
	}
}

func TestUpdate(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	cfg := Config{Name: "x", FailureThreshold: 1, OpenFor: 10 * sec, Clock: clock}
	b := MustNew(cfg)
	trip(t, b, clock.Now())

	cfg.OpenFor = time.Hour
	cfg.FailureThreshold = 3
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.State != StateOpen || st.NextProbeIn != 10*sec {
		t.Fatalf("an open breaker did not stay open as it was: %+v", st)
	}
	if b.Config().OpenFor != time.Hour {
		t.Fatal("Config() does not show the update")
	}
	b.ForceClosed()
	for range 2 {
		p, _ := b.AllowAt(clock.Now())
		p.DoneAt(clock.Now(), Failure, 0)
	}
	if b.StateAt(clock.Now()) != StateClosed {
		t.Fatal("new FailureThreshold not applied")
	}
	// Same window shape keeps the window; another shape starts afresh.
	cfg.WindowSize = 100
	if err := b.Update(cfg); err != nil || b.Stats().WindowCalls != 2 {
		t.Fatalf("same window lost its calls: %v %+v", err, b.Stats())
	}
	cfg.WindowSize = 50
	if err := b.Update(cfg); err != nil || b.Stats().WindowCalls != 0 {
		t.Fatalf("new window kept old calls: %v %+v", err, b.Stats())
	}
	if st := b.Stats(); st.ConsecutiveFailures != 2 {
		t.Fatalf("consecutive failures lost: %+v", st)
	}

	if err := b.Update(Config{Name: "y"}); err == nil || !strings.Contains(err.Error(), "Config.Name") {
		t.Errorf("rename: %v", err)
	}
	if err := b.Update(Config{Name: "x", OpenFor: -1}); err == nil {
		t.Error("invalid update accepted")
	}
	if b.Config().OpenFor != time.Hour {
		t.Error("a failed Update changed the config")
	}
}

func TestListenerOutsideLock(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	var b *Breaker
	var seen []State
	b = MustNew(Config{FailureThreshold: 1, OpenFor: sec, Clock: clock, OnStateChange: func(c StateChange) {
		// Each of these takes the breaker's lock: they would deadlock if the
		// listener were called under it.
		seen = append(seen, b.StateAt(clock.Now()))
		_ = b.Stats()
		if c.To == StateOpen {
			b.ForceOpen() // a change made by the listener is delivered after this one
		}
	}})
	p, _ := b.AllowAt(clock.Now())
	p.DoneAt(clock.Now(), Failure, 0)
	if fmt.Sprint(seen) != "[open forced-open]" {
		t.Fatalf("listener saw %v", seen)
	}
}

func TestListenerPanicDoesNotWedge(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	calls := 0
	b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, Clock: clock, OnStateChange: func(StateChange) {
		calls++
		if calls == 1 {
			panic("listener")
		}
	}})
	func() {
		defer func() { recover() }()
		b.ForceOpen()
	}()
	b.ForceClosed()
	if calls != 2 {
		t.Fatalf("listener called %d times after a panic, want 2", calls)
	}
}

// TestConcurrentOrderedListener checks, under -race, that changes reach the
// listener one at a time and in order even when many goroutines cause them.
func TestConcurrentOrderedListener(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	var mu sync.Mutex
	inside := false
	last := StateClosed
	b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, SuccessThreshold: 1, Clock: clock, OnStateChange: func(c StateChange) {
		mu.Lock()
		if inside {
			t.Error("listener called concurrently")
		}
		if c.From != last {
			t.Errorf("change %v->%v after %v", c.From, c.To, last)
		}
		inside, last = true, c.To
		mu.Unlock()
		mu.Lock()
		inside = false
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				switch (g + i) % 4 {
				case 0:
					b.ForceOpen()
				case 1:
					b.ForceClosed()
				default:
					if p, err := b.AllowAt(clock.Now()); err == nil {
						p.DoneAt(clock.Now(), Outcome(i%2), 0)
					}
				}
			}
		}()
	}
	wg.Wait()
}
