package sluicehttp

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// Rejection is the answer a client of a sluice layer gets when a policy shed
// its request: the status, the Sluice-Reject reason and the Retry-After.
type Rejection struct {
	// Status is the HTTP status: 503, 429 or 504.
	Status int
	// Reason is the value of the Sluice-Reject header, one of the Reason
	// constants.
	Reason string
	// RetryAfter is when the client may come back; zero when the error gave
	// no hint. It is written rounded up to whole seconds.
	RetryAfter time.Duration
}

// RejectionFor maps an error returned by a sluice policy to the answer the
// DESIGN table gives it, and reports whether err is such an error at all:
//
//	breaker open            503, Retry-After = time to the next probe, Sluice-Reject: circuit-open
//	bulkhead full           503, Sluice-Reject: bulkhead-full
//	rate limited            429, Retry-After, Sluice-Reject: rate-limited
//	retry budget exhausted  503, Retry-After, Sluice-Reject: budget-exhausted
//	timeout                 504, Sluice-Reject: timeout
//	other sluice.ErrRejected 503, Sluice-Reject: rejected
//
// The rows are tried in that order with errors.Is, so wrapped errors map too.
// A *NoRetryError (a sluice layer further down already shed or gave up)
// maps to that layer's own status and reason. Any other error, nil
// included, gives ok false: it is a failure of the upstream, not a decision
// of sluice (a proxy answers it 502). The Retry-After comes from the error's
// RetryAfter method (sluice.RetryAfter); timeouts carry none.
func RejectionFor(err error) (r Rejection, ok bool) {
	if err == nil {
		return Rejection{}, false
	}
	var nr *NoRetryError
	// An open breaker's rejection wraps the failure that opened it, which
	// may be a downstream layer's final answer: this layer's refusal wins.
	if !errors.Is(err, breaker.ErrOpen) && errors.As(err, &nr) {
		reason := nr.Reason
		if reason == "" {
			reason = ReasonRejected
		}
		return Rejection{Status: nr.Code, Reason: reason, RetryAfter: nr.RetryAfterHint}, true
	}
	switch {
	case errors.Is(err, breaker.ErrOpen):
		r = Rejection{Status: http.StatusServiceUnavailable, Reason: ReasonCircuitOpen}
	case errors.Is(err, bulkhead.ErrFull):
		r = Rejection{Status: http.StatusServiceUnavailable, Reason: ReasonBulkheadFull}
	case errors.Is(err, ratelimit.ErrLimited):
		r = Rejection{Status: http.StatusTooManyRequests, Reason: ReasonRateLimited}
	case errors.Is(err, retry.ErrBudgetExhausted):
		r = Rejection{Status: http.StatusServiceUnavailable, Reason: ReasonBudgetExhausted}
	case errors.Is(err, timeout.ErrExceeded), errors.Is(err, retry.ErrAttemptTimeout):
		return Rejection{Status: http.StatusGatewayTimeout, Reason: ReasonTimeout}, true
	case errors.Is(err, sluice.ErrRejected):
		r = Rejection{Status: http.StatusServiceUnavailable, Reason: ReasonRejected}
	default:
		return Rejection{}, false
	}
	if ra, ok := sluice.RetryAfter(err); ok && ra > 0 {
		r.RetryAfter = ra
	}
	return r, true
}

// WriteRejection answers w with the Rejection for err and reports whether it
// did; when err is not a sluice rejection (see RejectionFor) it writes
// nothing and returns false. It must be called before anything else is
// written to w.
func WriteRejection(w http.ResponseWriter, err error) bool {
	r, ok := RejectionFor(err)
	if ok {
		r.Write(w)
	}
	return ok
}

// Write answers w with the rejection: its status, Sluice-Reject,
// Retry-After when there is one, and a short fixed text naming the reason.
// Error text never reaches the client: it may name internal hosts and
// policies.
func (r Rejection) Write(w http.ResponseWriter) {
	body := rejectionText(r.Reason)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderReject, r.Reason)
	if r.RetryAfter > 0 {
		h.Set(HeaderRetryAfter, strconv.FormatInt(retryAfterSeconds(r.RetryAfter), 10))
	} else {
		h.Del(HeaderRetryAfter)
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write([]byte(body))
}

// retryAfterSeconds rounds d up to whole seconds, at least 1: a client told
// "0" would come straight back.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return max(s, 1)
}

func rejectionText(reason string) string {
	switch reason {
	case ReasonCircuitOpen:
		return "circuit open\n"
	case ReasonBulkheadFull:
		return "bulkhead full\n"
	case ReasonRateLimited:
		return "rate limited\n"
	case ReasonTimeout:
		return "timeout\n"
	case ReasonBudgetExhausted:
		return "retry budget exhausted\n"
	}
	return "rejected\n"
}

// NoRetryError is the error of an attempt whose failure response a sluice
// layer further down marked as final: it carries Sluice-Reject (that layer
// shed the request) or Sluice-Retry: no (that layer already retried it).
// It matches sluice.ErrDoNotRetry, so the default classifier does not retry it
// and a breaker counts it as the host being unavailable; it carries no
// status code, so a classifier rule on statuses (such as retry.API's) does
// not make it retryable again.
type NoRetryError struct {
	// Code is the response's status code.
	Code int
	// Reason is the Sluice-Reject value, empty when the response was only
	// marked Sluice-Retry: no.
	Reason string
	// RetryAfterHint is the response's Retry-After, zero if none.
	RetryAfterHint time.Duration
}

// Error names the status and the reason.
func (e *NoRetryError) Error() string {
	s := "sluicehttp: final answer from a sluice layer downstream: HTTP " + strconv.Itoa(e.Code)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Is reports whether target is sluice.ErrDoNotRetry.
func (e *NoRetryError) Is(target error) bool { return target == sluice.ErrDoNotRetry }

// RetryAfter returns the response's Retry-After.
func (e *NoRetryError) RetryAfter() time.Duration { return e.RetryAfterHint }
