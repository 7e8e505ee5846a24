// Package sluiceredis keeps sluice's shared state on Redis, so that many
// instances of a program (or many sidecars behind one load balancer) act as
// one resilience layer: a Limiter holds one rate limit for the whole fleet,
// a Store keeps one dead-letter queue that any instance can replay, and a
// BreakerSync (a breaker.Shared) makes the same circuit breaker in every
// instance open, probe and close as one. NewFailover puts a local store
// (a dlq.Bolt file) behind the Store, so that dead letters are kept while
// Redis is away and moved to it when it is back. Each of them reports
// whether it works from local state now (sluice.SharedComponent), for the
// health report and the metrics.
//
// It is a package of its own so that the core never imports Redis. The
// types take a go-redis client (redis.UniversalClient: a single server,
// Sentinel or Cluster); keys are hash-tagged per route ("sluice:{route}:…")
// so that one route's keys share a Cluster slot. The client must honour
// context deadlines (redis.Options.ContextTimeoutEnabled; NewClient sets
// it), or the per-call timeouts here cannot bound a call to a hung server.
//
// docs/redis.md describes the data layout, the durability that each
// appendfsync setting gives, and what each fail mode means for correctness.
package sluiceredis
