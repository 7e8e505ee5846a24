// Package hedge sends a second attempt of a call when the first is slow,
// and takes whichever answers first: hedged requests (backup requests in
// Finagle). A replica that answers one call in a hundred slowly, a garbage
// collection pause, a lost packet: the tail of a dependency's latency is
// usually one attempt's bad luck, and a second attempt, sent elsewhere,
// rarely shares it.
//
// A Hedge is a sluice.Policy. Execute runs the first attempt; if it has not
// answered within the delay, Execute starts another attempt of the rest of
// the pipeline (a hedge), and another each delay after that, up to
// Config.MaxHedges (default 1). The delay is fixed (Config.Delay) or a
// percentile of the policy's own recent latency (Config.Percentile).
//
// # Which answer ends the call
//
// A success ends the call, from whichever attempt it comes. So does a
// failure that is the dependency's final word — one the classifier
// (Config.Classifier, by default sluice.DefaultClassifier) says is not
// retryable, such as a 404 or a 403: another replica would say the same —
// and any outcome once the caller's context is done. A retryable failure
// (a timeout, a 503, a reset connection), a rejection by a policy inside the
// hedge (a full bulkhead, an open breaker: the attempt never reached the
// dependency) or a cancellation the caller did not ask for does not end the
// call while another attempt is still running. When the last running
// attempt fails that way, the call ends with its failure, except that a
// rejection or cancellation yields to an earlier attempt's failure, which
// says more about the dependency; a retry policy outside then decides what
// to do, with its backoff and budget. A failure never starts the next hedge
// early: hedging answers slowness, retrying answers failure.
//
// The attempts still running when the call ends are cancelled through their
// contexts, with cause ErrSuperseded.
//
// # When it does not hedge
//
// Work marked non-idempotent with sluice.WithIdempotent(ctx, false) runs
// once, unhedged: two attempts of it might both take effect. Unmarked work
// is hedged, as it is retried, since putting it under the policy is itself
// the statement. No hedge starts once the caller's context is done, or when
// Config.Budget refuses it; a refusal also ends hedging for that call.
//
// # Budget
//
// A hedge is an extra attempt, as a retry is, and a dependency that is slow
// everywhere would get twice the load. Config.Budget, if set, is asked
// (AllowRetryAt) before each hedge; give it the budget of the Retry in the
// same pipeline (retry.Retry.Budget returns it) and hedges spend from the
// same allowance as retries. The Hedge only spends: what the budget earns
// comes from the Retry that feeds it its first attempts.
//
// # Results and goroutines
//
// The first attempt runs on the caller's goroutine, each hedge on a
// goroutine of its own. Execute returns only once every attempt has
// returned: losers are cancelled, and work that honours its context returns
// at once, but work that ignores it delays the call until it finishes, as
// under a timeout. Nothing outlives Execute. Every attempt's context is
// cancelled when Execute returns, so read a response within the attempt.
//
// Under sluice.Get each hedge runs on a fork of the pipeline (sluice.Next.Fork)
// and keeps its value in a slot of its own; the winner's value is copied
// into the caller's once all attempts have returned, so attempts never
// write one slot at once and a loser's value never reaches the caller. The
// work itself must be safe to run twice at once. Attempt(ctx) tells the
// work which attempt it is (0 for the first), so that a load balancer can
// send a hedge to another replica.
//
// A panic in a hedge is recovered on its goroutine, the other attempts are
// cancelled, and the panic is raised again on the caller's goroutine once
// they have returned (with the hedge's stack lost).
//
// # The percentile delay
//
// With Config.Percentile set (0.95, say), the delay is that percentile of
// the latencies of recent first attempts, within [MinDelay, MaxDelay], and
// Config.Delay until the window holds MinSamples of them. A first attempt
// that a hedge supersedes files the time it ran before it was cancelled, a
// lower bound of its latency: without it, the slow answers that hedging cuts
// short would never be seen and the percentile would sink until every call
// was hedged. Hedges' own latencies are not filed.
//
// The latencies are counted in a log-scale histogram with 16 buckets per
// power of two, one per fifth of Config.Window (10 s by default); the
// window moves a fifth at a time. Counting is two atomic increments, with no
// lock; the percentile is the midpoint of the bucket that holds the
// nearest-rank percentile of the window's latencies, so it is within
// RelativeError (1/32, about 3 %) of the exact value for latencies up to
// about 68.7 s. Execute recomputes it when a new fifth of the window begins
// or MinSamples latencies have arrived since, so calls read one atomic.
//
// # Cost
//
// A call whose first attempt answers within the delay starts no goroutine.
// It allocates what context.WithCancelCause allocates for the first
// attempt's context (two small objects, 96 bytes), the only way to be able
// to cancel it should a hedge win; the rest (a timer, the call's state) is
// pooled. With a Clock other than the system's, each such call also starts
// a goroutine to wait for the delay. Under testing/synctest, make the Hedge
// inside the bubble that uses it: its pooled timers belong to the bubble
// they were made in.
package hedge
