// Package breaker is a circuit breaker: it watches the outcomes of calls to a
// dependency and, when too many fail or are slow, rejects calls for a while
// (with ErrOpen) so that the dependency can recover and the caller does not
// wait on it, then lets a bounded number of probe calls through and closes
// again once they succeed.
//
// # States and rules
//
// A closed breaker admits every call and records each outcome in a sliding
// window: the last WindowSize calls (CountWindow) or the last WindowDuration
// (TimeWindow, kept in WindowBuckets buckets). It opens when FailureThreshold
// consecutive calls fail, or, once the window holds MinimumCalls calls, when
// the share of failures reaches FailureRateThreshold or the share of calls
// slower than SlowCallDuration reaches SlowCallRateThreshold.
//
// An open breaker rejects every call. After OpenFor (lengthened by
// OpenBackoff each time it opens again without having closed in between) it
// turns half-open by itself, whether or not calls arrive.
//
// A half-open breaker admits at most HalfOpenCalls probe calls at once and
// rejects everyone else. SuccessThreshold probe successes close it, with an
// empty window; one probe failure (or a slow probe, when
// SlowCallRateThreshold is set) opens it again. If probes are out and none
// has finished for HalfOpenMaxWait, the breaker gives up on them and opens
// again, so that a hung probe cannot keep it half-open forever. A half-open
// breaker with no probe out waits for the next call.
//
// Which outcomes count is decided by Config.IsFailure (by default the shared
// sluice classifier). A call whose caller gave up (its context done and a
// context error returned) counts as neither success nor failure. A panic
// counts as a failure and keeps unwinding.
//
// An operator can take over: ForceOpen rejects everything, Disable admits
// everything and never trips, SetMetricsOnly admits everything while the
// rules keep running as a dry run, and ForceClosed and Reset hand control
// back to the rules in the closed state.
//
// # Time and concurrency
//
// Methods that read the configured Clock are named X, methods that take the
// time as an argument XAt. Allow grants a Permit whose Done(outcome,
// elapsed) reports the call, judged by Outcome(ctx, err) as Execute judges
// it; like Execute, the sluice.Policy method, they read the clock only when
// they must. AllowAt(now), Permit.DoneAt(now, outcome, elapsed),
// StateAt(now) and StatsAt(now) are the same state machine with time as an
// argument, for simulators and tests; they apply the timed changes due by
// then. Each
// change of state bumps a generation, so that the outcome of a call admitted
// before the change does not count after it.
//
// A successful call through a closed breaker whose count window holds only
// successes reads one atomic word and bumps a striped counter: no lock, no
// allocation, no cache line written by every caller. A rejected call
// allocates nothing either. Time windows, slow-call measurement and
// failures take the breaker's mutex.
//
// # Shared across instances
//
// Config.Shared links a breaker to the breakers of the same name in other
// instances (sluiceredis.BreakerSync keeps the link on Redis): a trip on
// one instance opens all, the fleet sends HalfOpenCalls probes at once in
// total, and the probes' outcomes close or reopen every instance. The
// breaker keeps its own rules and its lock-free closed path; the link only
// feeds it the fleet's state (Link.ApplyAt) and, when it fails
// (Link.LostAt), leaves it to its local rules. See Shared.
package breaker
