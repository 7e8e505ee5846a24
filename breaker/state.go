package breaker

import (
	"strconv"
	"time"
)

// State is the state of a Breaker as callers see it: one of the three states
// of the automatic rules (closed, open, half-open) or one of the manual modes
// (disabled, forced-open, metrics-only).
type State uint8

// The states. The first three are the automatic rules; the others are set by
// Disable, ForceOpen and SetMetricsOnly and left by ForceClosed or Reset.
const (
	// StateClosed admits every call and counts outcomes.
	StateClosed State = iota
	// StateOpen rejects every call with ErrOpen until the open period ends.
	StateOpen
	// StateHalfOpen admits up to HalfOpenCalls probe calls at once and
	// rejects the rest; the probes' outcomes close or re-open the breaker.
	StateHalfOpen
	// StateDisabled admits every call and counts outcomes, but never trips.
	StateDisabled
	// StateForcedOpen rejects every call until an operator says otherwise.
	StateForcedOpen
	// StateMetricsOnly admits every call while the rules run in the
	// background, changing state and notifying listeners as if they were in
	// charge: a dry run of a configuration.
	StateMetricsOnly
)

var stateNames = [...]string{"closed", "open", "half-open", "disabled", "forced-open", "metrics-only"}

// String returns the state's name as used in metrics, logs and
// configuration ("closed", "half-open", ...), or "State(n)" for a value that
// is not a State.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText returns String, so that states read well in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Outcome is the result of an admitted call as the breaker counts it.
type Outcome uint8

const (
	// Success is a call that did not fail.
	Success Outcome = iota
	// Failure is a call that failed in a way that counts against the
	// dependency.
	Failure
	// Ignored is a call that counts as neither, such as one whose caller
	// gave up: it frees a probe slot and changes nothing else.
	Ignored
)

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignored:
		return "ignored"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// StateChange describes one change of state, passed to Config.OnStateChange.
type StateChange struct {
	// Name is the breaker's Config.Name.
	Name string
	// From and To are the states before and after.
	From, To State
	// At is when the change took effect. A change due at a given time (the
	// end of an open period) carries that time even when it was noticed
	// later.
	At time.Time
	// MetricsOnly is set when the change happened in the rules of a
	// metrics-only breaker: From and To are then the states the breaker
	// would have been in, and it did not act on them.
	MetricsOnly bool
}

// TripReason names the rule that opened a breaker.
type TripReason uint8

// The reasons a breaker opens. TripNone is the zero Trip's: it never opened.
const (
	TripNone TripReason = iota
	// TripConsecutive is FailureThreshold consecutive failures.
	TripConsecutive
	// TripFailureRate is the window's failure rate reaching
	// FailureRateThreshold.
	TripFailureRate
	// TripSlowRate is the window's slow-call rate reaching
	// SlowCallRateThreshold.
	TripSlowRate
	// TripProbeFailed is a half-open probe that failed.
	TripProbeFailed
	// TripProbeSlow is a half-open probe slower than SlowCallDuration, with
	// SlowCallRateThreshold set.
	TripProbeSlow
	// TripProbeHung is probes that did not finish within HalfOpenMaxWait.
	TripProbeHung
)

var tripNames = [...]string{"none", "consecutive-failures", "failure-rate", "slow-call-rate", "probe-failed", "probe-slow", "probe-hung"}

// String returns the reason's name as used in reports and JSON
// ("failure-rate", "probe-failed", ...).
func (r TripReason) String() string {
	if int(r) < len(tripNames) {
		return tripNames[r]
	}
	return "TripReason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText returns String, so that reasons read well in JSON.
func (r TripReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Trip is the figures with which a breaker last opened under its rules:
// what an operator needs to see while it is open, when its window has moved
// on or emptied. A trip from closed reports the window at that moment; a
// trip from half-open reports the probes of that half-open period.
type Trip struct {
	// At is when the breaker opened; the zero Time if it never has.
	At time.Time
	// Reason is the rule that opened it.
	Reason TripReason
	// Calls is the number of calls the rule looked at: the window's, or the
	// probes finished in the half-open period (the one that re-opened it
	// included). Failures of them failed.
	Calls, Failures int64
	// FailureRate and SlowRate are the shares of Calls that failed or were
	// slow.
	FailureRate, SlowRate float64
	// ConsecutiveFailures is the run of failures that ended with the trip.
	ConsecutiveFailures int
	// Cause is the error of the call that opened the breaker: nil when that
	// call did not fail (a slow success), for hung probes, and for outcomes
	// reported through Permit.Done or DoneAt, which carry no error.
	// Rejections during the open period wrap it.
	Cause error
}

// Stats is a snapshot of a Breaker. Counters are totals since New; rates
// are over the current window.
type Stats struct {
	Name string
	// State is what State returns.
	State State
	// Shadow is, for a metrics-only breaker, the state its rules are in
	// (what it would do); otherwise it equals State.
	Shadow State

	// Calls is the number of admitted calls that have finished:
	// Successes + Failures + Ignored.
	Calls     int64
	Successes int64
	Failures  int64
	// Ignored counts calls that were neither success nor failure.
	Ignored int64
	// Slow counts calls slower than SlowCallDuration, successful or not.
	Slow int64
	// Rejected counts calls refused with ErrOpen.
	Rejected int64
	// WouldReject counts calls a metrics-only breaker let through that it
	// would otherwise have rejected.
	WouldReject int64

	// WindowCalls is the number of calls in the window, and FailureRate and
	// SlowRate the shares of them that failed or were slow.
	WindowCalls int64
	FailureRate float64
	SlowRate    float64
	// ConsecutiveFailures is the current run of failures while closed.
	ConsecutiveFailures int
	// ProbesInFlight is the number of half-open probes not yet finished.
	ProbesInFlight int
	// Opens is the number of times the breaker has opened since it last
	// closed after successful probes (or was Reset); it drives OpenBackoff.
	Opens int

	// InState is how long the breaker has been in its current state (for a
	// metrics-only breaker, since its last change of Shadow).
	InState time.Duration
	// NextProbeIn is, when open, the time until probes are admitted; zero
	// otherwise.
	NextProbeIn time.Duration

	// LastTrip is the figures of the latest opening under the rules (kept
	// after the breaker closes again; the zero Trip if it never opened).
	// The window's own figures above describe the window now, which while
	// open holds only what it held at the trip, ageing out of a TimeWindow.
	LastTrip Trip
	// ProbeSuccesses is, when half-open, the probes of this half-open period
	// that succeeded (SuccessThreshold of them close the breaker); zero
	// otherwise. A failed probe re-opens it (see LastTrip).
	ProbeSuccesses int
}
