package retry

import (
	"errors"
	"strconv"
	"time"

	"github.com/sluice-go/sluice"
)

// ErrExhausted is matched (errors.Is) by the error of a call that failed on
// every attempt it was allowed, or ran out of Config.MaxElapsed before its
// next attempt. The error is an *ExhaustedError, which unwraps to the last
// attempt's error.
var ErrExhausted = errors.New("retry: retries exhausted")

// ErrBudgetExhausted is matched (errors.Is) by the error of a call whose
// retry the retry budget refused. The error is a *BudgetError: it unwraps to
// the last attempt's error, also matches sluice.ErrRejected (the call was
// shed to protect the dependency) and says through RetryAfter when the
// budget expects to have room again.
var ErrBudgetExhausted = errors.New("retry: retry budget exhausted")

// ExhaustedError is the error of a call that used up its attempts or its
// MaxElapsed. errors.Is(err, ErrExhausted) holds, and errors.Is/As reach the
// last attempt's error through Unwrap.
type ExhaustedError struct {
	// Attempts is the number of attempts made.
	Attempts int
	// OutOfTime is true when MaxElapsed, not MaxAttempts, ended the call.
	OutOfTime bool
	// Last is the last attempt's error.
	Last error
}

// Error reports the attempts and the last error.
func (e *ExhaustedError) Error() string {
	s := "retry: gave up after " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		s += "s"
	}
	if e.OutOfTime {
		s += " (max elapsed time reached)"
	}
	if e.Last != nil {
		s += ": " + e.Last.Error()
	}
	return s
}

// Is reports whether target is ErrExhausted.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Unwrap returns the last attempt's error.
func (e *ExhaustedError) Unwrap() error { return e.Last }

// BudgetError is the error of a call whose retry the retry budget refused.
// errors.Is(err, ErrBudgetExhausted) and errors.Is(err, sluice.ErrRejected)
// hold, and the last attempt's error is reachable through Unwrap.
type BudgetError struct {
	// Attempts is the number of attempts made.
	Attempts int
	// Last is the last attempt's error.
	Last error
	// Wait estimates when the budget will have room again.
	Wait time.Duration
}

// Error reports the refusal and the last error.
func (e *BudgetError) Error() string {
	s := "retry: retry budget exhausted after " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		s += "s"
	}
	if e.Last != nil {
		s += ": " + e.Last.Error()
	}
	return s
}

// Is reports whether target is ErrBudgetExhausted or sluice.ErrRejected.
func (e *BudgetError) Is(target error) bool {
	return target == ErrBudgetExhausted || target == sluice.ErrRejected
}

// Unwrap returns the last attempt's error.
func (e *BudgetError) Unwrap() error { return e.Last }

// RetryAfter returns Wait, so that the HTTP layer can answer with a
// Retry-After.
func (e *BudgetError) RetryAfter() time.Duration { return e.Wait }

// canceledError is returned when the caller's context ends while a call waits
// between attempts: it matches the context's cause and keeps the last
// attempt's error reachable.
type canceledError struct {
	cause, last error
}

func (e *canceledError) Error() string {
	return e.cause.Error() + " (while waiting to retry; last attempt: " + e.last.Error() + ")"
}

func (e *canceledError) Unwrap() []error { return []error{e.cause, e.last} }
