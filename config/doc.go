// Package config reads the sidecar's YAML configuration into plain typed
// values: where to listen, the admin server, storage, named policies and
// the routes that use them. The schema is documented key by key in
// docs/config.md; examples/sluice.yaml is a complete file.
//
// Load and Parse are strict. An unknown key, a value of the wrong type, a
// bad duration (Go form: 30s, 1m30s) or size (1024, 512KB, 1MiB), a value
// out of range, a route naming a missing policy, a duplicate route name, a
// bad URL or address: each is an Error carrying the file, line, column and
// field path, such as
//
//	sluice.yaml:14:5: policies.network.retry.backoff: unknown backoff "expo" (want exponential, linear, constant, decorrelated)
//
// and Parse reports all of them at once, as Errors.
//
// Scalar values may refer to the environment as ${NAME}, or ${NAME:-default}
// to give a default when NAME is unset or empty; expansion happens after the
// YAML is parsed, so positions stay those of the file. Secrets belong in the
// environment; (*Config).Redacted gives a copy that is safe to show, with the
// admin token masked and expanded values shown as written.
//
// Defaults are applied in one place (the Default... constants): a key left
// out of the file takes its documented default. Policy knobs (retry,
// circuit_breaker, bulkhead, rate_limit) have none here: a zero value means
// "the policy package's default", so that each default lives once, in its
// package. (*Config).Validate checks every route's policy settings with the
// policy packages' own Validate methods, and RetryConfig, BreakerConfig,
// BulkheadConfig and LimiterConfig say what a section means in those
// packages' terms, so that the sidecar and the simulator read a file alike.
// Building instances from a Config, and carrying their state across a
// reload, is the sidecar's work (package proxy); this package builds
// nothing. Loader.ParsePolicies reads a file of policies alone, as the
// simulator does.
//
// Default returns the embedded default configuration `sluice serve` uses
// when given no file.
package config
