// Package bulkhead limits how many calls run at once against one dependency,
// so that a slow dependency ties up a bounded share of the caller's
// goroutines, connections and memory instead of all of them.
//
// # Model
//
// A Bulkhead hands out permits. A call that finds one free runs at once; a
// call that finds none joins a FIFO queue of at most MaxQueue waiters, each
// waiting at most MaxWait and never past its context; a call that finds the
// queue full, or whose wait runs out, is rejected with a *FullError, which
// matches ErrFull and sluice.ErrRejected under errors.Is and carries a short
// RetryAfter hint. A caller whose context ends while it waits gets
// context.Cause(ctx) and leaves the queue, and a permit handed to it at
// that moment goes to the next waiter. Admission is FIFO: while anyone
// waits, a newcomer queues behind even if a permit has just come free.
//
// Use a Bulkhead as a sluice.Policy in a Pipeline (Execute), or hold
// permits by hand with Acquire or TryAcquire and Release, for code (a
// proxy) that does not run the work as one function call. The per-call
// bulkhead timeout of the SysManage resilience document is not part of the
// bulkhead: put a
// timeout.Timeout inside it in the pipeline.
//
// # Explicit time
//
// A caller that waits in virtual time rather than on a goroutine (a
// simulator, an event loop) queues with EnqueueAt(now), which takes a permit,
// a Ticket or a rejection; ReleaseAt(now) returns a permit and the tickets
// it lets in; ExpireAt(now) turns away the tickets whose MaxWait has run
// out; Cancel withdraws one whose caller gave up. Tickets wait in the same
// FIFO queue as goroutines blocked in Acquire or Execute, under the same
// MaxQueue, through the same code: a release hands permits to both kinds in
// order. Stats counts a ticket like any other caller: waited, then
// admitted, rejected or cancelled.
//
// # Isolation
//
// Strict: at most MaxConcurrent calls run.
//
// Shared: the bulkhead belongs to a Group whose capacity is the sum of its
// members' MaxConcurrent. It runs up to its own MaxConcurrent like a strict
// one, and beyond that up to floor(OverflowRatio × MaxConcurrent) more,
// each extra permit granted only while the group as a whole has fewer
// permits in use than its capacity, that is, while another member leaves
// part of its share idle. No member's own share is ever reduced by another's
// overflow; see Group for the exact rule.
//
// Adaptive: the limit is not configured but measured, between
// Adaptive.MinLimit and Adaptive.MaxLimit, by an Estimator fed the latency
// of every call: Gradient (the default), after Netflix's Gradient2, shrinks
// the limit when recent calls are slower than the long-term round-trip time
// by more than a tolerance and grows it by a small queue allowance
// otherwise, re-measuring the unloaded round-trip time once a minute; AIMD
// grows the limit while calls succeed and cuts it by a factor when one is
// dropped or slower than a threshold. The Estimators are pure state machines
// that take the time as an argument, so they can be tested and simulated in
// virtual time (NewEstimator).
//
// # Cost
//
// Taking and returning a free permit is one compare-and-swap and one atomic
// add on a word that packs the permits in use, the number of waiters and a
// count of admissions: no lock, no allocation, no clock read. The queue's
// mutex is taken only when no permit is free or someone waits; because the
// waiter count lives in the same word, a releasing caller learns from its
// own atomic add whether it must hand its permit to a waiter, and no wakeup
// is lost. Rejection allocates nothing either: the errors are built once per
// configuration.
//
// A Strict bulkhead without a Group whose MaxConcurrent is at least 512 (64
// per stash cell) also keeps free permits in eight per-cell stashes, a cell
// picked by hashing the caller's stack address, so that callers on
// different cores take and return permits on cache lines of their own: a
// permit is then one CAS on the caller's cell to take and one atomic add to
// return, plus reads of the shared word, which is written only when a stash
// is refilled in a batch from it or spills back. The cap stays exact (a
// batch leaves the word by the same limit-checking CAS), every stash is
// drained back before a caller is refused or queued, a release that finds
// waiters flushes the stashes to the queue, and Update drains them. Release
// without a permit is then detected only when the stashes are drained. An Adaptive bulkhead reads the clock twice per call to time
// it and serialises the samples fed to its Estimator, skipping a sample
// rather than waiting when another is being recorded.
//
// # Statistics
//
// Stats reports the permits in use, the waiters, the current limit, counts
// of admitted, rejected and cancelled calls and of those that queued, the rejection rate since
// creation and over about the last minute, and utilisation. The recent rate
// is taken from snapshots of the counts made when Stats is read, at most one
// per 10-second slot, since snapshotting on the call path would cost a lock
// and a clock read per call: a reader that calls Stats at least every ten
// seconds (the health monitor) sees the last 50 to 60 seconds; otherwise the
// rate covers the time since the previous read.
//
// # Live changes
//
// Update changes limits, queue, waits and tuning while calls run, without
// dropping permits already held.
package bulkhead
