package sluicehttp

// The header contract between sluice layers. A sluice layer that sheds a
// request answers it itself and says so with Sluice-Reject; a Transport never
// retries such an answer, nor one marked Sluice-Retry: no. That is what keeps
// retries from multiplying when sluice sidecars are stacked: each layer
// retries only what reached a real upstream and was not already retried
// below it.
const (
	// HeaderReject is set on an answer produced by a sluice layer that shed
	// the request instead of passing it on. Its value is one of the Reason
	// constants: "circuit-open", "bulkhead-full", "rate-limited", "timeout",
	// "budget-exhausted" or "rejected".
	HeaderReject = "Sluice-Reject"

	// HeaderRetry, with the value "no", is set by a Transport on a failure
	// response (5xx or 429) that it hands back after its retry policy is done
	// with it: the upstream's last answer once retries ran out, were refused
	// by the budget, or were not allowed. A sluice layer above does not retry
	// it again.
	HeaderRetry = "Sluice-Retry"

	// HeaderIdempotencyKey on a request says that the server deduplicates
	// it, so a Transport may retry it whatever its method. As in net/http,
	// X-Idempotency-Key counts too, and so does the key present with a nil
	// value (which marks the request without sending the header).
	HeaderIdempotencyKey = "Idempotency-Key"

	// HeaderRetryAfter is the standard Retry-After, in whole seconds when
	// sluice writes it (rounded up); either delta-seconds or an HTTP-date
	// when it reads it.
	HeaderRetryAfter = "Retry-After"
)

// The values of HeaderReject, one per way a sluice layer sheds a request.
const (
	ReasonCircuitOpen     = "circuit-open"
	ReasonBulkheadFull    = "bulkhead-full"
	ReasonRateLimited     = "rate-limited"
	ReasonTimeout         = "timeout"
	ReasonBudgetExhausted = "budget-exhausted"
	// ReasonRejected is the catch-all for any other error that matches
	// sluice.ErrRejected.
	ReasonRejected = "rejected"
)

// retryNo is the value of HeaderRetry that forbids a retry.
const retryNo = "no"

const headerXIdempotencyKey = "X-Idempotency-Key"
