package timeout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/internal/stripe"
)

// ErrExceeded is matched, through errors.Is, by every error a Timeout
// returns because its limit passed before the work finished. It is also the
// cause (context.Cause) of the context the work was cancelled through.
var ErrExceeded = errors.New("timeout: exceeded")

var _ net.Error = (*Error)(nil)

// Error is returned by Execute when the limit passed before the work
// finished, and is the cause of the work's cancelled context. It satisfies
// errors.Is(err, ErrExceeded) and errors.Is(err, context.DeadlineExceeded),
// reports Timeout() == true like a net.Error, and wraps the error the work
// returned, if any. Treat it as read-only: the cause value is shared by every
// call of one Timeout.
type Error struct {
	// Name is the Config.Name of the Timeout, possibly empty.
	Name string
	// Limit is the limit that passed.
	Limit time.Duration
	// Err is what the work returned, nil in the cause value.
	Err error
}

// Error returns "timeout: <name> exceeded <limit>", followed by the work's
// error.
func (e *Error) Error() string {
	s := "timeout: exceeded " + e.Limit.String()
	if e.Name != "" {
		s = "timeout: " + e.Name + " exceeded " + e.Limit.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrExceeded, sluice.ErrTimeLimit or
// context.DeadlineExceeded, so code that tests for any of them keeps working
// whatever the work returned. sluice.ErrTimeLimit is how the classifier
// knows the error for a timeout even when the work, cut short, returned an
// error carrying some status: it is a retryable FailureTimeout.
func (e *Error) Is(target error) bool {
	return target == ErrExceeded || target == sluice.ErrTimeLimit || target == context.DeadlineExceeded
}

// Unwrap returns the work's own error.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports true, for code that checks net.Error-style timeouts.
func (e *Error) Timeout() bool { return true }

// Temporary reports true, as context.DeadlineExceeded does, so that *Error
// satisfies the whole net.Error interface.
func (e *Error) Temporary() bool { return true }

// Config configures a Timeout. The zero Config is valid: no limit.
type Config struct {
	// Name identifies the Timeout in errors and statistics. If empty, errors
	// carry no name.
	Name string

	// Timeout is how long the rest of the pipeline may run. If zero, there
	// is no limit and calls pass through unchanged. It must not be negative.
	Timeout time.Duration

	// OnTimeout, if not nil, is called on the caller's goroutine with the
	// error Execute is about to return, each time the limit passes. It must
	// not modify the error.
	OnTimeout func(err *Error)
}

// Stats are the counters of a Timeout since it was made.
type Stats struct {
	// Calls is the number of calls executed.
	Calls int64
	// Timeouts is the number of calls that returned an error because the
	// limit passed.
	Timeouts int64
}

// Timeout is a sluice.Policy that runs the rest of the pipeline under a
// deadline. It is safe for concurrent use and may sit in many pipelines.
type Timeout struct {
	name      string
	limit     time.Duration
	cause     *Error // shared cause: no allocation for it per call
	onTimeout func(*Error)

	calls    stripe.Counter
	timeouts stripe.Counter
}

var _ sluice.Policy = (*Timeout)(nil)

// New returns a Timeout for cfg, or an error naming the invalid field.
func New(cfg Config) (*Timeout, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout: Config.Timeout must be >= 0, got %v", cfg.Timeout)
	}
	return &Timeout{
		name:      cfg.Name,
		limit:     cfg.Timeout,
		cause:     &Error{Name: cfg.Name, Limit: cfg.Timeout},
		onTimeout: cfg.OnTimeout,
	}, nil
}

// MustNew is like New but panics on an invalid Config; for configurations
// written in code.
func MustNew(cfg Config) *Timeout {
	t, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return t
}

// After returns an unnamed Timeout with limit d: the short form of
// MustNew(Config{Timeout: d}) for the common limit written in code. A d of
// zero or less means no limit.
func After(d time.Duration) *Timeout {
	return MustNew(Config{Timeout: max(d, 0)})
}

// Name returns Config.Name.
func (t *Timeout) Name() string { return t.name }

// Limit returns the configured limit; zero means none.
func (t *Timeout) Limit() time.Duration { return t.limit }

// Stats returns the counters. Increments racing with Stats may or may not be
// included.
func (t *Timeout) Stats() Stats {
	return Stats{Calls: t.calls.Load(), Timeouts: t.timeouts.Load()}
}

// Execute runs next under a deadline of the configured limit from now.
//
// It returns the work's own result when the work finishes first, and the
// caller's error unchanged when the caller's context ends first. When the
// limit passes first and the work returns an error, Execute returns an *Error
// wrapping it (or the cause itself, if the work returned that). A nil return
// from the work is a success even if it came late.
func (t *Timeout) Execute(ctx context.Context, next sluice.Next) error {
	t.calls.Inc()
	if t.limit <= 0 {
		return next.Run(ctx)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= t.limit {
		// The caller's deadline comes first: a derived context could only
		// ever end by the caller's deadline, so skip making one.
		return next.Run(ctx)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, t.limit, t.cause)
	defer cancel()
	err := next.Run(tctx)
	if err == nil || context.Cause(tctx) != error(t.cause) {
		// Success, the work's own failure, or the caller's context ended
		// first (then its cause, not ours, is recorded in tctx).
		return err
	}
	t.timeouts.Inc()
	e := t.cause
	if err != error(t.cause) {
		e = &Error{Name: t.name, Limit: t.limit, Err: err}
	}
	if t.onTimeout != nil {
		t.onTimeout(e)
	}
	return e
}
