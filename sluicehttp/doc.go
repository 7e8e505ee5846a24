// Package sluicehttp puts sluice around HTTP: a client Transport that runs
// every request through retry, rate limit, bulkhead, a breaker per host and a
// per-attempt timeout, and server middleware that sheds load with a limiter,
// a bulkhead and a timeout. The mapping from sluice's errors to HTTP answers
// lives here once (RejectionFor, WriteRejection); the sidecar proxy uses it
// too.
//
// # The client
//
// NewTransport(Config{}) wraps a clone of http.DefaultTransport. Each request
// goes through, outermost first: the retry policy (3 attempts with a retry
// budget unless Config.Retry says otherwise), the limiter, the bulkhead, the
// breaker of the request's host (one per "host:port", built on demand), the
// per-attempt timeout, and then the base transport.
//
// Only idempotent requests are retried: GET, HEAD, OPTIONS, TRACE, PUT and
// DELETE, or any method with an Idempotency-Key header. The Transport says
// so to the retry policy through sluice.WithIdempotent, so a policy with
// RetryNonIdempotent set retries everything. Bodies are re-sent through
// Request.GetBody, or from a copy of up to Config.MaxBufferedBody (1 MiB)
// when GetBody is nil; a bigger body is sent once and never retried.
//
// Responses with status 429 or 5xx are failures: the policies see them as a
// *sluice.StatusError carrying the server's Retry-After (delta-seconds or an
// HTTP-date), so the retry waits as told and the breaker counts them. The
// caller still gets the upstream's real answer: when the retries end, the
// last response is returned, not an error, marked Sluice-Retry: no. An error
// is returned only when no upstream answered — a transport error, or a
// policy shedding the request (breaker.ErrOpen and the like; see
// RejectionFor). The bodies of responses the Transport throws away are
// drained, up to 64 KiB, and closed, so connections are reused.
//
// # One try
//
// Attempter.Attempt makes one try of a request over a Body (the request
// body made ready for several tries: rewound through GetBody, kept in
// memory up to a limit, or streamed once). It runs the request under a
// context of its own that the try's context ends only until the try is
// over, buffers a failure answer's body so that it can still be handed on
// after the try's timeout, and returns the failure as a *sluice.StatusError
// or *NoRetryError carrying Retry-After. The Transport's retries and the
// sidecar proxy's tries, fallover and replays are all loops over it, so
// how an attempt is made is written once.
//
// # Stacked layers
//
// A sluice layer that sheds a request answers it with Sluice-Reject naming
// why; a Transport that gives up on a failure marks it Sluice-Retry: no. A
// Transport never retries either (it sees a *NoRetryError), so a chain of
// sluice sidecars retries once, at the bottom, instead of multiplying
// retries at every level.
//
// # The server
//
// Middleware(ServerConfig{...}) and Handler(h, policies...) run each request
// through policies before the handler and answer the requests they shed:
//
//	breaker open            503, Retry-After (seconds, rounded up), Sluice-Reject: circuit-open
//	bulkhead full           503, Sluice-Reject: bulkhead-full
//	rate limited            429, Retry-After, Sluice-Reject: rate-limited
//	timeout                 504, Sluice-Reject: timeout
//	retry budget exhausted  503, Retry-After, Sluice-Reject: budget-exhausted
//
// The body is a short fixed text per reason; error text never reaches the
// client. A handler under a deadline that has written nothing when it passes
// is answered 504 at once by a guard writer (see Handler).
//
// # Logging
//
// Both sides log through a caller-supplied *slog.Logger (nil: nothing):
// requests shed and failure answers at Debug, breaker state changes at Warn,
// with the fields host, reason and retry_after.
package sluicehttp
