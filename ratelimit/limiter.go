package ratelimit

import (
	"context"
	"time"

	"github.com/sluice-go/sluice"
)

// Limiter is the narrow interface every rate limiter backend implements:
// the in-process TokenBucket and a Redis-backed limiter that holds one limit
// for many instances. It takes a context and may fail, because a shared
// limiter is a network call away.
//
// Take asks for n tokens. It admits at once, waits for the tokens (as the
// backend's MaxWait and ctx's deadline allow; a wait that would be too long
// is refused without sleeping), or refuses. A refusal is a Decision with
// Allowed false and a nil error; the error is for a backend that could not
// decide (a network failure), for ctx ending during a wait (context.Cause;
// the tokens are given back where the backend can), and for a request that
// can never be met (n above the burst).
//
// The Redis backend maps Take onto GCRA in one round trip: a Lua script,
// run by EVALSHA with the key, the interval I, the burst B, n and the
// longest acceptable wait, reads the server's TIME, computes
// base = max(TAT, now) and TAT' = base + n·I from the TAT stored under the
// key, and, when the wait TAT'−now−B·I (bursty) or base−now (smooth) is
// acceptable, stores TAT' with a PEXPIRE of TAT'−now, so idle keys vanish.
// It replies with allowed, wait and retry-after. Take then sleeps for the
// wait locally; if ctx ends first, a second script subtracts n·I again.
// This is the TokenBucket's algorithm with the server's clock and the key
// in place of the atomic word, so the two backends pass one conformance
// suite.
type Limiter interface {
	Take(ctx context.Context, n int) (Decision, error)
}

// Decision is a Limiter's answer to Take.
type Decision struct {
	// Allowed reports whether the tokens were taken.
	Allowed bool
	// Waited is how long Take slept before taking them.
	Waited time.Duration
	// RetryAfter, when Allowed is false, is how long until the tokens are
	// there, were nothing else to take them meanwhile.
	RetryAfter time.Duration
}

// Err returns nil for an allowed Decision, and otherwise the rejection
// error: it matches ErrLimited and sluice.ErrRejected and reports
// RetryAfter.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &retryError{after: d.RetryAfter}
}

// Take asks for n tokens, waiting for them as Config.MaxWait and ctx's
// deadline allow (see Limiter). n ≤ 0 is allowed and takes nothing.
func (l *TokenBucket) Take(ctx context.Context, n int) (Decision, error) {
	if n <= 0 {
		return Decision{Allowed: true}, nil
	}
	now := l.now()
	waited, err := l.wait(ctx, now, int64(n), l.p.Load().cfg.MaxWait)
	switch e := err.(type) {
	case nil:
		return Decision{Allowed: true, Waited: waited}, nil
	case limitedError:
		return Decision{RetryAfter: e.RetryAfter()}, nil
	case *retryError:
		return Decision{RetryAfter: e.after}, nil
	default:
		return Decision{}, err
	}
}

// NewPolicy returns a pipeline policy that runs a call once l has admitted
// it: it calls l.Take(ctx, 1), returns Take's error or the Decision's
// rejection (Decision.Err) without running the call, and otherwise runs it.
// A TokenBucket is already a Policy and needs no wrapping; NewPolicy is for
// other Limiters, such as the Redis one.
func NewPolicy(l Limiter) sluice.Policy {
	return sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		d, err := l.Take(ctx, 1)
		if err != nil {
			return err
		}
		if err := d.Err(); err != nil {
			return err
		}
		return next.Run(ctx)
	})
}
