package fallback

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrExhausted is matched, through errors.Is, by the error Execute returns
// when the primary failed and no alternative, last good result or default
// could answer.
var ErrExhausted = errors.New("fallback: exhausted")

// ExhaustedError is returned by Execute when every branch is spent. It
// satisfies errors.Is(err, ErrExhausted) and unwraps to the primary's
// failure only, so classifiers and errors.As see the primary; the
// alternatives' failures are listed in Alternatives and in the message.
type ExhaustedError struct {
	// Name is the Config.Name of the Fallback, possibly empty.
	Name string
	// Primary is the failure of the primary call.
	Primary error
	// Alternatives are the failures of the alternatives tried, in order.
	// Alternatives not started because the caller's context had ended are
	// absent.
	Alternatives []*AlternativeError
}

// Error returns "fallback: exhausted: <primary>" followed by each
// alternative's failure.
func (e *ExhaustedError) Error() string {
	var b strings.Builder
	b.WriteString("fallback: ")
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(" ")
	}
	b.WriteString("exhausted: ")
	if e.Primary != nil {
		b.WriteString(e.Primary.Error())
	}
	for _, a := range e.Alternatives {
		b.WriteString("; ")
		b.WriteString(a.message())
	}
	return b.String()
}

// Is reports whether target is ErrExhausted.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Unwrap returns the primary's failure.
func (e *ExhaustedError) Unwrap() error { return e.Primary }

// AlternativeError is the failure of one alternative. When the alternative's
// own Timeout passed, TimedOut is true; the same error (with a nil Err) is
// the cause of the alternative's cancelled context.
type AlternativeError struct {
	// Name is the alternative's name.
	Name string
	// Err is what the alternative returned; nil in the cancellation cause.
	Err error
	// TimedOut reports that the alternative's Timeout passed.
	TimedOut bool
	// Limit is the alternative's Timeout, when TimedOut.
	Limit time.Duration
}

// Error returns "fallback: alternative "<name>": <err>", noting a timeout.
func (e *AlternativeError) Error() string { return "fallback: " + e.message() }

func (e *AlternativeError) message() string {
	s := "alternative " + strconv.Quote(e.Name)
	if e.TimedOut {
		s += " exceeded its " + e.Limit.String() + " timeout"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether a timed-out alternative's error is matched against
// context.DeadlineExceeded.
func (e *AlternativeError) Is(target error) bool {
	return e.TimedOut && target == context.DeadlineExceeded
}

// Unwrap returns the alternative's own error.
func (e *AlternativeError) Unwrap() error { return e.Err }
