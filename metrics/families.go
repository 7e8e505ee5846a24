package metrics

// Family describes one metric family the Collector exports.
type Family struct {
	// Name is the full metric name, sluice_...
	Name string
	// Type is "counter", "gauge" or "histogram".
	Type string
	// Help is the family's HELP text.
	Help string
	// Labels are the family's label names, in order.
	Labels []string
}

// Metrics returns every family the Collector may export, in a fixed order.
// The slice is a copy; the deploy files are checked against it.
func Metrics() []Family {
	out := make([]Family, len(families))
	for i, f := range families {
		f.Labels = append([]string(nil), f.Labels...)
		out[i] = f
	}
	return out
}

// Indexes into families, so that Collect refers to descriptors by constant.
const (
	cbState = iota
	cbStateSeconds
	cbCalls
	cbSuccesses
	cbFailures
	cbSlow
	cbRejected
	cbFailureRatio
	cbWindowCalls

	rtCalls
	rtAttempts
	rtSuccess
	rtFailures
	rtExhausted
	rtBudgetRefused
	rtDuration

	bhActive
	bhQueued
	bhLimit
	bhAdmitted
	bhRejected
	bhCanceled
	bhUtilization

	rlAllowed
	rlRejected
	rlWaited
	rlWaitSeconds
	rlTokens

	toCalls
	toExceeded

	fbTotal
	fbAlternative

	caHits
	caMisses
	caCoalesced
	caStale
	caEvictions
	caEntries

	dlqDepth
	dlqBytes
	dlqOldestAge
	dlqStatsErrors
	dlqReplayed
	dlqReplayFailures
	dlqReplayParked
	dlqReplayReleased
	dlqReplaysInFlight

	hScore
	hStatus
	hComponent
	hAlerts
	prUp
	prChecks
	prFailures

	sharedDegraded

	numFamilies
)

const (
	counter   = "counter"
	gauge     = "gauge"
	histogram = "histogram"
)

var (
	lName      = []string{"name"}
	lOperation = []string{"operation"}
	lResource  = []string{"resource"}
	lQueue     = []string{"queue"}
	lProbe     = []string{"probe"}
)

// families is the table of every exported family, indexed by the constants
// above. It is never modified.
var families = [numFamilies]Family{
	cbState:        {"sluice_circuit_breaker_state", gauge, "Circuit breaker state: 1 for the current state, 0 for the others.", []string{"name", "state"}},
	cbStateSeconds: {"sluice_circuit_breaker_state_seconds", gauge, "Seconds the circuit breaker has been in its current state.", lName},
	cbCalls:        {"sluice_circuit_breaker_calls_total", counter, "Calls the circuit breaker admitted that have finished.", lName},
	cbSuccesses:    {"sluice_circuit_breaker_successes_total", counter, "Admitted calls that succeeded.", lName},
	cbFailures:     {"sluice_circuit_breaker_failures_total", counter, "Admitted calls that failed.", lName},
	cbSlow:         {"sluice_circuit_breaker_slow_calls_total", counter, "Admitted calls slower than the slow-call duration.", lName},
	cbRejected:     {"sluice_circuit_breaker_rejected_total", counter, "Calls the circuit breaker refused while open.", lName},
	cbFailureRatio: {"sluice_circuit_breaker_failure_ratio", gauge, "Share of failed calls in the circuit breaker's sliding window.", lName},
	cbWindowCalls:  {"sluice_circuit_breaker_window_calls", gauge, "Calls in the circuit breaker's sliding window.", lName},

	rtCalls:         {"sluice_retry_calls_total", counter, "Calls finished by the retry policy, each of one or more attempts.", lOperation},
	rtAttempts:      {"sluice_retry_attempts_total", counter, "Attempts made, by attempt number (1 is the first try).", []string{"operation", "attempt"}},
	rtSuccess:       {"sluice_retry_success_total", counter, "Calls that succeeded, on any attempt.", lOperation},
	rtFailures:      {"sluice_retry_failures_total", counter, "Calls that failed after their last attempt.", lOperation},
	rtExhausted:     {"sluice_retry_exhausted_total", counter, "Calls that ran out of attempts or time.", lOperation},
	rtBudgetRefused: {"sluice_retry_budget_refused_total", counter, "Calls whose retry the retry budget refused.", lOperation},
	rtDuration:      {"sluice_retry_duration_seconds", histogram, "Duration of retried operations, first attempt to last (sampled).", lOperation},

	bhActive:      {"sluice_bulkhead_active_calls", gauge, "Calls holding a bulkhead permit.", lResource},
	bhQueued:      {"sluice_bulkhead_queued_calls", gauge, "Calls waiting for a bulkhead permit.", lResource},
	bhLimit:       {"sluice_bulkhead_limit_calls", gauge, "The bulkhead's current concurrency limit.", lResource},
	bhAdmitted:    {"sluice_bulkhead_admitted_calls_total", counter, "Calls that got a bulkhead permit.", lResource},
	bhRejected:    {"sluice_bulkhead_rejected_calls_total", counter, "Calls the bulkhead rejected.", lResource},
	bhCanceled:    {"sluice_bulkhead_canceled_calls_total", counter, "Calls whose context ended while they queued.", lResource},
	bhUtilization: {"sluice_bulkhead_utilization_ratio", gauge, "Active calls divided by the bulkhead's limit.", lResource},

	rlAllowed:     {"sluice_rate_limiter_allowed_total", counter, "Calls the rate limiter admitted.", lName},
	rlRejected:    {"sluice_rate_limiter_rejected_total", counter, "Calls the rate limiter refused.", lName},
	rlWaited:      {"sluice_rate_limiter_waited_total", counter, "Admitted calls that waited for a token.", lName},
	rlWaitSeconds: {"sluice_rate_limiter_wait_seconds_total", counter, "Total time admitted calls waited for tokens.", lName},
	rlTokens:      {"sluice_rate_limiter_tokens", gauge, "Tokens in the bucket now (negative while waiters hold future tokens).", lName},

	toCalls:    {"sluice_timeout_calls_total", counter, "Calls run under the timeout.", lName},
	toExceeded: {"sluice_timeout_exceeded_total", counter, "Calls that failed because the timeout passed.", lName},

	fbTotal:       {"sluice_fallback_total", counter, "Calls through the fallback, by the branch that answered.", []string{"name", "branch"}},
	fbAlternative: {"sluice_fallback_alternative_total", counter, "Tries of each fallback alternative, by outcome.", []string{"name", "alternative", "outcome"}},

	caHits:      {"sluice_cache_hits_total", counter, "Gets answered by a fresh cached value.", lName},
	caMisses:    {"sluice_cache_misses_total", counter, "Calls the cache started (one per coalesced group).", lName},
	caCoalesced: {"sluice_cache_coalesced_total", counter, "Gets that waited on another caller's call.", lName},
	caStale:     {"sluice_cache_stale_total", counter, "Gets answered by a stale value after a failed call.", lName},
	caEvictions: {"sluice_cache_evictions_total", counter, "Entries evicted to make room.", lName},
	caEntries:   {"sluice_cache_entries", gauge, "Entries held by the cache.", lName},

	dlqDepth:       {"sluice_dlq_depth", gauge, "Messages in the dead-letter queue, by state (ready, parked).", []string{"queue", "state"}},
	dlqBytes:       {"sluice_dlq_bytes", gauge, "Stored size of the dead-letter queue's messages.", lQueue},
	dlqOldestAge:   {"sluice_dlq_oldest_age_seconds", gauge, "Age of the oldest message in the dead-letter queue.", lQueue},
	dlqStatsErrors: {"sluice_dlq_stats_errors_total", counter, "Scrapes at which a dead-letter store's Stats failed.", nil},

	dlqReplayed:        {"sluice_dlq_replayed_total", counter, "Dead-letter messages replayed successfully (and deleted) by the queue's replayer.", lQueue},
	dlqReplayFailures:  {"sluice_dlq_replay_failures_total", counter, "Failed replays of the queue's messages, including those that parked them.", lQueue},
	dlqReplayParked:    {"sluice_dlq_replay_parked_total", counter, "Messages the queue's replayer parked after their last failed replay.", lQueue},
	dlqReplayReleased:  {"sluice_dlq_replay_released_total", counter, "Replays that did not count (the replayer stopping, the upstream refusing), the message kept as it was.", lQueue},
	dlqReplaysInFlight: {"sluice_dlq_replays_in_flight", gauge, "Replays of the queue's messages running now.", lQueue},

	hScore:     {"sluice_health_score", gauge, "Overall resilience health score, 0 to 1.", nil},
	hStatus:    {"sluice_health_status", gauge, "Overall health status: 1 for the current status, 0 for the others.", []string{"status"}},
	hComponent: {"sluice_health_component_score", gauge, "Score of each health component (breakers, bulkheads, retries).", []string{"component"}},
	hAlerts:    {"sluice_health_alerts", gauge, "Health alerts raised now, by type and severity.", []string{"type", "severity"}},
	prUp:       {"sluice_probe_up", gauge, "1 while the probe target is healthy, 0 while unhealthy.", lProbe},
	prChecks:   {"sluice_probe_checks_total", counter, "Checks the probe made.", lProbe},
	prFailures: {"sluice_probe_failures_total", counter, "Checks that failed.", lProbe},

	sharedDegraded: {"sluice_shared_degraded", gauge, "1 while the shared component works from local state (its shared store unreachable), 0 while shared.", []string{"component"}},
}
