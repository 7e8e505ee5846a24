package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

var errFlaky = errors.New("flaky")

// flaky returns a function that fails with err the first n times.
func flaky(n int, err error) (func(context.Context) error, *atomic.Int32) {
	var calls atomic.Int32
	return func(context.Context) error {
		if int(calls.Add(1)) <= n {
			return err
		}
		return nil
	}, &calls
}

func mustNew(t *testing.T, cfg Config) *Retry {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRetriesUntilSuccessWaitingEachDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []Event
		r := mustNew(t, Config{
			Name: "op", MaxAttempts: 5, Backoff: Exponential(time.Second, 2, time.Minute), Jitter: NoJitter,
			OnRetry: func(e Event) { events = append(events, e) },
		})
		fn, calls := flaky(3, errFlaky)
		start := time.Now()
		if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil {
			t.Fatalf("Do = %v, want nil", err)
		}
		if got := time.Since(start); got != 7*time.Second {
			t.Errorf("waited %v, want 1s+2s+4s = 7s", got)
		}
		if calls.Load() != 4 {
			t.Errorf("%d attempts, want 4", calls.Load())
		}
		want := []Event{
			{"op", 1, errFlaky, time.Second}, {"op", 2, errFlaky, 2 * time.Second}, {"op", 3, errFlaky, 4 * time.Second},
		}
		if fmt.Sprint(events) != fmt.Sprint(want) {
			t.Errorf("OnRetry events %v, want %v", events, want)
		}
		st := r.Stats()
		if st.Calls != 1 || st.Successes != 1 || st.Attempts != 4 || st.Retries != 3 || st.SuccessRate != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestNonRetryableReturnedAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{})
		denied := &sluice.StatusError{Code: 401}
		fn, calls := flaky(10, error(denied))
		err := sluice.NewPipeline(r).Do(context.Background(), fn)
		if err != denied {
			t.Fatalf("Do = %#v, want the 401 error itself", err)
		}
		if calls.Load() != 1 {
			t.Errorf("%d attempts, want 1", calls.Load())
		}
	})
}

type tempErr struct{ n int }

func (e *tempErr) Error() string { return fmt.Sprintf("temporary %d", e.n) }

func TestExhaustedErrorChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(time.Second)})
		var n int
		err := sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error {
			n++
			return &tempErr{n}
		})
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("Do = %v, want ErrExhausted", err)
		}
		var ex *ExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 || ex.OutOfTime {
			t.Fatalf("ExhaustedError %+v, want 3 attempts, not out of time", ex)
		}
		var last *tempErr
		if !errors.As(err, &last) || last.n != 3 {
			t.Errorf("errors.As reaches %v, want the third attempt's error", last)
		}
		if errors.Is(err, sluice.ErrRejected) || errors.Is(err, ErrBudgetExhausted) {
			t.Error("an exhausted call reads as a rejection")
		}
		if got, want := err.Error(), "retry: gave up after 3 attempts: temporary 3"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		if st := r.Stats(); st.Exhausted != 1 || st.Failures != 1 || st.SuccessRate != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestMaxAttemptsOneMakesOneAttempt(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 1})
	fn, calls := flaky(5, errFlaky)
	err := sluice.NewPipeline(r).Do(context.Background(), fn)
	var ex *ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 1 || calls.Load() != 1 {
		t.Fatalf("Do = %v after %d attempts, want ExhaustedError after 1", err, calls.Load())
	}
}

func TestCancelDuringWaitReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, Backoff: Constant(time.Hour)})
		ctx, cancel := context.WithCancelCause(context.Background())
		stop := errors.New("shutting down")
		time.AfterFunc(3*time.Second, func() { cancel(stop) })
		start := time.Now()
		err := sluice.NewPipeline(r).Do(ctx, func(context.Context) error { return errFlaky })
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("returned after %v, want 3s (at the cancellation)", got)
		}
		if !errors.Is(err, stop) || !errors.Is(err, errFlaky) {
			t.Errorf("Do = %v, want it to match the cause and the last attempt's error", err)
		}
		if errors.Is(err, ErrExhausted) {
			t.Error("a cancelled call reads as exhausted")
		}
		if st := r.Stats(); st.Failures != 1 || st.Attempts != 1 {
			t.Errorf("stats %+v, want 1 failed call of 1 attempt", st)
		}
	})
}

func TestCallerCancellationNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 5, RetryOn: func(error) bool { return true }})
		ctx, cancel := context.WithCancel(context.Background())
		var calls int
		err := sluice.NewPipeline(r).Do(ctx, func(ctx context.Context) error {
			calls++
			cancel()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("Do = %v after %d attempts, want context.Canceled after 1", err, calls)
		}
	})
}

func TestRetryAfterHonouredAndCapped(t *testing.T) {
	tests := []struct {
		name   string
		hint   time.Duration
		lo, hi time.Duration
	}{
		{"within the cap", 5 * time.Second, 5 * time.Second, 5500 * time.Millisecond},
		{"over the cap", time.Hour, 30 * time.Second, 33 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := mustNew(t, Config{Backoff: Exponential(10*time.Millisecond, 2, 30*time.Second)})
				fn, _ := flaky(1, error(&sluice.StatusError{Code: 503, RetryAfterHint: tt.hint}))
				start := time.Now()
				if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got < tt.lo || got > tt.hi {
					t.Errorf("waited %v, want within [%v, %v]", got, tt.lo, tt.hi)
				}
			})
		})
	}
}

func TestAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 3, AttemptTimeout: 2 * time.Second, Backoff: Constant(time.Second), Jitter: NoJitter})
		var causes []error
		start := time.Now()
		err := sluice.NewPipeline(r).Do(context.Background(), func(ctx context.Context) error {
			if len(causes) == 2 {
				return nil
			}
			<-ctx.Done()
			causes = append(causes, context.Cause(ctx))
			return ctx.Err()
		})
		if err != nil {
			t.Fatalf("Do = %v, want success on the third attempt", err)
		}
		if got := time.Since(start); got != 6*time.Second {
			t.Errorf("took %v, want 2s+1s+2s+1s = 6s", got)
		}
		for i, c := range causes {
			if c != ErrAttemptTimeout {
				t.Errorf("attempt %d: context.Cause = %v, want ErrAttemptTimeout", i+1, c)
			}
		}
	})
}

func TestAttemptTimeoutExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 2, AttemptTimeout: time.Second, Backoff: Constant(0)})
		err := sluice.NewPipeline(r).Do(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("aborted")
		})
		if !errors.Is(err, ErrExhausted) || !errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want ErrExhausted wrapping ErrAttemptTimeout", err)
		}
	})
}

func TestBudgetRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := NewBudget(BudgetConfig{Ratio: 0.1, MinRetriesPerSecond: -1})
		if err != nil {
			t.Fatal(err)
		}
		r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(0), Budget: b})
		p := sluice.NewPipeline(r)
		ctx := context.Background()
		for range 19 {
			if err := p.Do(ctx, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		// 20 first attempts allow 2 retries: the failing call gets both and
		// exhausts; the next one is refused at its first retry.
		always := func(context.Context) error { return errFlaky }
		if err := p.Do(ctx, always); !errors.Is(err, ErrExhausted) {
			t.Fatalf("first failing call: %v, want ErrExhausted after 2 retries", err)
		}
		err = p.Do(ctx, always)
		if !errors.Is(err, ErrBudgetExhausted) || !errors.Is(err, sluice.ErrRejected) || !errors.Is(err, errFlaky) {
			t.Fatalf("second failing call: %v, want ErrBudgetExhausted, ErrRejected and the last error", err)
		}
		var be *BudgetError
		if !errors.As(err, &be) || be.Attempts != 1 {
			t.Errorf("BudgetError %+v, want 1 attempt", be)
		}
		if wait, ok := sluice.RetryAfter(err); !ok || wait <= 0 || wait > time.Second {
			t.Errorf("RetryAfter = %v, %v; want within (0, 1s], the next bucket", wait, ok)
		}
		if st := r.Stats(); st.BudgetRefused != 1 || st.Calls != 21 || st.Attempts != 23 {
			t.Errorf("stats %+v, want 1 refusal, 21 calls, 23 attempts", st)
		}
		if req, ret := b.CountsAt(time.Now()); req != 21 || ret != 2 {
			t.Errorf("budget window: %d first attempts, %d retries; want 21, 2", req, ret)
		}
	})
}

func TestNoBudgetAllowsEveryRetry(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 4, Backoff: Constant(0), Budget: NoBudget{}})
	for range 50 {
		fn, calls := flaky(3, errFlaky)
		if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil || calls.Load() != 4 {
			t.Fatalf("Do = %v after %d attempts, want success after 4", err, calls.Load())
		}
	}
}

func TestIdempotency(t *testing.T) {
	for _, tt := range []struct {
		name     string
		mark     *bool
		allow    bool
		attempts int32
	}{
		{"unmarked", nil, false, 3},
		{"marked idempotent", new(true), false, 3},
		{"marked non-idempotent", new(false), false, 1},
		{"non-idempotent allowed", new(false), true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, Config{Backoff: Constant(0), RetryNonIdempotent: tt.allow, Budget: NoBudget{}})
			ctx := context.Background()
			if tt.mark != nil {
				ctx = sluice.WithIdempotent(ctx, *tt.mark)
			}
			fn, calls := flaky(5, errFlaky)
			err := sluice.NewPipeline(r).Do(ctx, fn)
			if calls.Load() != tt.attempts {
				t.Errorf("%d attempts, want %d", calls.Load(), tt.attempts)
			}
			if tt.attempts == 1 && err != errFlaky {
				t.Errorf("Do = %v, want the error as is", err)
			}
		})
	}
}

func TestRetryOnOverridesClassifier(t *testing.T) {
	r := mustNew(t, Config{Backoff: Constant(0), RetryOn: func(err error) bool { return errors.Is(err, errFlaky) }})
	denied := &sluice.StatusError{Code: 401}
	fn, calls := flaky(1, error(fmt.Errorf("%w: %w", errFlaky, denied)))
	if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil || calls.Load() != 2 {
		t.Errorf("Do = %v after %d attempts, want success after 2", err, calls.Load())
	}
	fn, calls = flaky(1, errors.New("other"))
	if err := sluice.NewPipeline(r).Do(context.Background(), fn); err == nil || calls.Load() != 1 {
		t.Errorf("Do = %v after %d attempts, want the error after 1", err, calls.Load())
	}
}

func TestRetryOnResult(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(0), RetryOnResult: ResultMatches(func(s string) bool { return s == "pending" })})
	p := sluice.NewPipeline(r)
	ctx := context.Background()

	answers := []string{"pending", "pending", "done"}
	var i int
	got, err := sluice.Get(ctx, p, func(context.Context) (string, error) { i++; return answers[i-1], nil })
	if got != "done" || err != nil || i != 3 {
		t.Errorf("Get = %q, %v after %d attempts; want done after 3", got, err, i)
	}

	i = 0
	got, err = sluice.Get(ctx, p, func(context.Context) (string, error) { i++; return "pending", nil })
	if got != "pending" || !errors.Is(err, ErrExhausted) || !errors.Is(err, ErrUnwantedResult) || i != 3 {
		t.Errorf("Get = %q, %v after %d attempts; want the last value, ErrExhausted wrapping ErrUnwantedResult, after 3", got, err, i)
	}

	// Do has no result: the predicate is never asked.
	if err := p.Do(ctx, func(context.Context) error { return nil }); err != nil {
		t.Errorf("Do = %v", err)
	}
	if st := r.Stats(); st.Calls != 3 || st.Successes != 2 || st.Attempts != 7 {
		t.Errorf("stats %+v, want 3 calls, 2 successes, 7 attempts", st)
	}
}

func TestMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew(t, Config{MaxAttempts: 10, MaxElapsed: 25 * time.Second, Backoff: Constant(10 * time.Second), Jitter: NoJitter})
		var calls int
		start := time.Now()
		err := sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error { calls++; return errFlaky })
		var ex *ExhaustedError
		if !errors.As(err, &ex) || !ex.OutOfTime || ex.Attempts != 3 {
			t.Fatalf("Do = %v (%+v), want out of time after 3 attempts", err, ex)
		}
		if got := time.Since(start); got != 20*time.Second {
			t.Errorf("gave up after %v, want 20s (a third wait would end at 30s > 25s)", got)
		}
	})
}

func TestPanicCountedAndReraised(t *testing.T) {
	r := mustNew(t, Config{})
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the original panic", p)
			}
		}()
		_ = sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	if st := r.Stats(); st.Calls != 1 || st.Failures != 1 {
		t.Errorf("stats %+v, want the panicking call counted as failed", st)
	}
}

func TestAdaptiveScalesDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		r := mustNew(t, Config{
			// ×1 growth: a constant 1 s with room to scale up to the 10 s cap.
			MaxAttempts: 2, Backoff: Exponential(time.Second, 1, 10*time.Second), Jitter: NoJitter, Adaptive: true, Budget: NoBudget{},
			OnRetry: func(e Event) { delays = append(delays, e.Delay) },
		})
		p := sluice.NewPipeline(r)
		ctx := context.Background()
		ok := func(context.Context) error { return nil }
		fail := func(context.Context) error { return errFlaky }

		// No history: 0.8 assumed, factor 1.
		_ = p.Do(ctx, fail) // history: 0 of 1
		// 1 failure: rate 0 → 2×.
		_ = p.Do(ctx, fail) // history: 0 of 2
		for range 98 {
			_ = p.Do(ctx, ok)
		}
		// 98 of 100 → 0.7×.
		_ = p.Do(ctx, fail)
		want := []time.Duration{time.Second, 2 * time.Second, 700 * time.Millisecond}
		if fmt.Sprint(delays) != fmt.Sprint(want) {
			t.Errorf("delays %v, want %v", delays, want)
		}
		if rate, n := r.recentSuccessRate(); n != 100 || math.Abs(rate-0.98) > 1e-9 {
			t.Errorf("SuccessRate = %v over %d, want 0.98 over 100", rate, n)
		}
	})
}

func TestFakeClockDrivesWaits(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(5 * time.Second), Jitter: NoJitter, Clock: clock, SampleEvery: 1})
	fn, calls := flaky(2, errFlaky)
	done := make(chan error)
	go func() { done <- sluice.NewPipeline(r).Do(context.Background(), fn) }()
	for range 2 {
		clock.BlockUntil(1)
		if d, _ := clock.NextDeadline(); d.Sub(clock.Now()) != 5*time.Second {
			t.Errorf("waiting until %v, want now+5s", d)
		}
		clock.Advance(5 * time.Second)
	}
	if err := <-done; err != nil || calls.Load() != 3 {
		t.Fatalf("Do = %v after %d attempts, want success after 3", err, calls.Load())
	}
	if h := r.Stats().Duration; h.Count != 1 || h.Sum != 10 {
		t.Errorf("histogram count %d sum %v, want 1 call of 10s", h.Count, h.Sum)
	}
}

func TestUpdateKeepsStatsAndBudget(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 2, Backoff: Constant(0)})
	b := r.Budget()
	fn, _ := flaky(1, errFlaky)
	_ = sluice.NewPipeline(r).Do(context.Background(), fn)

	if err := r.Update(Config{MaxAttempts: -1}); err == nil {
		t.Fatal("Update accepted a bad config")
	}
	if r.Config().MaxAttempts != 2 {
		t.Fatal("a rejected Update changed the config")
	}
	if err := r.Update(Config{Name: "renamed", MaxAttempts: 5, Backoff: Constant(0)}); err != nil {
		t.Fatal(err)
	}
	if r.Budget() != b {
		t.Error("Update replaced the policy's own budget")
	}
	fn, calls := flaky(4, errFlaky)
	if err := sluice.NewPipeline(r).Do(context.Background(), fn); err != nil || calls.Load() != 5 {
		t.Errorf("after Update: %v after %d attempts, want success after 5", err, calls.Load())
	}
	st := r.Stats()
	if st.Name != "renamed" || st.Calls != 2 || len(st.AttemptsByNumber) != 5 {
		t.Errorf("stats %+v, want both calls kept under the new name, 5 attempt slots", st)
	}
}

func TestUpdateMovesFirstAttemptsToNewBudget(t *testing.T) {
	r := mustNew(t, Config{})
	shared, _ := NewBudget(BudgetConfig{})
	if err := r.Update(Config{Budget: shared}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_ = sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error { return nil })
	}
	if req, _ := shared.CountsAt(time.Now()); req != 10 {
		t.Errorf("shared budget counted %d first attempts, want 10", req)
	}
	own := r.defBudget
	if err := r.Update(Config{}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = sluice.NewPipeline(r).Do(context.Background(), func(context.Context) error { return nil })
	}
	reqShared, _ := shared.CountsAt(time.Now())
	reqOwn, _ := own.CountsAt(time.Now())
	if reqShared != 10 || reqOwn != 5 {
		t.Errorf("after switching back: shared %d, own %d; want 10, 5", reqShared, reqOwn)
	}
}

func TestConcurrentCalls(t *testing.T) {
	r := mustNew(t, Config{MaxAttempts: 3, Backoff: Constant(0), SampleEvery: 1})
	p := sluice.NewPipeline(r)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fail := (g+i)%7 == 0
				err := p.Do(context.Background(), func(context.Context) error {
					if fail {
						return errFlaky
					}
					return nil
				})
				if err != nil {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	st := r.Stats()
	if st.Calls != 4000 || st.Failures != failures.Load() || st.Duration.Count != 4000 {
		t.Errorf("stats %+v, want 4000 calls, %d failures, 4000 timed", st, failures.Load())
	}
}

// cancelInside runs the rest of the pipeline with an already-cancelled
// context, as an outer policy whose caller gave up might.
type cancelInside struct{}

func (cancelInside) Execute(ctx context.Context, next sluice.Next) error {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	return next.Run(cctx)
}

// Retry makes no attempt for a caller that has gone: it returns the
// context's error and the call never runs.
func TestDoneContextMakesNoAttempt(t *testing.T) {
	r := mustNew(t, Config{Backoff: Constant(time.Millisecond)})
	p := sluice.NewPipeline(cancelInside{}, r)
	calls := 0
	err := p.Do(context.Background(), func(context.Context) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("Do = %v after %d calls, want context.Canceled and no call", err, calls)
	}
	if s := r.Stats(); s.Attempts != 0 {
		t.Errorf("Stats.Attempts = %d, want 0", s.Attempts)
	}
}
