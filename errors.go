package sluice

import (
	"errors"
	"time"
)

// ErrRejected marks every error by which a policy sheds load rather than
// reporting a failure of the call: an open breaker, a full bulkhead, a rate
// limit, an exhausted retry budget. Test for it with errors.Is; such errors
// usually also implement RetryAfterer, saying when to come back.
var ErrRejected = errors.New("sluice: rejected")

// RetryAfterer is implemented by rejection errors that know when the caller
// may try again.
type RetryAfterer interface {
	RetryAfter() time.Duration
}

// RetryAfter returns the wait suggested by the first error in err's chain
// that implements RetryAfterer, and whether one did.
func RetryAfter(err error) (time.Duration, bool) {
	var ra RetryAfterer
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}
