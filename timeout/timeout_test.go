package timeout_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/timeout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// errWork is a failure of the work itself, for errors.As checks.
type errWork struct{ msg string }

func (e *errWork) Error() string { return e.msg }

// waitDone blocks until ctx ends and returns what a well-behaved callee
// returns: ctx.Err(), context.Cause(ctx) or its own error.
func waitDone(ret func(ctx context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		return ret(ctx)
	}
}

func TestExceeded(t *testing.T) {
	cases := []struct {
		name string
		ret  func(ctx context.Context) error
		// check the work's own error is reachable
		reach func(t *testing.T, err error)
	}{
		{"returns cause", func(ctx context.Context) error { return context.Cause(ctx) }, nil},
		{"returns ctx.Err", func(ctx context.Context) error { return ctx.Err() }, func(t *testing.T, err error) {
			var te *timeout.Error
			if !errors.As(err, &te) || te.Err != context.DeadlineExceeded {
				t.Fatalf("want *Error wrapping context.DeadlineExceeded, got %#v", err)
			}
		}},
		{"returns own error", func(ctx context.Context) error { return &errWork{"closed conn"} }, func(t *testing.T, err error) {
			var we *errWork
			if !errors.As(err, &we) || we.msg != "closed conn" {
				t.Fatalf("work error not reachable through errors.As: %v", err)
			}
			if !strings.HasSuffix(err.Error(), ": closed conn") {
				t.Fatalf("message %q does not end with the work's error", err.Error())
			}
		}},
		{"returns 500 status", func(ctx context.Context) error { return &sluice.StatusError{Code: 500} }, func(t *testing.T, err error) {
			var se *sluice.StatusError
			if !errors.As(err, &se) || se.Code != 500 {
				t.Fatalf("status error not reachable: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hooked *timeout.Error
				to, err := timeout.New(timeout.Config{Name: "agents", Timeout: time.Second,
					OnTimeout: func(e *timeout.Error) { hooked = e }})
				if err != nil {
					t.Fatal(err)
				}
				p := sluice.NewPipeline(to)
				ctx := context.Background()
				start := time.Now()
				err = p.Do(ctx, waitDone(tc.ret))
				if got := time.Since(start); got != time.Second {
					t.Errorf("returned after %v, want exactly 1s", got)
				}
				if !errors.Is(err, timeout.ErrExceeded) {
					t.Fatalf("errors.Is(err, ErrExceeded) = false for %v", err)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for %v", err)
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("not a net.Error-style timeout: %v", err)
				}
				if f := sluice.Classify(ctx, err); f.Type != sluice.FailureTimeout || !f.Retryable {
					t.Errorf("Classify = %+v, want retryable FailureTimeout", f)
				}
				if !strings.HasPrefix(err.Error(), "timeout: agents exceeded 1s") {
					t.Errorf("message %q", err.Error())
				}
				if hooked == nil || error(hooked) != err {
					t.Errorf("OnTimeout got %v, want the returned error %v", hooked, err)
				}
				if tc.reach != nil {
					tc.reach(t, err)
				}
				if s := to.Stats(); s != (timeout.Stats{Calls: 1, Timeouts: 1}) {
					t.Errorf("Stats = %+v", s)
				}
			})
		})
	}
}

func TestCalleeSeesCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := sluice.NewPipeline(timeout.After(50 * time.Millisecond))
		var cause error
		_ = p.Do(context.Background(), func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("work's context has no deadline")
			}
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		})
		if !errors.Is(cause, timeout.ErrExceeded) {
			t.Fatalf("context.Cause = %v, want ErrExceeded", cause)
		}
		var te *timeout.Error
		if !errors.As(cause, &te) || te.Limit != 50*time.Millisecond {
			t.Fatalf("cause = %#v, want *Error with Limit 50ms", cause)
		}
	})
}

func TestFinishesInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := timeout.After(time.Second)
		p := sluice.NewPipeline(to)
		v, err := sluice.Get(context.Background(), p, func(ctx context.Context) (int, error) {
			time.Sleep(999 * time.Millisecond)
			return 42, ctx.Err()
		})
		if err != nil || v != 42 {
			t.Fatalf("Get = %v, %v; want 42, nil", v, err)
		}
		own := &errWork{"refused"}
		err = p.Do(context.Background(), func(context.Context) error { return own })
		if err != error(own) {
			t.Fatalf("work's own early failure: got %v, want it unchanged", err)
		}
		if s := to.Stats(); s != (timeout.Stats{Calls: 2, Timeouts: 0}) {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestLateSuccessStands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := timeout.After(time.Second)
		err := sluice.NewPipeline(to).Do(context.Background(), func(ctx context.Context) error {
			time.Sleep(2 * time.Second) // ignores ctx
			return nil
		})
		if err != nil {
			t.Fatalf("late success turned into %v", err)
		}
		if s := to.Stats(); s.Timeouts != 0 {
			t.Errorf("Timeouts = %d, want 0", s.Timeouts)
		}
	})
}

func TestCallerEndsFirst(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			to := timeout.After(time.Second)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			err := sluice.NewPipeline(to).Do(ctx, waitDone(func(ctx context.Context) error { return ctx.Err() }))
			if err != context.Canceled {
				t.Fatalf("got %v, want the caller's context.Canceled", err)
			}
			if f := sluice.Classify(ctx, err); f.Type != sluice.FailureCanceled {
				t.Errorf("Classify = %+v, want FailureCanceled", f)
			}
			if s := to.Stats(); s.Timeouts != 0 {
				t.Errorf("Timeouts = %d, want 0", s.Timeouts)
			}
		})
	})
	t.Run("earlier caller deadline skips the derived context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			to := timeout.After(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := sluice.NewPipeline(to).Do(ctx, func(got context.Context) error {
				if got != ctx {
					t.Error("work did not run under the caller's own context")
				}
				<-got.Done()
				return got.Err()
			})
			if err != context.DeadlineExceeded || errors.Is(err, timeout.ErrExceeded) {
				t.Fatalf("got %v, want the caller's context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d != 400*time.Millisecond {
				t.Errorf("returned after %v, want 400ms", d)
			}
		})
	})
	t.Run("later caller deadline: ours fires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := sluice.NewPipeline(timeout.After(time.Second)).Do(ctx, waitDone(context.Cause))
			if !errors.Is(err, timeout.ErrExceeded) || time.Since(start) != time.Second {
				t.Fatalf("got %v after %v, want ErrExceeded after 1s", err, time.Since(start))
			}
		})
	})
}

// attempts is a minimal retry for placement tests: it calls next n times
// until one succeeds, recording when each attempt ended.
func attempts(n int, ends *[]time.Duration, start *time.Time) sluice.Policy {
	return sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		var err error
		for range n {
			if err = next.Run(ctx); err == nil || ctx.Err() != nil {
				*ends = append(*ends, time.Since(*start))
				return err
			}
			*ends = append(*ends, time.Since(*start))
		}
		return err
	})
}

func TestPlacement(t *testing.T) {
	t.Run("per attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var ends []time.Duration
			start := time.Now()
			p := sluice.NewPipeline(attempts(3, &ends, &start), timeout.After(time.Second))
			err := p.Do(context.Background(), waitDone(context.Cause))
			if !errors.Is(err, timeout.ErrExceeded) {
				t.Fatalf("got %v", err)
			}
			want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
			if !equal(ends, want) {
				t.Fatalf("attempts ended at %v, want %v (a fresh 1s each)", ends, want)
			}
		})
	})
	t.Run("overall", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var ends []time.Duration
			start := time.Now()
			p := sluice.NewPipeline(timeout.After(2500*time.Millisecond), attempts(5, &ends, &start))
			err := p.Do(context.Background(), func(ctx context.Context) error {
				select {
				case <-time.After(time.Second):
					return errors.New("upstream 503")
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			})
			if !errors.Is(err, timeout.ErrExceeded) {
				t.Fatalf("got %v", err)
			}
			want := []time.Duration{time.Second, 2 * time.Second, 2500 * time.Millisecond}
			if !equal(ends, want) {
				t.Fatalf("attempts ended at %v, want %v (one 2.5s budget)", ends, want)
			}
		})
	})
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNoLimit(t *testing.T) {
	for _, to := range []*timeout.Timeout{timeout.After(0), timeout.After(-time.Second), mustNew(t, timeout.Config{})} {
		if to.Limit() != 0 {
			t.Fatalf("Limit = %v, want 0", to.Limit())
		}
		ctx := context.Background()
		err := sluice.NewPipeline(to).Do(ctx, func(got context.Context) error {
			if got != ctx {
				t.Error("no-limit Timeout changed the context")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func mustNew(t *testing.T, cfg timeout.Config) *timeout.Timeout {
	t.Helper()
	to, err := timeout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return to
}

func TestMustNew(t *testing.T) {
	if to := timeout.MustNew(timeout.Config{Name: "db", Timeout: time.Second}); to.Name() != "db" || to.Limit() != time.Second {
		t.Errorf("MustNew = %q %v", to.Name(), to.Limit())
	}
	defer func() {
		if recover() == nil {
			t.Error("MustNew with a negative Timeout did not panic")
		}
	}()
	timeout.MustNew(timeout.Config{Timeout: -time.Second})
}

func TestValidation(t *testing.T) {
	_, err := timeout.New(timeout.Config{Timeout: -time.Millisecond})
	if err == nil || err.Error() != "timeout: Config.Timeout must be >= 0, got -1ms" {
		t.Fatalf("got %v", err)
	}
}

func TestPanicPropagates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := timeout.After(time.Second)
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		_ = sluice.NewPipeline(to).Do(context.Background(), func(context.Context) error { panic("boom") })
	})
}

func TestSkipPathAllocatesNothing(t *testing.T) {
	to := timeout.After(time.Hour)
	p := sluice.NewPipeline(to)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fn := func(context.Context) error { return nil }
	if a := testing.AllocsPerRun(100, func() { _ = p.Do(ctx, fn) }); a != 0 {
		t.Fatalf("allocs = %v, want 0 when the caller's deadline is earlier", a)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &timeout.Error{Limit: 2 * time.Second}
	if got := e.Error(); got != "timeout: exceeded 2s" {
		t.Errorf("unnamed: %q", got)
	}
	e = &timeout.Error{Name: "db", Limit: time.Second, Err: context.DeadlineExceeded}
	if got := e.Error(); got != "timeout: db exceeded 1s: context deadline exceeded" {
		t.Errorf("named: %q", got)
	}
	// A timeout is a timeout by its own marker, not by pretending to be an
	// HTTP 504: it carries no status, and HTTP layers choose the 504.
	if !errors.Is(e, sluice.ErrTimeLimit) {
		t.Error("errors.Is(e, sluice.ErrTimeLimit) = false")
	}
	var sc sluice.StatusCoder
	if errors.As(error(e), &sc) {
		t.Errorf("timeout.Error carries status %d", sc.StatusCode())
	}
}
