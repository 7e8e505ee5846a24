package ratelimit

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice"
)

// ErrLimited is matched (errors.Is) by every error with which a limiter
// refuses a call: no token now, or a wait for one longer than MaxWait or
// the context's deadline allows. Such errors also match sluice.ErrRejected
// and implement RetryAfter.
var ErrLimited = errors.New("ratelimit: rate limited")

// limitedError is the rejection of a one-token call by a TokenBucket. It is
// pointer-shaped, so returning it as an error allocates nothing; its
// RetryAfter reads the limiter's state when called.
type limitedError struct{ l *TokenBucket }

func (e limitedError) Error() string {
	return fmt.Sprintf("ratelimit: %srate limited, retry after %v", e.l.label(), e.RetryAfter())
}

// RetryAfter is how long from now until the limiter has a token.
func (e limitedError) RetryAfter() time.Duration { return e.l.retryAfter(1) }

func (e limitedError) Is(target error) bool { return isLimited(target) }

// retryError is a rejection with a fixed retry-after: a request for several
// tokens, or a Decision of any Limiter.
type retryError struct {
	name  string
	after time.Duration
}

func (e *retryError) Error() string {
	if e.name == "" {
		return fmt.Sprintf("ratelimit: rate limited, retry after %v", e.after)
	}
	return fmt.Sprintf("ratelimit: %q: rate limited, retry after %v", e.name, e.after)
}

// RetryAfter is how long after the rejection the tokens were expected.
func (e *retryError) RetryAfter() time.Duration { return e.after }

func (e *retryError) Is(target error) bool { return isLimited(target) }

func isLimited(target error) bool { return target == ErrLimited || target == sluice.ErrRejected }
