// Package fallback answers for a call that failed, from a chain of
// substitutes tried in order.
//
// A Fallback[T] is a sluice.Policy for pipelines run by sluice.Get[T]. It
// runs the rest of the pipeline (the primary); when that fails, it tries:
//
//  1. the Alternatives, in order, each under its own (usually shorter)
//     Timeout: another endpoint, a read replica, a queue-for-later. An
//     alternative given as FnErr instead of Fn also receives the primary's
//     failure and, under Get[T], the value returned with it, so it can
//     answer by why the primary failed (an open breaker's rejection wraps
//     the failure that opened it);
//  2. the last good result of the primary for the call's key, if it is
//     younger than LastGoodTTL;
//  3. the Default value, if one is configured.
//
// The first branch that answers writes its value through the pipeline's
// result (so Get returns it) and Execute returns nil. When every branch is
// spent, Execute returns an *ExhaustedError: errors.Is(err, ErrExhausted)
// holds, the primary's failure stays reachable through errors.Is and
// errors.As (so outer policies classify the call by it), and the
// alternatives' failures are listed in the error.
//
// # Which failures fall back
//
// By default a failure falls back when sluice.Classify says it counts
// against the dependency (Failure.IsFailure): network errors, timeouts,
// unavailability, and rejections by other policies (an open breaker, a full
// bulkhead) all do. The caller's own cancellation never falls back: nobody is
// waiting for the answer. ShouldFallback replaces the default rule.
//
// # Seeing which branch answered
//
// Stats counts the answers of each branch. A caller that needs to know for
// one call puts an Outcome in the context:
//
//	var o fallback.Outcome
//	v, err := sluice.Get(fallback.WithOutcome(ctx, &o), p, fetch)
//	if o.Branch == fallback.BranchLastGood { w.Header().Set("Age", ...) }
//
// OnFallback is called whenever a branch other than the primary answers, and
// when all are exhausted.
//
// # Under Do
//
// Under (*sluice.Pipeline).Do there is no result to write. The branches are
// tried in the same order and decide success the same way: an alternative
// that returns nil, a stored last good result, or a default makes Execute
// return nil; the value itself is dropped.
//
// # Cost
//
// When the primary succeeds and LastGoodTTL is zero, Execute adds a context
// lookup for an Outcome and a striped counter increment: no allocation and no
// shared lock. Keeping last good results costs, per success, a read of the
// clock, the Key function and a short critical section on one of 16 shards
// chosen by the key (with a single key, every success takes that shard's
// lock).
package fallback
