// Package proxy is sluice's sidecar: a reverse proxy that puts a route's
// policies — rate limits, a bulkhead, retries, a breaker per upstream, a
// timeout — in front of any HTTP upstream, with fallback upstreams, a
// stale-answer cache, a durable dead-letter queue whose requests are
// replayed when the upstream recovers, and an admin API. It is configured by
// one config.Config and changed in place by Reload.
//
// # A request's way
//
// The first route whose path prefix, host and method match the request
// takes it (404 if none; the path is matched with "." and ".." resolved).
// A path that a route takes but that a server behind the proxy could read
// as another — with "." or ".." segments (also "..;"), doubled slashes, a
// backslash, an encoded slash or backslash (%2F, %5C), or a dot or slash
// encoded twice (%252E) — is refused with 400, so that the path forwarded
// is always exactly the path that was matched. The request then passes,
// outermost first:
//
//	the policy's limiter → the route's limiter → bulkhead →
//	    (the request body is read) → retry →
//	    for each upstream in order: its breaker → timeout → the upstream
//
// The body is read only once the limiters and the bulkhead have admitted the
// request, so that a shed request costs no buffering, and it must arrive
// within the route's body_timeout (by default its timeout): a client that
// sends it slower gets 408 and gives the bulkhead permit back, so slow
// bodies cannot hold a route's bulkhead. An answer given before the body
// was read closes the connection, since net/http would otherwise read the
// rest of the body first.
//
// The client's Sluice-* request headers are removed before the request
// goes upstream (and before it is queued), so that no client passes as a
// replay with Sluice-Queued; a route with trust_client_headers, whose
// clients are sluice layers themselves, passes them on.
//
// Later upstreams are fallbacks: an attempt that fails on one (or finds its
// breaker open) goes on to the next. A request that may not be sent twice
// falls over only when the failed upstream cannot have received it (its
// breaker was open, or the connection was refused), and is not retried. A
// request may be sent twice when its method is idempotent (GET, HEAD,
// OPTIONS, TRACE, PUT, DELETE), it carries an Idempotency-Key, or the route
// lists its method in retry_methods — and its body fits max_retry_body, so
// that it is kept in memory to be sent again; a bigger body is streamed
// once. The timeout bounds each try of one upstream, response body
// included. Under a timeout, a good answer's header goes to the client only
// with the first byte of its body (or its end), so that a try that times
// out before any byte arrived is still answered 504; once a byte has gone
// out, a timeout cuts the client's connection instead, so that the cut-off
// answer does not look complete.
//
// Writing an answer to the client is bounded by the longer of the route's
// timeout and server.write_timeout, from its header on, so that a client
// that stops reading cannot hold the bulkhead, and no answer is cut shorter
// than its route allows. Serve also gives both servers the server
// section's header and idle timeouts and header size limit, and caps the
// proxy's open connections at server.max_connections: a connection over
// the cap waits in the listen backlog until another closes.
//
// An upstream answer of 429, any 5xx, or a status of the policy's
// retry_on_status is a failure: the breaker counts it and the retry may
// repeat it. Other answers, 4xx included, are streamed to the client as
// they come, without buffering (except for a route's stale cache, which
// keeps answers up to Options.MaxCacheBody). An answer marked final by a
// sluice layer further down (Sluice-Reject or Sluice-Retry: no) is never
// retried.
//
// # Answers
//
// When the policies give up, the client gets, as docs/proxy.md's table
// says:
//
//	breaker open            503, Retry-After (seconds to the next probe), Sluice-Reject: circuit-open
//	bulkhead full           503, Sluice-Reject: bulkhead-full
//	rate limited            429, Retry-After, Sluice-Reject: rate-limited
//	limit's Redis away      503, Sluice-Reject: rejected (storage.ratelimit on_failure: error)
//	timeout                 504, Sluice-Reject: timeout
//	retries exhausted       the upstream's last answer, marked Sluice-Retry: no (502 if it never answered)
//	queued to the DLQ       202, Sluice-Queued: <id>, written once the request is on disk
//	stale cache             the cached answer, with Age and Sluice-Fallback: stale-cache
//	body too slow           408 (body_timeout), the connection closed
//	ambiguous path          400
//
// The rejections are written by sluicehttp.Rejection, whose Sluice-Reject
// header is the do-not-retry signal that sluice's own Transport and other
// sluice sidecars honour, so stacked layers do not multiply retries.
//
// A route with fallback.stale_cache keeps the last good answer (2xx, not
// no-store or private, no Set-Cookie, varying at most on Accept-Encoding)
// to each GET without Authorization, and serves it while it is younger than
// stale_cache when the request fails for any reason but the client's rate
// limit. A route with on_exhausted: queue stores a request whose failure a
// later replay can overcome (the upstream was down, slow or refusing, its
// breaker open, its retries or budget exhausted — not a rate limit, a full
// bulkhead, or an answer such as 500 that a replay would get again) in the
// dead-letter queue named after the route, when its whole body is at hand
// and its method is one the route queues: those of queue_methods, or by
// default every method but the safe ones (GET, HEAD, OPTIONS, TRACE), whose
// replayed answer nobody would read. A safe request gets the normal failure
// answer instead of 202. The bolt store the Server opens takes records of
// config.DLQRecordBytes, and config.Parse holds a queueing route's
// max_retry_body, with room for its header, to that: a request whose body
// was kept can always be queued.
//
// # Replays
//
// Each queueing route has a dlq.Replayer. While Serve runs it replays due
// messages whenever one of the route's breakers is not open, through the
// upstreams' breakers and timeout, with Sluice-Queued carrying the message
// ID; a failed replay waits (Options.ReplayBackoff) and is parked after
// Options.MaxReplays failures. The admin API shows and drives it.
//
// # Reload
//
// Reload and ReloadFile apply a new configuration in place: policy
// instances keep their state (an open breaker stays open), requests under
// way finish on the routes they started on, replayers start and stop with
// their routes. A configuration that fails is refused whole; Status (GET
// /config/status) shows the errors and the old configuration keeps running.
//
// docs/proxy.md describes routing, answers, queueing, reload and the admin
// API for operators.
package proxy
