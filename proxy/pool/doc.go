// Package pool balances requests over the replicas of one upstream and
// takes failing replicas out of rotation: a pure state machine in which
// every decision takes the time as an argument (PickAt, Attempt.DoneAt,
// SweepAt, CheckResultAt, StatsAt), so that simulations and tests run in
// exact virtual time.
//
// # Balancing
//
// P2C (the default) draws two replicas and takes the cheaper, the cost
// being (outstanding requests + 1) × a peak-EWMA latency estimate, divided
// by the replica's weight. RoundRobin takes replicas in turn; Weighted
// takes them in smooth weighted round-robin order. PickAt skips replicas
// out of rotation and, when another replica can take the request, those
// named in exclude, so that a retry or hedge goes to a replica not yet
// tried.
//
// # Ejection and trials
//
// A replica is ejected after Outlier.ConsecutiveFailures failures in a
// row, or when its success rate over an Outlier.Interval falls below the
// pool's mean by Outlier.SuccessRate.StdevFactor standard deviations. The
// n-th ejection lasts n × BaseEjectionTime (capped); ejection never takes
// more than MaxEjectionPercent of the pool out of rotation, and never the
// last replica. When the ejection ends the replica takes TrialRequests at
// once; TrialSuccesses of them return it to rotation, one failure ejects it
// again for longer.
//
// Each replica's ejection state is a breaker.Breaker (Replica.Breaker):
// closed is in rotation, open is ejected, half-open is on trial. The pool
// drives it through the breaker's Shared link, so the health report,
// metrics and dashboard that show breakers show the replicas too.
//
// # Health checks
//
// StartChecks runs a CheckFunc (HTTPCheck for a GET of a path) against
// every replica each Health.Interval, at most one check per replica at a
// time. A passing check puts an ejected replica on trial at once instead
// of at the end of its ejection; Health.UnhealthyThreshold failing checks
// in a row mark a replica down until Health.HealthyThreshold pass.
//
// # Cost
//
// PickAt and Attempt.DoneAt take no lock that every caller shares and
// allocate nothing: the load, latency and failure counts are per-replica
// atomics; RoundRobin and Weighted share one counter; P2C's default random
// source is math/rand/v2's, which needs no lock. A replica's breaker takes
// its own lock for a failure, and for a success until its window holds only
// successes. An ejection, a trial, and the once-per-Interval analysis take
// per-replica or per-pool locks.
package pool
