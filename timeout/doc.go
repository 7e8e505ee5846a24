// Package timeout bounds how long the rest of a pipeline may run.
//
// A Timeout is a sluice.Policy. Execute runs the policies inside it and the
// call itself under a context whose deadline is the configured limit, made
// with context.WithTimeoutCause. When the deadline passes the context is
// cancelled and context.Cause(ctx) returns an *Error, so the work learns why
// it was stopped; Execute then returns an *Error that satisfies
// errors.Is(err, ErrExceeded), reports Timeout() == true as net.Error does,
// and wraps the work's own error.
//
// # Placement
//
// Where a Timeout sits in a pipeline decides what it bounds:
//
//	sluice.NewPipeline(timeout.After(10*time.Second), retryPolicy) // overall: every attempt and every backoff sleep
//	sluice.NewPipeline(retryPolicy, timeout.After(2*time.Second))  // per attempt: each attempt gets a fresh 2 s
//
// Both may be used together. An overall timeout also cuts short a retry's
// backoff sleep, since sluice.Sleep returns as soon as the context ends.
//
// # No goroutines
//
// The work runs inline, on the caller's goroutine. Nothing interrupts it
// except its context: work that ignores ctx runs to completion and Execute
// waits for it. Pass ctx to every blocking call (net.Dialer.DialContext,
// http.NewRequestWithContext, database/sql's ...Context methods). Running the
// work on another goroutine and abandoning it on timeout would leak that
// goroutine and the resources it holds, and would hide the problem.
//
// A call that returns nil is a success even if it finished after the
// deadline: its result is in hand and its effects have happened, so turning it
// into a failure would only make a retry repeat it.
//
// # Cost
//
// Each call normally costs one context.WithTimeoutCause (about half a
// microsecond and a few allocations). When the caller's context already has a
// deadline no later than the limit, no context is derived at all: the
// caller's deadline fires first in any case, so the call runs under the
// caller's context and costs nothing. Time comes from the runtime's timers,
// which keep context deadlines; tests control it with testing/synctest rather
// than a sluice.Clock, because a context cannot be cancelled from a fake
// clock without a goroutine to watch it.
package timeout
