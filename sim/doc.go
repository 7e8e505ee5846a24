// Package sim is sluice's simulator: it shows, in virtual time and before
// production, what a retry policy does to a struggling dependency, and
// proves that sluice's defaults keep an outage from turning into a retry
// storm. It backs the `sluice sim` command.
//
// # The model
//
// A run is a single-threaded discrete-event simulation: a heap of events in
// virtual time, seeded PCG random streams (one per purpose, so that the
// clients' arrivals are the same whichever policy is simulated), and no
// goroutines, timers or wall clock. The same Options give the same Report,
// byte for byte.
//
// Clients (10 by default) each offer 50 calls/s, open-loop (Poisson) or
// closed-loop (Options.ClosedLoop), and each has its own instance of the
// policy under test, as each service instance has its own sidecar. An
// attempt goes through the policy in the order of sluicehttp's Transport —
// retry, rate limiter, bulkhead, circuit breaker, per-attempt timeout — and
// crosses a network of |N(1 ms, 0.2 ms)| each way to the upstream: workers
// (5 per client) serving a log-normal 50 ms each from a FIFO queue that holds
// 5 s of work and sheds the rest with 503. Attempts time out after 1 s (the
// client's own timeout, or the policy's if shorter); a caller gives up on a
// call after 10 s. The upstream never learns that a client gave up, so work
// that waited past its timeout is still done, and wasted: the mechanism that
// sustains a metastable failure (Bronson et al., HotOS 2021).
//
// The decisions are the policy packages' own, taken by their state
// machines through their explicit-time forms at the virtual time of each
// event; the simulator keeps no copy of their logic. Each call is a
// retry.Call (BeginAt, then SucceededAt or FailedAt after each attempt,
// CanceledAt when the caller's deadline ends a wait), the same object
// retry.(*Retry).Execute drives, with the client's seeded jitter stream;
// the breaker admits with AllowAt and is told Permit.DoneAt with the
// outcome its Outcome method judges, the function its Execute counts with;
// the bulkhead queues attempts with its explicit-time queue (EnqueueAt,
// ReleaseAt, ExpireAt, Cancel), the queue its blocked callers wait in; the
// rate limiter answers AllowAt and ReserveAt. flow.go is the glue: the order
// of sluicehttp's Transport and the event scheduling.
//
// # Scenarios
//
// outage: the upstream answers every call with 503 for 45 s. brownout: 10 %
// of calls fail at random for 60 s. latency: every network leg takes about
// 450 ms more for 30 s. metastable: two cases against a server whose
// timed-out work is still done — a 10 s spike of offered load at twice the
// upstream's capacity, and a 30 s outage during which the upstream takes
// nothing from its queue. layers: a chain of three services, each running
// the policy, whose bottom fails for 30 s; behind sluice's sidecar a layer
// answers a failure it shed or already retried as final (Sluice-Reject,
// Sluice-Retry: no; sluice.ErrDoNotRetry to its caller), so only the bottom
// layer retries.
// backoff: the contention experiment of Brooker, "Exponential Backoff And
// Jitter" (AWS Architecture Blog, 2015), comparing no backoff, exponential
// backoff and full, equal and decorrelated jitter on write calls and
// completion time, 10 to 190 clients, 100 trials per point.
// recovery: the outage's trigger, measured after the upstream recovers at
// 100 ms resolution — the time until calls succeed at 95 % again and the
// goodput lost — for naive, sluice-default and sluice-default-checks.
//
// # Policies
//
// none (no retry), naive (3 immediate retries), no-budget-exponential (5
// attempts with exponential backoff and ±10 % jitter but no retry budget,
// the network policy of the SysManage resilience document; its former name
// original-network is still accepted), sluice-default (the policy of the
// embedded configuration `sluice serve` runs without a file), and every
// policy of any file in the sidecar's YAML schema (Options.PolicyFiles).
// sluice-default-checks (PolicySluiceDefaultChecks) is sluice-default with
// a health check of the upstream every 200 ms per instance; a passing check
// puts an open breaker on trial at once through the breaker's Shared link
// (Link.ApplyAt), the interface proxy/pool drives its replicas' breakers
// through.
//
// # Output
//
// Report.WriteTable for people, Report.WriteJSON for machines, and
// Report.WriteSVG for a plot of upstream load and goodput over time, one
// line per policy, with the incident shaded. docs/simulation.md explains
// the model, its limits and the results.
package sim
