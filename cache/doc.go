// Package cache is a TTL cache for the results of calls, with request
// coalescing and stale-if-error.
//
// A Cache[T] maps string keys to values of type T. Get(ctx, key, fn) returns
// the cached value while it is fresh; otherwise it calls fn, stores a
// successful result and returns it. Three things make it a resilience tool
// rather than only a speed-up:
//
//   - Coalescing. Concurrent Gets of one key share one call of fn: the first
//     starts it, the others wait for its result. A cold or just-expired hot
//     key therefore costs the dependency one request, not one per caller.
//   - Stale-if-error. When the call fails and the key holds a value that
//     expired less than Config.StaleIfError ago, that value is returned
//     instead of the error, with Info.Outcome == Stale and its age, so a
//     dependency's outage degrades answers to "slightly old" rather than
//     "failed". Which errors allow it is Config.ServeStale; the caller's own
//     cancellation never does.
//   - Bounded memory. At most Config.MaxEntries entries are kept; when a new
//     key needs room, an expired entry or one not read since the clock hand
//     last passed it is evicted (CLOCK, a second-chance approximation of
//     least-recently-used), so high-cardinality keys cannot grow memory
//     without limit.
//
// # Entry lifetime
//
// An entry stored at time s (when its call returned, or when Put ran) is
//
//	fresh        while now - s <  TTL                 Get returns it: Hit
//	stale        while now - s <  TTL + StaleIfError  Get calls fn; on an allowed error returns it: Stale
//	expired      from  now - s >= TTL + StaleIfError  as if absent
//
// A negative TTL (NeverFresh) makes every Get call fn and keeps the last good
// value only as the stale-if-error answer: the "serve the last good answer
// for five minutes" mode of a fallback is Config{TTL: NeverFresh,
// StaleIfError: 5 * time.Minute}.
//
// # The shared call
//
// Get runs fn on its own goroutine so that every caller, the first included,
// can stop waiting when its context ends (it then returns context.Cause(ctx)
// and never a stale value) while the call goes on for the others and, if it
// succeeds, fills the cache for the next caller. The call's context is
// context.WithoutCancel of the first caller's context: it keeps that
// caller's values (trace ids, idempotency marks) but not its cancellation or
// deadline, and it is bounded instead by Config.CallTimeout, after which fn's
// context is cancelled and a context error from fn is reported as
// ErrCallTimeout. A panic in fn is caught, the key's call is cleared, and
// every caller still waiting re-panics with a *PanicError carrying the value
// and the stack; when no caller is waiting any more the panic is dropped.
//
// # In a pipeline
//
// Cache.Policy returns a sluice.Policy for use under sluice.Get[T]: a fresh
// hit writes the value through next.Result() without running the rest of the
// pipeline; a miss runs it and stores the result; a failure with a stale
// entry in its window is answered with the stale value and a nil error. The
// policy coalesces too, but the rest of the pipeline cannot leave the
// caller's goroutine, so the first caller runs it inline under its own
// context; if that caller is cancelled or panics, a waiting caller starts
// over and runs it itself. WithInfo lets the caller learn what the policy did, for an
// HTTP Age header or a "served from cache" mark.
//
// # Cost
//
// Keys are spread over up to 16 shards, each with its own sync.RWMutex, so a
// fresh hit takes one shard's read lock, allocates nothing and writes no
// shared memory except the reader count of that lock and, at most once per
// clock sweep, the entry's reference bit. Statistics are striped counters
// read by Stats. A miss costs a goroutine and a few small allocations.
//
// Time comes from Config.Clock (nil means the system clock): a lookup asks
// how long ago the entry was stored (on the system clock that is
// time.Since, which reads only the monotonic clock), a miss reads the clock
// once more to join or start the call, and a call reads it when it returns.
// No zero time stands for "now". CallTimeout alone uses the
// runtime's timers, because a context cannot be cancelled from a fake clock
// without a goroutine to watch it. Tests drive it with testing/synctest.
package cache
