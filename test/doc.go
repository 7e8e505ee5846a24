// Package test holds sluice's cross-policy tests: whole pipelines of retry,
// breaker, bulkhead, rate limiter, timeout, fallback and cache run against a
// scripted dependency under testing/synctest, checking what each policy does
// to the others — how many times the dependency is called, how much virtual
// time passes, and which error or value reaches the caller.
//
// The tests of one policy live beside it; regression tests, one per fixed
// bug, live in test/issues. The package has no code of its own.
package test
