package sluice

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/sluice-go/sluice/internal/httpstatus"
)

// FailureType says what kind of failure an error is, so that every policy
// treats the same error the same way.
type FailureType uint8

// The failure types. FailureNone is the type of a nil error; FailureCanceled
// is the caller's own cancellation and FailureClient a request the
// dependency refused as malformed or absent (an HTTP 4xx such as 400 or 404):
// no policy counts either against a dependency.
const (
	FailureNone FailureType = iota
	FailureNetwork
	FailureTimeout
	FailureUnavailable
	FailureAuthentication
	FailureRateLimited
	FailureCanceled
	FailureUnknown
	FailureClient
	// FailureRejected is a call shed by a policy in this process (a full
	// bulkhead, a rate limit, an inner open breaker): the dependency never saw
	// it, so no breaker counts it and no retry repeats it, but a fallback may
	// answer it.
	FailureRejected
)

var failureNames = [...]string{"none", "network", "timeout", "unavailable", "authentication", "rate-limited", "canceled", "unknown", "client", "rejected"}

// String returns the type's name as used in metrics and logs.
func (t FailureType) String() string {
	if int(t) < len(failureNames) {
		return failureNames[t]
	}
	return "FailureType(" + strconv.Itoa(int(t)) + ")"
}

// ErrDoNotRetry marks a failure that the dependency itself declared final: a
// sluice layer further down shed the call or already retried it. It is not
// retried here (stacked layers must not multiply attempts), yet it counts
// against the dependency, which is overloaded or failing.
var ErrDoNotRetry = errors.New("sluice: do not retry")

// ErrTimeLimit is matched, through errors.Is, by the error a policy in this
// process returns when a time limit it enforces passed (timeout.Error). The
// classifier ranks it above any status the work, cut short, returned: the
// call failed because it ran out of time, whatever it was doing then, so it
// is FailureTimeout and retryable.
var ErrTimeLimit = errors.New("sluice: time limit exceeded")

// Failure is the verdict of a Classifier on one outcome.
type Failure struct {
	Type      FailureType
	Retryable bool
}

// IsFailure reports whether the outcome counts against the dependency: not a
// success, not the caller's own cancellation, and not a client error (the
// request's fault, not the dependency's: a breaker must not open because
// callers ask for pages that do not exist).
func (f Failure) IsFailure() bool {
	return f.Type != FailureNone && f.Type != FailureCanceled && f.Type != FailureClient && f.Type != FailureRejected
}

// Failed reports whether the call produced no result for a reason a
// substitute answer may cover: a failure of the dependency or a rejection by
// a policy. It is false for success, the caller's own cancellation and
// client errors. Fallbacks and stale caches use it.
func (f Failure) Failed() bool { return f.IsFailure() || f.Type == FailureRejected }

// StatusCoder is implemented by errors that carry an HTTP status code; the
// classifier reads it to classify the error by status.
type StatusCoder interface {
	StatusCode() int
}

// StatusError is an error for an HTTP response status, for callers that turn
// a response into an error so that policies can classify it.
type StatusError struct {
	Code int
	// RetryAfterHint is the server's Retry-After, if it sent one.
	RetryAfterHint time.Duration
}

// Error returns "HTTP <code> <text>".
func (e *StatusError) Error() string {
	return "HTTP " + strconv.Itoa(e.Code) + " " + httpstatus.Text(e.Code)
}

// StatusCode returns the HTTP status code.
func (e *StatusError) StatusCode() int { return e.Code }

// RetryAfter returns the server's Retry-After hint, zero if none.
func (e *StatusError) RetryAfter() time.Duration { return e.RetryAfterHint }

// Rule is one user rule of a Classifier. A rule matches when any of its
// non-empty conditions match; the first matching rule decides.
type Rule struct {
	// Is matches errors for which errors.Is(err, Is) holds.
	Is error
	// As matches errors whose chain holds a given type; see ErrorAs.
	As func(error) bool
	// Statuses matches errors carrying one of these HTTP status codes.
	Statuses []int
	// Pattern matches error messages.
	Pattern *regexp.Regexp
	// Match is an arbitrary predicate.
	Match func(error) bool

	// Type and Retryable are the verdict when the rule matches. A zero Type
	// means FailureUnknown.
	Type      FailureType
	Retryable bool
}

// ErrorAs returns a predicate, for Rule.As, that matches errors whose chain
// holds an E.
func ErrorAs[E error]() func(error) bool {
	return func(err error) bool {
		var e E
		return errors.As(err, &e)
	}
}

func (r *Rule) matches(err error) bool {
	if r.Is != nil && errors.Is(err, r.Is) {
		return true
	}
	if r.As != nil && r.As(err) {
		return true
	}
	if len(r.Statuses) > 0 {
		var sc StatusCoder
		if errors.As(err, &sc) {
			code := sc.StatusCode()
			for _, s := range r.Statuses {
				if s == code {
					return true
				}
			}
		}
	}
	if r.Pattern != nil && r.Pattern.MatchString(err.Error()) {
		return true
	}
	return r.Match != nil && r.Match(err)
}

// Classifier maps errors and HTTP statuses to a Failure. Its zero value uses
// only the built-in rules; user Rules are consulted first, in order. A
// Classifier is read-only after construction and safe for concurrent use.
type Classifier struct {
	Rules []Rule
}

// DefaultClassifier holds only the built-in rules.
var DefaultClassifier = &Classifier{}

// Classify classifies err with the built-in rules; see Classifier.Classify.
func Classify(ctx context.Context, err error) Failure { return DefaultClassifier.Classify(ctx, err) }

// Classify returns the verdict on err. ctx is the caller's context: when it
// is done, a context error is the caller's own cancellation (FailureCanceled,
// not retryable) rather than a failure of the dependency. ctx may be nil.
//
// Built-in rules, after the user's: a rejection by a policy in this process
// (ErrRejected) is classified by the failure it wraps, if any (a budget
// refusal wraps the last attempt's failure), made not retryable, and is
// otherwise FailureRejected — retrying into an open breaker only adds load,
// and a breaker must not open because a bulkhead inside it is full; a
// rejection that wraps an earlier call's failure (a RejectionCauser, such as
// an open breaker's rejection wrapping the failure that opened it) is
// FailureRejected whatever it wraps, and is not shown to the user's rules,
// which would otherwise match that earlier failure; a failure marked
// ErrDoNotRetry is FailureUnavailable and not retryable; a policy's own
// time limit (ErrTimeLimit) is FailureTimeout and retryable, whatever status
// the work it cut short carried; HTTP statuses by ClassifyStatus; context.DeadlineExceeded and
// net.Error timeouts are FailureTimeout; connection refused, reset, broken
// pipe, closed connections and temporary DNS failures are FailureNetwork; all
// retryable. Anything else is FailureUnknown and retryable, as retry
// libraries conventionally treat an unrecognised error.
func (c *Classifier) Classify(ctx context.Context, err error) Failure {
	if err == nil {
		return Failure{Type: FailureNone}
	}
	if ctx != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return Failure{Type: FailureCanceled}
	}
	if c != nil && len(c.Rules) > 0 && !wrapsPastCause(err) {
		for i := range c.Rules {
			r := &c.Rules[i]
			if r.matches(err) {
				t := r.Type
				if t == FailureNone {
					t = FailureUnknown
				}
				return Failure{Type: t, Retryable: r.Retryable}
			}
		}
	}
	return classifyBuiltin(err)
}

// RejectionCauser is implemented by a rejection (an error matching
// ErrRejected) that wraps an earlier call's failure — the one that made the
// policy start shedding, as an open breaker's rejection wraps the failure
// that opened it — rather than a failure of the rejected call.
// RejectionCause returns that failure. The classifier does not classify
// such a rejection by what it wraps: the rejected call never reached the
// dependency, so it is FailureRejected, and a breaker outside does not
// count it.
type RejectionCauser interface {
	error
	RejectionCause() error
}

// wrapsPastCause reports whether err's tree holds a RejectionCauser. It
// walks the tree itself: errors.As would move its target to the heap, and
// classifying a failure allocates nothing.
func wrapsPastCause(err error) bool {
	for err != nil {
		if _, ok := err.(RejectionCauser); ok {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if wrapsPastCause(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

func classifyBuiltin(err error) Failure {
	// Rejections first: one may wrap a failure marked ErrDoNotRetry that an
	// earlier call met, which must not make the rejection count as one.
	if errors.Is(err, ErrRejected) {
		return classifyRejection(err)
	}
	if errors.Is(err, ErrDoNotRetry) {
		return Failure{Type: FailureUnavailable}
	}
	if errors.Is(err, ErrTimeLimit) {
		return Failure{Type: FailureTimeout, Retryable: true}
	}
	var sc StatusCoder
	if errors.As(err, &sc) {
		if f := ClassifyStatus(sc.StatusCode()); f.Type != FailureNone {
			return f
		}
	}
	if errors.Is(err, context.Canceled) {
		return Failure{Type: FailureCanceled}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Failure{Type: FailureTimeout, Retryable: true}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return Failure{Type: FailureTimeout, Retryable: true}
		}
		if dnsErr.IsTemporary {
			return Failure{Type: FailureNetwork, Retryable: true}
		}
		return Failure{Type: FailureNetwork}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Failure{Type: FailureTimeout, Retryable: true}
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, net.ErrClosed) {
		return Failure{Type: FailureNetwork, Retryable: true}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return Failure{Type: FailureNetwork, Retryable: true}
	}
	return Failure{Type: FailureUnknown, Retryable: true}
}

// ClassifyStatus classifies an HTTP status code: 2xx and 3xx are no failure;
// 408 and 504 FailureTimeout, 429 FailureRateLimited, 502 and 503
// FailureUnavailable, all retryable; 401 and 403 FailureAuthentication, not
// retryable; any other 5xx FailureUnknown, not retryable (500 usually means
// the request itself broke the server, yet it is the dependency's failure);
// other 4xx FailureClient, not retryable and not a failure of the dependency.
func ClassifyStatus(code int) Failure {
	switch {
	case code < 400:
		return Failure{Type: FailureNone}
	case code == httpstatus.RequestTimeout, code == httpstatus.GatewayTimeout:
		return Failure{Type: FailureTimeout, Retryable: true}
	case code == httpstatus.TooManyRequests:
		return Failure{Type: FailureRateLimited, Retryable: true}
	case code == httpstatus.BadGateway, code == httpstatus.ServiceUnavailable:
		return Failure{Type: FailureUnavailable, Retryable: true}
	case code == httpstatus.Unauthorized, code == httpstatus.Forbidden:
		return Failure{Type: FailureAuthentication}
	case code < 500:
		return Failure{Type: FailureClient}
	default:
		return Failure{Type: FailureUnknown}
	}
}

// classifyRejection looks beneath a rejection for the failure it wraps: the
// last attempt's error under a budget refusal counts against the dependency,
// a bare bulkhead or limiter rejection does not.
func classifyRejection(err error) Failure {
	if _, ok := err.(RejectionCauser); ok {
		return Failure{Type: FailureRejected}
	}
	for _, inner := range unwrapAll(err) {
		if inner == nil {
			continue
		}
		var f Failure
		if errors.Is(inner, ErrRejected) {
			f = classifyRejection(inner)
		} else {
			f = classifyBuiltin(inner)
		}
		if f.Type != FailureRejected && f.Type != FailureNone {
			f.Retryable = false
			return f
		}
	}
	return Failure{Type: FailureRejected}
}

func unwrapAll(err error) []error {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return []error{u.Unwrap()}
	case interface{ Unwrap() []error }:
		return u.Unwrap()
	}
	return nil
}
