// Package ratelimit limits how often a call may run: a token bucket of Rate
// tokens per Per, holding at most Burst tokens, from which every call takes
// one (or n).
//
// A TokenBucket is the in-process limiter. It is a sluice.Policy, so it sits in
// a pipeline, and it has the decision methods a caller uses directly: Allow
// and AllowAt (take a token now or say no), Wait (take a token, sleeping until
// it is there), ReserveAt (take tokens for a later time, with Cancel to give
// them back). Limiter is the narrow interface shared with the Redis-backed
// limiter that enforces one limit across many instances.
//
// # Model
//
// The bucket is kept as the generic cell rate algorithm (GCRA): one number,
// the theoretical arrival time (TAT) — the moment the bucket will be full
// again — in one atomic word. With the emission interval I = Per/Rate, a
// request for n tokens at time now computes
//
//	base = max(TAT, now), TAT' = base + n·I
//
// and is admitted while TAT'-now ≤ Burst·I, that is, while the bucket holds
// n tokens: the tokens available at now are Burst − max(0, TAT−now)/I. This
// is exactly a token bucket of rate 1/I and capacity Burst, but its state is
// a single int64 updated by compare-and-swap, so Allow takes no lock and
// allocates nothing. A rejection only reads the word.
//
// # Bursty and smooth
//
// The two shapes differ only in when an admitted call may proceed:
//
//   - Bursty (the default, Smooth false): a call proceeds as soon as its n
//     tokens are in the bucket. An idle limiter admits Burst calls back to
//     back, then one every I. A caller that waits (Wait, or Execute with
//     MaxWait) waits until its tokens have refilled: TAT'−now−Burst·I.
//   - Smooth (spaced): admitted calls proceed at least I apart, each at its
//     slot base, never in a burst — the way nginx's limit_req delays excess
//     requests rather than forwarding them at once. Allow, and Execute with
//     MaxWait zero, admit a call only when its slot has come (TAT ≤ now).
//     A waiting caller waits base−now for its slot, and Burst bounds the
//     queue: a slot more than (Burst−n)·I ahead is refused, so at most
//     Burst−1 single-token callers wait behind the current slot.
//
// With Burst 1 the two admit the same calls as long as nobody waits (Allow,
// and Execute or Take with MaxWait zero), but not a caller that waits: a
// bursty limiter lets it wait for the next token, up to MaxWait, while a
// smooth one has room for Burst−1 = 0 waiters and refuses it at once, even
// from Wait. Give a smooth limiter a Burst of k+1 to let k callers wait.
//
// # Waiting
//
// MaxWait chooses, for Execute and Take, between rejecting at once (zero),
// waiting up to MaxWait (positive) and waiting as long as the context
// allows (negative). Wait always waits, bounded by a positive MaxWait. Every
// wait is also bounded by the context's deadline. A wait that would be too
// long is refused at once with ErrLimited, without sleeping first; a wait
// cut short by the context gives its tokens back.
//
// # Errors
//
// A rejected call gets an error for which errors.Is(err, ErrLimited) and
// errors.Is(err, sluice.ErrRejected) hold and whose RetryAfter method says
// how long until the tokens are there. The rejection of a one-token call
// allocates nothing: its RetryAfter is computed from the limiter's state
// when asked, so it is right however late it is read.
//
// # Changing the limit
//
// Update changes the rate, burst and mode of a live limiter and keeps its
// state: the tokens in the bucket stay (capped at the new Burst), and a
// debt owed by waiting callers is carried over in tokens.
package ratelimit
