package breaker

import (
	"errors"
	"strconv"
	"time"

	"github.com/sluice-go/sluice"
)

// ErrOpen is the sentinel of every rejection by a breaker: it is open, forced
// open, or half-open with every probe slot taken. Test for it with
// errors.Is; the error returned also satisfies errors.Is(err,
// sluice.ErrRejected), has a RetryAfter method giving the time until the
// next probe (zero when that is unknown), and wraps the failure that opened
// the breaker (Trip.Cause), which errors.As and errors.Unwrap reach. The
// rejection is built once per open period, so rejecting allocates nothing.
// Test for ErrOpen before looking for the cause's type: errors.As finds a
// *net.OpError in a rejection as in the failure itself.
var ErrOpen = errors.New("breaker: circuit open")

const (
	rejectOpen   = iota // open, probes due at probeAt
	rejectBusy          // half-open, every probe slot taken
	rejectForced        // forced open
)

// rejection is the error a Breaker returns when it refuses a call. It is
// built once per open period (or once per breaker for the other kinds) and
// returned as a pointer, so that a rejection allocates nothing.
type rejection struct {
	b       *Breaker
	gen     uint64    // generation of the open period it belongs to
	probeAt time.Time // when that period ends
	cause   error     // the failure that opened the breaker, if known
	kind    uint8
}

// Error names the breaker and why it refused the call.
func (r *rejection) Error() string {
	prefix := "breaker"
	if r.b.name != "" {
		prefix = "breaker " + strconv.Quote(r.b.name)
	}
	switch r.kind {
	case rejectBusy:
		return prefix + ": circuit half-open, all probe slots busy"
	case rejectForced:
		return prefix + ": circuit forced open"
	}
	return prefix + ": circuit open"
}

// Unwrap returns the failure that opened the breaker (Trip.Cause), so that
// errors.As and errors.Unwrap reach it, as an inner exception; nil for a
// forced-open breaker and when the cause is unknown.
func (r *rejection) Unwrap() error { return r.cause }

// RejectionCause returns the same failure. It marks the rejection for
// sluice's classifier as one whose wrapped error is an earlier call's
// failure, not this call's: the rejection stays FailureRejected, so that an
// outer breaker does not count it and a retry does not repeat it.
func (r *rejection) RejectionCause() error { return r.cause }

// Is reports whether target is ErrOpen or sluice.ErrRejected.
func (r *rejection) Is(target error) bool {
	return target == ErrOpen || target == sluice.ErrRejected
}

// RetryAfter returns the time until the open period during which the call
// was rejected ends, read from the breaker's clock; zero if it has ended or
// if no end is known (forced open, or half-open with every probe out).
func (r *rejection) RetryAfter() time.Duration {
	if r.kind != rejectOpen {
		return 0
	}
	return max(0, r.probeAt.Sub(r.b.set.Load().clock.Now()))
}
