package sluice

import "context"

type idempotencyKey struct{}

// WithIdempotent records in ctx whether the work run under it may safely be
// repeated. Retry policies do not retry work marked non-idempotent unless
// their configuration says it is safe; work with no mark is treated as
// idempotent, since putting it under a retry policy is itself the statement.
func WithIdempotent(ctx context.Context, idempotent bool) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, idempotent)
}

// Idempotent reports the mark set by WithIdempotent, and whether one was set.
func Idempotent(ctx context.Context) (idempotent, marked bool) {
	v, ok := ctx.Value(idempotencyKey{}).(bool)
	return v, ok
}
