package cache

import (
	"context"
	"errors"
	"runtime/debug"
	"time"
)

// flight is one call of fn (or of the rest of a pipeline) for one key,
// shared by every caller that asks for the key while it runs.
type flight[T any] struct {
	done chan struct{} // closed when the fields below are final

	// Written by the call's runner before done is closed; read-only after.
	val       T
	err       error
	panicked  *PanicError
	at        time.Time // when the call returned, by the cache's clock
	abandoned bool      // Policy: the runner left (cancelled, panicked); waiters start over

	// forgotten is set, under the shard lock, by Delete and Purge when they
	// drop the flight from the shard's map: its result must not be stored.
	forgotten bool
}

// run is the goroutine of a call started by Get. See the package
// documentation for the context fn gets.
func (c *Cache[T]) run(s *shard[T], key string, f *flight[T], parent context.Context, fn func(context.Context) (T, error)) {
	returned := false
	defer func() {
		if !returned {
			// recover returns nil only for runtime.Goexit: since Go 1.21
			// panic(nil) panics with a *runtime.PanicNilError.
			if r := recover(); r != nil {
				f.panicked = &PanicError{Value: r, Stack: debug.Stack()}
			} else {
				f.err = errGoexit
			}
		}
		c.finish(s, key, f)
	}()
	ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(parent), c.callTimeout, ErrCallTimeout)
	defer cancel()
	v, err := fn(ctx)
	if err != nil && context.Cause(ctx) == ErrCallTimeout &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = ErrCallTimeout
	}
	f.val, f.err = v, err
	returned = true
}

// finish records when the call returned, stores a successful result unless
// the flight was forgotten, removes the flight and releases its waiters.
func (c *Cache[T]) finish(s *shard[T], key string, f *flight[T]) {
	now := c.clock.Now() // user code (the Clock): read before locking
	f.at = now
	evicted := false
	s.Lock()
	if !f.forgotten {
		delete(s.Extra, key)
		if c.keep && f.err == nil && f.panicked == nil && !f.abandoned {
			evicted = s.PutAtLocked(key, f.val, now)
		}
	}
	s.Unlock()
	if evicted {
		c.evictions.Add(1)
	}
	close(f.done)
}
