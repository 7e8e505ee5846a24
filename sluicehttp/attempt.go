package sluicehttp

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/retry"
)

// Attempter makes single tries of requests: the one place where sluice
// sends a request and decides what its answer means. The Transport's
// retries and the sidecar's tries and fallover to other upstreams are
// loops over Attempt, so a change to how a try is made (a load balancer
// choosing the upstream of each try, a hedged second try racing the
// first) plugs in here, or in a loop over it, once for both.
//
// The zero Attempter sends through http.DefaultTransport, counts 429 and
// 5xx as failures and reads Retry-After dates with the system clock.
type Attempter struct {
	// Base sends the request. If nil, http.DefaultTransport.
	Base http.RoundTripper

	// Failure decides whether an answer is a failure of the upstream,
	// which Attempt then returns as an error. If nil, statuses 429 and 5xx
	// are failures.
	Failure FailureTest

	// Clock is the time source for Retry-After dates. If nil, the system
	// clock.
	Clock sluice.Clock

	// Bound keeps a good answer's request bound to the try's context after
	// Attempt returns, until its body is closed: the context ending cuts
	// the body off. Set it when the body is read within the try, as the
	// sidecar streams an answer under its route's timeout and breaker;
	// leave it unset when the body outlives the try, as a Transport hands
	// it to its caller after the per-attempt timeout is done.
	Bound bool
}

// Attempt makes one try of req under ctx, the try's context (a per-try
// timeout's, say), sending body (nil: req's own body, once).
//
// When ctx can end before req's own context, the request runs under a
// context of its own, derived from req's and ended by ctx only until the
// try is over: a failure answer's body then stays readable after the try's
// timeout is gone, when it becomes the caller's answer, and a good answer's
// body after that too unless Bound is set. Closing such a body ends its
// context.
//
// It returns one of three outcomes:
//   - a good answer: the response and nil;
//   - a failure answer (see Failure): the response, with its body read
//     into memory up to 64 KiB (see BufferBody) so that its connection is
//     free while a retry waits, and an error for the policies: a
//     *NoRetryError when a sluice layer further down marked the answer
//     final (Sluice-Reject, or Sluice-Retry: no), otherwise a
//     *sluice.StatusError; both carry the answer's Retry-After;
//   - no answer: nil and the error of the round trip or of reading the
//     failure answer's body, or ctx's cause when ctx ended while that body
//     was read.
//
// The caller closes (or DiscardBody) the response it gets back.
func (a *Attempter) Attempt(ctx context.Context, req *http.Request, body *Body) (*http.Response, error) {
	var (
		cancel context.CancelCauseFunc
		stop   func() bool
	)
	out := req
	detached := ctx.Done() != req.Context().Done()
	switch {
	case detached || (body != nil && !body.sendsAsIs(req)):
		rctx := req.Context()
		if detached {
			rctx, cancel = context.WithCancelCause(rctx)
			stop = context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
		}
		out = req.WithContext(rctx)
		if body != nil {
			if err := body.apply(out); err != nil {
				if cancel != nil {
					stop()
					cancel(nil)
				}
				return nil, err
			}
		}
	case body != nil:
		body.take()
	}
	resp, err := a.base().RoundTrip(out)
	if err != nil {
		if cancel != nil {
			stop()
			cancel(nil)
		}
		return nil, err
	}
	if !a.isFailure(resp) {
		if cancel != nil {
			if a.Bound {
				resp.Body = detach(resp.Body, cancel, stop)
				return resp, nil
			}
			if !stop() {
				// The try ended as the answer came: it is cut off.
				resp.Body.Close()
				cancel(nil)
				return nil, context.Cause(ctx)
			}
			resp.Body = detach(resp.Body, cancel, nil)
		}
		return resp, nil
	}
	complete, err := BufferBody(resp)
	if err != nil {
		if cancel != nil {
			stop()
			cancel(nil)
		}
		return nil, err
	}
	if cancel != nil {
		if !stop() {
			// The try ended while the body was read: it is cut off.
			resp.Body.Close()
			cancel(nil)
			return nil, context.Cause(ctx)
		}
		if complete {
			cancel(nil)
		} else {
			resp.Body = detach(resp.Body, cancel, nil)
		}
	}
	return resp, a.failure(resp)
}

func (a *Attempter) base() http.RoundTripper {
	if a.Base == nil {
		return http.DefaultTransport
	}
	return a.Base
}

func (a *Attempter) isFailure(resp *http.Response) bool {
	if a.Failure == nil {
		return defaultIsFailure(resp)
	}
	return a.Failure.Failed(resp)
}

// FailureTest decides which answers of an upstream are failures. It is an
// interface, not a function, so that a value that already knows its rule (a
// sidecar route) passes as itself, which costs no allocation per try where a
// method value would.
type FailureTest interface {
	// Failed reports whether resp is a failure of the upstream.
	Failed(resp *http.Response) bool
}

// FailureFunc is a function as a FailureTest.
type FailureFunc func(resp *http.Response) bool

// Failed calls f.
func (f FailureFunc) Failed(resp *http.Response) bool { return f(resp) }

func defaultIsFailure(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// failure is the error the policies see for a failure answer.
func (a *Attempter) failure(resp *http.Response) error {
	var hint time.Duration
	if v := resp.Header.Get(HeaderRetryAfter); v != "" {
		if d, ok := retry.ParseRetryAfter(v, sluice.ClockOr(a.Clock).Now()); ok {
			hint = d
		}
	}
	if reason := resp.Header.Get(HeaderReject); reason != "" || strings.EqualFold(resp.Header.Get(HeaderRetry), retryNo) {
		return &NoRetryError{Code: resp.StatusCode, Reason: reason, RetryAfterHint: hint}
	}
	return &sluice.StatusError{Code: resp.StatusCode, RetryAfterHint: hint}
}
