// Package dlq is sluice's dead-letter queue: a durable store for work that
// exhausted its retries and fallbacks — a command for an agent that is
// offline, a write the database refused during a failover — and a Replayer
// that sends it again once the target is healthy.
//
// # Model
//
// A Message belongs to a named queue (usually a route or target) and is
// ready or parked. A ready message is due for replay at its NextReplay time.
// The Replayer of a queue claims due messages (Store.ClaimAt, which leases them
// so no other replayer takes them), runs each through a Handler, and then:
//
//   - on success, deletes it (the acknowledgement; never before, so delivery
//     is at-least-once);
//   - on failure, records the error and sets NextReplay by the Backoff, or
//     parks the message once it has failed MaxReplays replays (a poison
//     message waits for an operator instead of being retried forever);
//   - when it is stopping, or a policy of its Pipeline rejects the call,
//     hands the message back without counting a failure.
//
// The Replayer claims nothing while its Gate (typically "the target's
// breaker is closed") says the target is unhealthy, runs at most Concurrency
// handlers at once, and stops cleanly when its context is cancelled. An
// operator can replay one message, a filter, or everything on demand.
//
// # Stores
//
// Store is the interface; Bolt, opened with OpenBolt, keeps a queue in one
// bbolt file on the local disk. Its Put returns only once the message is on
// disk (fsync). Concurrent writes are group-committed: one writer goroutine
// commits whatever arrived while the previous commit was in flight, in one
// transaction and one fsync, so durability does not cost an fsync per
// message (Options.MaxBatchSize, MaxBatchDelay). Sizes are limited per
// message (ErrTooLarge) and per queue (ErrQueueFull); a damaged file gives
// ErrCorrupt naming the file, never a panic; a file held by another process
// gives ErrInUse after Options.LockTimeout. A Redis Streams store for fleets
// of instances implements the same interface; dlqtest.RunConformance is the
// suite every store passes.
//
// # Observing
//
// Store.Stats reports each queue's depth by state and its oldest message;
// Replayer.Stats counts replayed, failed and parked messages;
// Replayer.Snapshot joins the two for the health monitor and the metrics
// collector, and the health monitor's DLQThresholds turn them into alerts
// (queue older or deeper than a limit). Package dlqhttp serves a store's
// REST API. docs/dlq.md describes the guarantees and the file format.
package dlq
