// Package sluice is a resilience layer for code that calls other services:
// retries with backoff and jitter, circuit breakers, bulkheads, rate limiters,
// timeouts and fallbacks, composed into a Pipeline.
//
// The root package holds only what every policy shares: the Policy interface
// and the Pipeline that composes policies, the generic Get, the Clock that
// policies read time from, the ErrRejected marker carried by every
// load-shedding error, and the failure Classifier. Each policy lives in its
// own package (retry, timeout, fallback, breaker, bulkhead, ratelimit) and
// imports this one; this package imports none of them.
//
// A Pipeline lists policies outermost first:
//
//	p := sluice.NewPipeline(retryPolicy, breaker, bulkhead, timeout.After(5*time.Second))
//	err := p.Do(ctx, func(ctx context.Context) error { return send(ctx, cmd) })
//	v, err := sluice.Get(ctx, p, func(ctx context.Context) (Status, error) { return fetch(ctx) })
//
// Every error a policy returns can be tested with errors.Is against its
// package's sentinel (breaker.ErrOpen, retry.ErrExhausted, ...), and the error
// of the call itself stays reachable through errors.Is and errors.As.
package sluice
