// Package health tells an operator, at a glance, how sluice's resilience
// layer is holding up: an overall score and status, alerts, a human-readable
// report, a JSON document for tools, and optional active probes of
// upstreams.
//
// # The score
//
// A Monitor reads every named breaker, bulkhead, retry policy and rate
// limiter in a registry.Registry, the depth and age of dead-letter queues
// (any dlq.Store), and the state of its probes. From the policies it
// computes the SysManage resilience document's three components:
//
//   - breakers: 1 − open/total, where open counts open and forced-open
//     breakers;
//   - bulkheads: 1 − the mean over bulkheads of their recent rejection rate;
//   - retries: the success rate of the calls made through every retry
//     policy over the monitor's Window (1 when there were none).
//
// The score is the mean of the components present (a registry without
// bulkheads has no bulkhead component; with no component at all the score
// is 1). The status is healthy above 0.8, degraded above 0.6, and critical
// otherwise. Probes, dead-letter queues and shared components (Config.Shared:
// a Redis limiter, a failover dead-letter store, a breaker sync, working
// from local state while Redis is away) do not move the score; they raise
// alerts.
//
// # Windows
//
// Rates are recent, so the score recovers when the dependency does:
//
//   - a breaker's failure rate is the breaker's own sliding window
//     (breaker.Config.WindowSize or WindowDuration);
//   - a bulkhead's rejection rate is bulkhead.Stats.RecentRejectionRate,
//     about the last minute when Stats is read at least every 10 seconds,
//     which Run does (Config.EvaluateEvery);
//   - retry success rates and limiter rejection rates come from snapshots
//     of their counters that the Monitor keeps at every evaluation, at most
//     one per tenth of Config.Window (5 minutes by default): a rate is the
//     difference between now and the newest snapshot at least Window old
//     (or the oldest snapshot, while the monitor is younger than Window).
//
// # Alerts
//
// Evaluate checks the Thresholds: a breaker open longer than BreakerOpenFor
// (300 s), a breaker's or a retry policy's failure rate above FailureRate
// (30 %), a bulkhead's recent rejection rate above RejectionRate (10 %), a
// dead-letter queue deeper or older than its limits, a probe target marked
// unhealthy, and an overall status of critical. Each Alert carries its
// type, severity, subject, message, the measured value and the threshold,
// and the time it was first raised; the Monitor logs each alert once when
// it is raised (Warn) and once when it clears (Info).
//
// # Probes
//
// A ProbeConfig names a URL that Run fetches with GET every Interval, each
// request bounded by Timeout. A target starts healthy, is marked unhealthy
// after FailureThreshold consecutive failures (an error, a timeout, or a
// status outside 200–399), and healthy again after SuccessThreshold
// consecutive successes. Probe runs every probe once, for tests and for
// callers with their own schedule; ProbeHealthy can serve as a dead-letter
// Replayer's Gate.
//
// # Serving
//
// Handler serves /health (the JSON document; 200 while healthy or degraded,
// 503 when critical, so a load balancer can act on it) and /health/report
// (the text report). docs/health.md describes the JSON document field by
// field. Times in the report come from the Monitor's clock, so a report made
// with a sluicetest.FakeClock is reproducible.
package health
