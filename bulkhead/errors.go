package bulkhead

import (
	"errors"
	"strconv"
	"time"

	"github.com/sluice-go/sluice"
)

// ErrFull is matched, through errors.Is, by every error a Bulkhead returns
// when it sheds a call: no permit was free and the queue was full (or there
// is no queue), or the call waited MaxWait in the queue without getting a
// permit. Such errors also match sluice.ErrRejected.
var ErrFull = errors.New("bulkhead: full")

// Reason says why a Bulkhead rejected a call.
type Reason uint8

const (
	// QueueFull: no permit was free and the queue held MaxQueue waiters
	// already (or MaxQueue is zero, so there is no queue).
	QueueFull Reason = iota
	// WaitExpired: the call queued, but MaxWait passed before a permit
	// came free.
	WaitExpired
)

// String returns "queue-full" or "wait-expired".
func (r Reason) String() string {
	switch r {
	case QueueFull:
		return "queue-full"
	case WaitExpired:
		return "wait-expired"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// FullError is the error of a rejected call. It satisfies
// errors.Is(err, ErrFull) and errors.Is(err, sluice.ErrRejected), and says
// when to come back through RetryAfter. A Bulkhead builds its FullErrors
// once, at New and Update, and returns the same values on every rejection,
// so rejecting allocates nothing; they are immutable.
type FullError struct {
	name       string
	reason     Reason
	retryAfter time.Duration
	msg        string
}

func newFullError(name string, reason Reason, maxWait, retryAfter time.Duration) *FullError {
	msg := "bulkhead: "
	if name != "" {
		msg += strconv.Quote(name) + " "
	}
	switch reason {
	case QueueFull:
		msg += "full: every permit in use and no room in the queue"
	case WaitExpired:
		msg += "full: no permit came free within the max wait of " + maxWait.String()
	}
	return &FullError{name: name, reason: reason, retryAfter: retryAfter, msg: msg}
}

// Error describes the rejection, naming the bulkhead and the reason.
func (e *FullError) Error() string { return e.msg }

// Is reports whether target is ErrFull or sluice.ErrRejected.
func (e *FullError) Is(target error) bool { return target == ErrFull || target == sluice.ErrRejected }

// Name returns the Config.Name of the bulkhead that rejected the call.
func (e *FullError) Name() string { return e.name }

// Reason returns why the call was rejected.
func (e *FullError) Reason() Reason { return e.reason }

// RetryAfter returns Config.RetryAfter (100ms unless configured): a short
// hint, since a full bulkhead usually frees a permit within the duration of
// one call. It is a hint for backing off, not a promise of a free permit.
func (e *FullError) RetryAfter() time.Duration { return e.retryAfter }
