package health

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/registry"
)

// Report is the health of the resilience layer at one moment: what
// Evaluate returns, what /health serves as JSON and /health/report as text.
// docs/health.md describes its JSON form field by field.
type Report struct {
	// GeneratedAt is the Monitor's clock when the report was made.
	GeneratedAt time.Time `json:"generated_at"`
	// Instance is Config.Instance: which process of a fleet the report is
	// of; absent when not configured.
	Instance string `json:"instance,omitempty"`
	// Score is the mean of Components, in [0, 1]; 1 when there are none.
	Score float64 `json:"score"`
	// Status is StatusFor(Score).
	Status Status `json:"status"`
	// StatusSince is when the Monitor's evaluations first gave Status
	// after giving another one, or its first evaluation: what a dashboard
	// shows as "since", whenever it started watching.
	StatusSince time.Time `json:"status_since"`
	// Components are the parts of the score present in the registry, in
	// the order breakers, bulkheads, retries.
	Components []Component `json:"components"`
	// WindowSeconds is the Monitor's Window: the span of the retry and
	// limiter rates.
	WindowSeconds float64 `json:"window_seconds"`

	Breakers  BreakerSummary   `json:"breakers"`
	Bulkheads []BulkheadReport `json:"bulkheads"`
	Retries   []RetryReport    `json:"retries"`
	Limiters  []LimiterReport  `json:"limiters"`
	DLQ       []QueueReport    `json:"dlq"`
	// DLQErrors lists the dead-letter stores whose Stats failed.
	DLQErrors []string      `json:"dlq_errors"`
	Probes    []ProbeReport `json:"probes"`
	// Shared lists the components of Config.Shared by name; absent when
	// there are none.
	Shared []SharedReport `json:"shared,omitempty"`
	// Alerts are the thresholds crossed now, in the order overall,
	// breakers, retries, bulkheads, dead-letter queues, probes, shared
	// components.
	Alerts []Alert `json:"alerts"`
}

// Component is one part of the score.
type Component struct {
	// Name is "breakers", "bulkheads" or "retries".
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// BreakerSummary counts the breakers by state, as the SysManage document's report did,
// and lists them.
type BreakerSummary struct {
	Total int `json:"total"`
	// Open counts open and forced-open breakers.
	Open     int `json:"open"`
	HalfOpen int `json:"half_open"`
	// Closed counts the rest: closed, disabled and metrics-only breakers.
	Closed int             `json:"closed"`
	Items  []BreakerReport `json:"items"`
}

// BreakerReport is one breaker's state.
type BreakerReport struct {
	Name string `json:"name"`
	// State is the breaker's state as breaker.State.String spells it.
	State          string  `json:"state"`
	InStateSeconds float64 `json:"in_state_seconds"`
	// NextProbeSeconds is, when open, the time until probes are admitted.
	NextProbeSeconds float64 `json:"next_probe_seconds"`
	// FailureRate and SlowRate are the shares of the WindowCalls calls that
	// failed or were slow, the figures that explain the state: closed, the
	// breaker's own sliding window; open, the window when it tripped (Trip),
	// since while open the window only ages; half-open, the probes of this
	// half-open period (a failed probe re-opens it, so they all succeeded).
	FailureRate float64 `json:"failure_rate"`
	SlowRate    float64 `json:"slow_call_rate"`
	WindowCalls int64   `json:"window_calls"`
	// ProbeSuccesses is, when half-open, the probes that succeeded so far;
	// ProbesInFlight the probes not finished.
	ProbeSuccesses int `json:"probe_successes"`
	ProbesInFlight int `json:"probes_in_flight"`
	// Calls, Failures and Rejected are totals since the breaker was made.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	Rejected int64 `json:"rejected"`
	// Trip is the breaker's latest opening under its rules, when it is open
	// or half-open; absent otherwise.
	Trip *TripReport `json:"trip,omitempty"`
}

// TripReport is why and when a breaker opened, from breaker.Trip.
type TripReport struct {
	// At is when it opened.
	At time.Time `json:"at"`
	// Reason is the rule that opened it, as breaker.TripReason.String
	// spells it: consecutive-failures, failure-rate, slow-call-rate,
	// probe-failed, probe-slow or probe-hung.
	Reason string `json:"reason"`
	// Calls is the number of calls the rule looked at (the window's, or the
	// probes of a half-open period) and Failures those that failed;
	// FailureRate and SlowRate are shares of Calls.
	Calls               int64   `json:"calls"`
	Failures            int64   `json:"failures"`
	FailureRate         float64 `json:"failure_rate"`
	SlowRate            float64 `json:"slow_call_rate"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	// Cause is the error of the call that opened it (at most 200 bytes),
	// empty when that call did not fail or is unknown.
	Cause string `json:"cause,omitempty"`
}

// maxCauseLen bounds the error text a report carries.
const maxCauseLen = 200

// breakerReport describes one breaker with the figures that explain its
// state (see BreakerReport.FailureRate).
func breakerReport(name string, s breaker.Stats) BreakerReport {
	x := BreakerReport{
		Name: name, State: s.State.String(),
		InStateSeconds: s.InState.Seconds(), NextProbeSeconds: s.NextProbeIn.Seconds(),
		FailureRate: s.FailureRate, SlowRate: s.SlowRate, WindowCalls: s.WindowCalls,
		ProbeSuccesses: s.ProbeSuccesses, ProbesInFlight: s.ProbesInFlight,
		Calls: s.Calls, Failures: s.Failures, Rejected: s.Rejected,
	}
	switch s.Shadow {
	case breaker.StateOpen:
		t := s.LastTrip
		x.FailureRate, x.SlowRate, x.WindowCalls = t.FailureRate, t.SlowRate, t.Calls
	case breaker.StateHalfOpen:
		x.FailureRate, x.SlowRate, x.WindowCalls = 0, 0, int64(s.ProbeSuccesses)
	default:
		return x
	}
	if t := s.LastTrip; t.Reason != breaker.TripNone {
		x.Trip = &TripReport{
			At: t.At, Reason: t.Reason.String(), Calls: t.Calls, Failures: t.Failures,
			FailureRate: t.FailureRate, SlowRate: t.SlowRate, ConsecutiveFailures: t.ConsecutiveFailures,
		}
		if t.Cause != nil {
			x.Trip.Cause = t.Cause.Error()
			if len(x.Trip.Cause) > maxCauseLen {
				x.Trip.Cause = x.Trip.Cause[:maxCauseLen]
			}
		}
	}
	return x
}

// String describes the trip for the text report, e.g. "tripped at 12:00:00
// UTC by the failure rate: 60.00% of 20 calls failed; cause: ...".
func (t TripReport) String() string {
	var why string
	switch t.Reason {
	case breaker.TripConsecutive.String():
		why = fmt.Sprintf("%d consecutive failures", t.ConsecutiveFailures)
	case breaker.TripFailureRate.String():
		why = fmt.Sprintf("the failure rate: %s of %d calls failed", pct(t.FailureRate), t.Calls)
	case breaker.TripSlowRate.String():
		why = fmt.Sprintf("the slow-call rate: %s of %d calls slow", pct(t.SlowRate), t.Calls)
	case breaker.TripProbeFailed.String():
		why = fmt.Sprintf("a failed probe, after %d that succeeded", max(t.Calls-1, 0))
	case breaker.TripProbeSlow.String():
		why = fmt.Sprintf("a slow probe, after %d that succeeded", max(t.Calls-1, 0))
	case breaker.TripProbeHung.String():
		why = "probes that did not finish in time"
	default:
		why = t.Reason
	}
	out := "tripped at " + t.At.UTC().Format("15:04:05 UTC") + " by " + why
	if t.Cause != "" {
		out += "; cause: " + t.Cause
	}
	return out
}

// BulkheadReport is one bulkhead's load.
type BulkheadReport struct {
	Name   string `json:"name"`
	Active int    `json:"active"`
	Queued int    `json:"queued"`
	Limit  int    `json:"limit"`
	// Utilization is Active/Limit.
	Utilization float64 `json:"utilization"`
	// RejectionRate is the bulkhead's recent rejection rate (about the last
	// minute).
	RejectionRate float64 `json:"rejection_rate"`
	// Rejected is the total since the bulkhead was made.
	Rejected int64 `json:"rejected"`
}

// RetryReport is one retry policy's outcomes.
type RetryReport struct {
	Name string `json:"name"`
	// WindowCalls and WindowFailures count the calls that finished in the
	// window; SuccessRate is the share that succeeded (1 when none did).
	WindowCalls    int64   `json:"window_calls"`
	WindowFailures int64   `json:"window_failures"`
	SuccessRate    float64 `json:"success_rate"`
	// The rest are totals since the policy was made.
	Calls         int64 `json:"calls"`
	Retries       int64 `json:"retries"`
	Exhausted     int64 `json:"exhausted"`
	BudgetRefused int64 `json:"budget_refused"`
}

// LimiterReport is one rate limiter's decisions.
type LimiterReport struct {
	Name string `json:"name"`
	// WindowCalls and WindowRejected count the decisions made in the
	// window; RejectionRate is the share refused.
	WindowCalls    int64   `json:"window_calls"`
	WindowRejected int64   `json:"window_rejected"`
	RejectionRate  float64 `json:"rejection_rate"`
	// Allowed and Rejected are totals since the limiter was made.
	Allowed  int64 `json:"allowed"`
	Rejected int64 `json:"rejected"`
	// Tokens is the bucket's content now, Burst its size, Rate tokens per
	// PerSeconds (Rate 0: unlimited).
	Tokens     float64 `json:"tokens"`
	Burst      int     `json:"burst"`
	Rate       float64 `json:"rate"`
	PerSeconds float64 `json:"per_seconds"`
}

// QueueReport is one dead-letter queue's depth and age.
type QueueReport struct {
	Queue            string  `json:"queue"`
	Ready            int64   `json:"ready"`
	Parked           int64   `json:"parked"`
	Depth            int64   `json:"depth"`
	Bytes            int64   `json:"bytes"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// Severity says how urgently an alert needs a person.
type Severity string

// The severities.
const (
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// The alert types. Breaker alerts keep the SysManage resilience document's names.
const (
	AlertHealthCritical   = "health_critical"      // overall status critical
	AlertBreakerOpen      = "circuit_breaker_open" // open longer than BreakerOpenFor
	AlertHighFailureRate  = "high_failure_rate"    // a breaker's window fails too often
	AlertRetryFailureRate = "retry_failure_rate"   // a retry policy's calls fail too often
	AlertRejectionRate    = "high_rejection_rate"  // a bulkhead rejects too often
	AlertDLQAge           = "dlq_age"              // oldest message too old
	AlertDLQDepth         = "dlq_depth"            // too many messages
	AlertDLQParked        = "dlq_parked"           // too many parked messages
	AlertDLQUnavailable   = "dlq_unavailable"      // a store's Stats failed
	AlertProbeUnhealthy   = "probe_unhealthy"      // a probe target is down
)

// Alert is one crossed threshold.
type Alert struct {
	// Type is one of the Alert... constants.
	Type     string   `json:"type"`
	Severity Severity `json:"severity"`
	// Subject is what the alert is about: a breaker, retry policy,
	// bulkhead, queue or probe name, or "overall".
	Subject string `json:"subject"`
	// Message is a sentence for an operator.
	Message string `json:"message"`
	// Value is the measured value and Threshold the limit it crossed, in
	// seconds for durations and as a share (0..1) for rates.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Since is when the alert was first raised; it has been active at every
	// evaluation since.
	Since time.Time `json:"since"`
}

// build assembles a report without its alerts.
func build(now time.Time, window time.Duration, snap registry.Snapshot, w windowRates,
	queues []dlq.QueueStats, dlqErrs []string, probes []ProbeReport) Report {
	r := Report{
		GeneratedAt:   now,
		WindowSeconds: window.Seconds(),
		Components:    []Component{},
		Breakers:      BreakerSummary{Items: make([]BreakerReport, 0, len(snap.Breakers))},
		Bulkheads:     make([]BulkheadReport, 0, len(snap.Bulkheads)),
		Retries:       make([]RetryReport, 0, len(snap.Retries)),
		Limiters:      make([]LimiterReport, 0, len(snap.Limiters)),
		DLQ:           make([]QueueReport, 0, len(queues)),
		DLQErrors:     append([]string{}, dlqErrs...),
		Probes:        append([]ProbeReport{}, probes...),
		Alerts:        []Alert{},
	}

	bs := &r.Breakers
	for _, b := range snap.Breakers {
		s := b.Stats
		bs.Total++
		switch s.State {
		case breaker.StateOpen, breaker.StateForcedOpen:
			bs.Open++
		case breaker.StateHalfOpen:
			bs.HalfOpen++
		default:
			bs.Closed++
		}
		bs.Items = append(bs.Items, breakerReport(b.Name, s))
	}
	if bs.Total > 0 {
		// (total-open)/total rather than 1-open/total: exact at the 0.8 boundary.
		r.Components = append(r.Components, Component{"breakers", float64(bs.Total-bs.Open) / float64(bs.Total)})
	}

	var rejSum float64
	for _, b := range snap.Bulkheads {
		s := b.Stats
		r.Bulkheads = append(r.Bulkheads, BulkheadReport{
			Name: b.Name, Active: s.Active, Queued: s.Queued, Limit: s.Limit,
			Utilization: s.Utilization, RejectionRate: s.RecentRejectionRate, Rejected: s.Rejected,
		})
		rejSum += s.RecentRejectionRate
	}
	if n := len(snap.Bulkheads); n > 0 {
		r.Components = append(r.Components, Component{"bulkheads", 1 - rejSum/float64(n)})
	}

	var all pair
	for _, x := range snap.Retries {
		s := x.Stats
		p := w.retries[x.Name]
		all.total += p.total
		all.bad += p.bad
		r.Retries = append(r.Retries, RetryReport{
			Name: x.Name, WindowCalls: p.total, WindowFailures: p.bad, SuccessRate: 1 - p.rate(),
			Calls: s.Calls, Retries: s.Retries, Exhausted: s.Exhausted, BudgetRefused: s.BudgetRefused,
		})
	}
	if len(snap.Retries) > 0 {
		// Weighted by calls, as the SysManage document's aggregate success rate.
		r.Components = append(r.Components, Component{"retries", 1 - all.rate()})
	}

	for _, l := range snap.Limiters {
		s := l.Stats
		p := w.limiters[l.Name]
		r.Limiters = append(r.Limiters, LimiterReport{
			Name: l.Name, WindowCalls: p.total, WindowRejected: p.bad, RejectionRate: p.rate(),
			Allowed: s.Allowed, Rejected: s.Rejected,
			Tokens: s.Tokens, Burst: s.Burst, Rate: s.Rate, PerSeconds: s.Per.Seconds(),
		})
	}

	for _, q := range queues {
		r.DLQ = append(r.DLQ, QueueReport{
			Queue: q.Queue, Ready: q.Ready, Parked: q.Parked, Depth: q.Depth(), Bytes: q.Bytes,
			OldestAgeSeconds: q.OldestAgeAt(now).Seconds(),
		})
	}

	r.Score = 1
	if n := len(r.Components); n > 0 {
		var sum float64
		for _, c := range r.Components {
			sum += c.Score
		}
		r.Score = sum / float64(n)
	}
	r.Status = StatusFor(r.Score)
	return r
}

// check returns the alerts of r (and the raw stats behind it) against t.
func (t Thresholds) check(now time.Time, r *Report, snap registry.Snapshot, queues []dlq.QueueStats) []Alert {
	out := []Alert{}
	if r.Status == StatusCritical {
		out = append(out, Alert{
			Type: AlertHealthCritical, Severity: SeverityCritical, Subject: "overall",
			Message: fmt.Sprintf("Overall health score %s is critical (not above 60.00%%)", pct(r.Score)),
			Value:   r.Score, Threshold: 0.6,
		})
	}
	for _, b := range snap.Breakers {
		s := b.Stats
		open := s.State == breaker.StateOpen || s.State == breaker.StateForcedOpen
		if open && t.BreakerOpenFor > 0 && s.InState > t.BreakerOpenFor {
			how := "open"
			if s.State == breaker.StateForcedOpen {
				how = "forced open"
			}
			out = append(out, Alert{
				Type: AlertBreakerOpen, Severity: SeverityWarning, Subject: b.Name,
				Message: fmt.Sprintf("Circuit breaker '%s' has been %s for %.1f seconds", b.Name, how, s.InState.Seconds()),
				Value:   s.InState.Seconds(), Threshold: t.BreakerOpenFor.Seconds(),
			})
		}
		if t.FailureRate > 0 && s.WindowCalls >= t.MinCalls && s.FailureRate > t.FailureRate {
			out = append(out, Alert{
				Type: AlertHighFailureRate, Severity: SeverityWarning, Subject: b.Name,
				Message: fmt.Sprintf("High failure rate for circuit breaker '%s': %s of the last %d calls",
					b.Name, pct(s.FailureRate), s.WindowCalls),
				Value: s.FailureRate, Threshold: t.FailureRate,
			})
		}
	}
	for _, x := range r.Retries {
		rate := 1 - x.SuccessRate
		if t.FailureRate > 0 && x.WindowCalls >= t.MinCalls && rate > t.FailureRate {
			out = append(out, Alert{
				Type: AlertRetryFailureRate, Severity: SeverityWarning, Subject: x.Name,
				Message: fmt.Sprintf("High failure rate for retry policy '%s': %s of %d calls in the last %v",
					x.Name, pct(rate), x.WindowCalls, time.Duration(r.WindowSeconds*float64(time.Second))),
				Value: rate, Threshold: t.FailureRate,
			})
		}
	}
	for _, b := range r.Bulkheads {
		if t.RejectionRate > 0 && b.RejectionRate > t.RejectionRate {
			out = append(out, Alert{
				Type: AlertRejectionRate, Severity: SeverityWarning, Subject: b.Name,
				Message: fmt.Sprintf("High rejection rate for bulkhead '%s': %s of recent calls rejected",
					b.Name, pct(b.RejectionRate)),
				Value: b.RejectionRate, Threshold: t.RejectionRate,
			})
		}
	}
	out = append(out, t.DLQ.CheckAllAt(now, queues)...)
	for _, e := range r.DLQErrors {
		subject, _, _ := strings.Cut(e, ":")
		out = append(out, Alert{
			Type: AlertDLQUnavailable, Severity: SeverityWarning, Subject: subject,
			Message: "Dead-letter store " + e,
		})
	}
	for _, p := range r.Probes {
		if !p.Healthy {
			out = append(out, Alert{
				Type: AlertProbeUnhealthy, Severity: SeverityCritical, Subject: p.Name,
				Message: fmt.Sprintf("Probe '%s' (%s) is unhealthy after %d consecutive failures: %s",
					p.Name, p.URL, p.ConsecutiveFailures, p.LastError),
				Value: float64(p.ConsecutiveFailures), Threshold: float64(p.FailureThreshold),
			})
		}
	}
	return out
}

// pct formats a share as the SysManage document's report did ({:.2%}).
func pct(x float64) string { return fmt.Sprintf("%.2f%%", x*100) }

// String returns the text report.
func (r Report) String() string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// maxSectionAlerts is how many alerts a section lists, as the SysManage document's
// "top 5".
const maxSectionAlerts = 5

// WriteText writes the human-readable report, laid out as the SysManage
// resilience document's: the score and status, then breakers, bulkheads, retries,
// limiters, dead-letter queues and probes, each with its alerts.
func (r Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	window := time.Duration(r.WindowSeconds * float64(time.Second))

	p("=== Sluice Resilience Health Report ===")
	p("Generated at: %s", r.GeneratedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	if r.Instance != "" {
		p("Instance: %s", r.Instance)
	}
	p("")
	p("Overall Health Score: %s (%s)", pct(r.Score), strings.ToUpper(string(r.Status)))
	if len(r.Components) > 0 {
		parts := make([]string, len(r.Components))
		for i, c := range r.Components {
			parts[i] = fmt.Sprintf("%s %s", c.Name, pct(c.Score))
		}
		p("  Components: %s", strings.Join(parts, ", "))
	}
	r.writeAlerts(&b, "  ", AlertHealthCritical)
	p("")

	p("Circuit Breakers:")
	p("  Total: %d", r.Breakers.Total)
	p("  Open: %d", r.Breakers.Open)
	p("  Half-Open: %d", r.Breakers.HalfOpen)
	r.writeAlerts(&b, "  ", AlertBreakerOpen, AlertHighFailureRate)
	for _, x := range r.Breakers.Items {
		line := fmt.Sprintf("  %s: %s for %v", x.Name, x.State, secs(x.InStateSeconds))
		if x.NextProbeSeconds > 0 {
			line += fmt.Sprintf(" (next probe in %v)", secs(x.NextProbeSeconds))
		}
		if x.State == breaker.StateHalfOpen.String() {
			noun := "probes"
			if x.ProbeSuccesses == 1 {
				noun = "probe"
			}
			p("%s, %d %s succeeded, %d in flight, %d rejected", line, x.ProbeSuccesses, noun, x.ProbesInFlight, x.Rejected)
		} else {
			p("%s, failure rate %s of %d calls, %d rejected", line, pct(x.FailureRate), x.WindowCalls, x.Rejected)
		}
		if x.Trip != nil {
			p("    %s", x.Trip)
		}
	}
	p("")

	p("Resource Bulkheads:")
	for _, x := range r.Bulkheads {
		p("  %s: %.1f%% utilization, %s rejection rate (%d/%d active, %d queued)",
			x.Name, x.Utilization*100, pct(x.RejectionRate), x.Active, x.Limit, x.Queued)
	}
	none(&b, len(r.Bulkheads))
	r.writeAlerts(&b, "  ", AlertRejectionRate)
	p("")

	p("Retries (last %v):", window)
	for _, x := range r.Retries {
		p("  %s: %s success of %d calls; since start %d calls, %d retries, %d exhausted, %d refused by budget",
			x.Name, pct(x.SuccessRate), x.WindowCalls, x.Calls, x.Retries, x.Exhausted, x.BudgetRefused)
	}
	none(&b, len(r.Retries))
	r.writeAlerts(&b, "  ", AlertRetryFailureRate)
	p("")

	p("Rate Limiters (last %v):", window)
	for _, x := range r.Limiters {
		p("  %s: %s rejected of %d calls, %.1f of %d tokens left", x.Name, pct(x.RejectionRate), x.WindowCalls, x.Tokens, x.Burst)
	}
	none(&b, len(r.Limiters))
	p("")

	p("Dead-Letter Queues:")
	for _, x := range r.DLQ {
		p("  %s: %d ready, %d parked, oldest %v", x.Queue, x.Ready, x.Parked, secs(x.OldestAgeSeconds))
	}
	for _, e := range r.DLQErrors {
		p("  unavailable: %s", e)
	}
	none(&b, len(r.DLQ)+len(r.DLQErrors))
	r.writeAlerts(&b, "  ", AlertDLQAge, AlertDLQDepth, AlertDLQParked)
	p("")

	p("Probes:")
	for _, x := range r.Probes {
		state := "HEALTHY"
		if !x.Healthy {
			state = "UNHEALTHY"
		}
		line := fmt.Sprintf("  %s (%s): %s", x.Name, x.URL, state)
		switch {
		case x.Checks == 0:
			line += ", not checked yet"
		case x.ConsecutiveFailures > 0:
			line += fmt.Sprintf(", %d consecutive failures, last error: %s", x.ConsecutiveFailures, x.LastError)
		default:
			line += fmt.Sprintf(", %d consecutive successes, last status %d", x.ConsecutiveSuccesses, x.LastStatus)
		}
		p("%s", line)
	}
	none(&b, len(r.Probes))
	r.writeAlerts(&b, "  ", AlertProbeUnhealthy)
	r.writeShared(&b)

	_, err := w.Write(b.Bytes())
	return err
}

// writeAlerts lists the alerts of the given types, at most
// maxSectionAlerts of them.
func (r Report) writeAlerts(b *bytes.Buffer, indent string, types ...string) {
	var msgs []string
	for _, a := range r.Alerts {
		for _, t := range types {
			if a.Type == t {
				msgs = append(msgs, a.Message)
			}
		}
	}
	if len(msgs) == 0 {
		return
	}
	fmt.Fprintf(b, "%sAlerts:\n", indent)
	for i, m := range msgs {
		if i == maxSectionAlerts {
			fmt.Fprintf(b, "%s  ... and %d more\n", indent, len(msgs)-i)
			break
		}
		fmt.Fprintf(b, "%s  - %s\n", indent, m)
	}
}

func none(b *bytes.Buffer, n int) {
	if n == 0 {
		b.WriteString("  (none)\n")
	}
}

// secs turns seconds back into a duration rounded to the second, for text.
func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}
