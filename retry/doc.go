// Package retry is sluice's retry policy: it runs a call again when an
// attempt fails in a retryable way, waiting longer between attempts, and
// stops before retries can make an outage worse.
//
// # The model
//
// A Retry is made by New from a Config and is a sluice.Policy. Each call gets
// up to MaxAttempts attempts (3 by default) within MaxElapsed. After a failed
// attempt the policy asks, in order: did the caller give up (its context is
// done)? Is the error retryable (Config.RetryOn, else the Classifier — the
// shared sluice classifier by default)? Is the work idempotent (see
// sluice.WithIdempotent and Config.RetryNonIdempotent)? Are attempts and time
// left? Does the retry budget allow it? Then it calls OnRetry and waits.
//
// The wait is the Backoff's delay for the retry's number — Exponential,
// Linear, Constant or Decorrelated, never more than the backoff's Cap —
// scaled by the adaptive factor when Config.Adaptive is set, then randomised
// by the Jitter (full, equal, ±proportional or none). A server's Retry-After
// (any error in the chain implementing sluice.RetryAfterer, such as
// *sluice.StatusError) replaces it, capped by Config.RetryAfterMax (by
// default the backoff's Cap; 60 s for a Constant backoff, whose Cap is its
// one delay) and spread by up to 10 %. Config.Delay and Backoff.Delay
// compute waits as pure functions of an explicit random source, for tests
// and simulators.
//
// # Explicit time
//
// Every decision above is a method of Call, which takes the time as an
// argument: BeginAt starts a call, SucceededAt or FailedAt reports each
// attempt's outcome (FailedAt returns the wait before the next attempt, or
// the error that ends the call), and CanceledAt ends a call whose caller
// gave up during a wait. Execute is a Call driven with the Clock's time and
// real waits; a simulator or an event loop drives the same Call in virtual
// time, with a seeded random source, and gets the executor's decisions
// exactly. Begin, Succeeded, Failed and Canceled are the same steps at the
// time of Config.Clock: Succeeded and Canceled read it only when the call is
// timed (SampleEvery), so an untimed success costs no clock read, and a
// budget hears of it through Budget.Attempt, which files it with the latest
// time the budget has seen.
//
// # Errors
//
// A non-retryable error is returned as it is. A call that runs out of
// attempts or time fails with an *ExhaustedError (errors.Is(err,
// ErrExhausted)); one whose retry the budget refuses fails with a
// *BudgetError (errors.Is(err, ErrBudgetExhausted) and errors.Is(err,
// sluice.ErrRejected), with RetryAfter). Both unwrap to the last attempt's
// error. A wait cut short by the caller's context returns promptly with an
// error matching the context's cause.
//
// # The retry budget
//
// Retries multiply load exactly when a dependency can least take it: with 3
// attempts, an outage triples the calls it receives. So every Retry has a
// budget, on by default: a RatioBudget in which each first attempt earns a
// tenth of a retry, valid for 10 s, and a reserve refills at 10 retries per
// second (the Google SRE book's per-client budget with Finagle's reserve).
// Spent retries never come back, so an outage gets an even trickle of
// retries rather than a burst each time a window moves on. Share one Budget
// among the policies that call one dependency; pass NoBudget{} to turn
// budgeting off. TokenBudget is gRPC's retry throttling, offered as an
// alternative; it gives up more calls when failures are frequent but random.
//
// # Statistics and cost
//
// Stats returns exact counts of calls, attempts by number, outcomes, budget
// refusals and exhaustion, and a duration histogram for a Prometheus
// collector to read at scrape time. A successful first attempt takes no lock,
// allocates nothing and reads no clock except for the sampled calls that feed
// the histogram (Config.SampleEvery).
//
// # Choosing a strategy
//
// Network, Database and API return the SysManage resilience document's ready-made
// configurations. A Selector picks among strategies per operation type,
// starting from the SysManage document's mapping (network → exponential, database →
// linear, api → adaptive) and learning from outcomes which serves each type
// best, while still exploring the others.
package retry
