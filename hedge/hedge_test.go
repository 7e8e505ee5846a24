package hedge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/hedge"
	"github.com/sluice-go/sluice/sluicetest"
)

// wait blocks for d or until ctx ends, returning nil or ctx's error as a
// well-behaved callee does.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attemptLog records, per attempt index, when it started (since the
// test's start), how it ended and its context's cause.
type attemptLog struct {
	start  time.Time
	mu     sync.Mutex
	starts map[int]time.Duration
	causes map[int]error
}

func newLog() *attemptLog {
	return &attemptLog{start: time.Now(), starts: map[int]time.Duration{}, causes: map[int]error{}}
}

func (l *attemptLog) begin(ctx context.Context) int {
	i := hedge.Attempt(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts[i] = time.Since(l.start)
	return i
}

func (l *attemptLog) end(i int, ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.causes[i] = context.Cause(ctx)
}

func (l *attemptLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.starts)
}

// latencies returns a work function in which attempt i takes lat[i] and
// then returns res[i] (nil if res is short); it logs into l.
func latencies(l *attemptLog, lat []time.Duration, res []error) func(context.Context) error {
	return func(ctx context.Context) error {
		i := l.begin(ctx)
		defer l.end(i, ctx)
		if err := wait(ctx, lat[i]); err != nil {
			return err
		}
		if i < len(res) {
			return res[i]
		}
		return nil
	}
}

func mustNew(t *testing.T, cfg hedge.Config) *hedge.Hedge {
	t.Helper()
	h, err := hedge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const ms = time.Millisecond

func TestNoHedgeBeforeDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		err := sluice.NewPipeline(h).Do(context.Background(), latencies(l, []time.Duration{100*ms - 1}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(l.start); got != 100*ms-1 {
			t.Errorf("returned after %v, want the first attempt's 99.999999ms", got)
		}
		if l.count() != 1 {
			t.Errorf("%d attempts, want 1", l.count())
		}
		if st := h.Stats(); st != (hedge.Stats{Calls: 1}) {
			t.Errorf("Stats = %+v, want one call and no hedge", st)
		}
		if l.causes[0] != nil {
			t.Errorf("the first attempt's context was cancelled while it ran: %v", l.causes[0])
		}
	})
}

func TestHedgeAtDelayAndFirstGoodAnswerWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []hedge.Event
		h := mustNew(t, hedge.Config{Name: "agents", Delay: 100 * ms, OnHedge: func(e hedge.Event) { events = append(events, e) }})
		l := newLog()
		err := sluice.NewPipeline(h).Do(context.Background(), latencies(l, []time.Duration{time.Hour, 10 * ms}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if l.starts[1] != 100*ms {
			t.Errorf("hedge started at %v, want exactly the delay, 100ms", l.starts[1])
		}
		if got := time.Since(l.start); got != 110*ms {
			t.Errorf("returned after %v, want 110ms: the hedge's answer", got)
		}
		if !errors.Is(l.causes[0], hedge.ErrSuperseded) {
			t.Errorf("the first attempt ended with cause %v, want ErrSuperseded", l.causes[0])
		}
		if st := h.Stats(); st != (hedge.Stats{Calls: 1, Hedges: 1, Won: 1}) {
			t.Errorf("Stats = %+v", st)
		}
		want := []hedge.Event{{Name: "agents", Attempt: 1, Delay: 100 * ms}}
		if fmt.Sprint(events) != fmt.Sprint(want) {
			t.Errorf("OnHedge saw %v, want %v", events, want)
		}
	})
}

// When the first attempt answers after the hedge started but before it,
// the first attempt's answer is taken and the hedge is cancelled.
func TestFirstAttemptStillWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		got, err := sluice.Get(context.Background(), sluice.NewPipeline(h), func(ctx context.Context) (string, error) {
			err := latencies(l, []time.Duration{120 * ms, time.Hour}, nil)(ctx)
			return fmt.Sprintf("attempt %d", hedge.Attempt(ctx)), err
		})
		if err != nil || got != "attempt 0" {
			t.Fatalf("Get = %q, %v; want the first attempt's answer", got, err)
		}
		if time.Since(l.start) != 120*ms {
			t.Errorf("returned after %v, want 120ms", time.Since(l.start))
		}
		if !errors.Is(l.causes[1], hedge.ErrSuperseded) {
			t.Errorf("the hedge ended with cause %v, want ErrSuperseded", l.causes[1])
		}
		if st := h.Stats(); st != (hedge.Stats{Calls: 1, Hedges: 1}) {
			t.Errorf("Stats = %+v, want a hedge that did not win", st)
		}
	})
}

// Under Get, the losing attempt's value never reaches the caller, though it
// was produced: each attempt keeps its own result slot. Run with -race,
// this also checks the attempts do not write one slot at once.
func TestGetTakesWinnersValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		got, err := sluice.Get(context.Background(), sluice.NewPipeline(h), func(ctx context.Context) ([]int, error) {
			i := hedge.Attempt(ctx)
			if i == 0 {
				_ = wait(ctx, time.Hour)
				return []int{0, 0, 0}, nil // ignores its cancellation: a loser's value
			}
			return []int{i}, nil
		})
		if err != nil || len(got) != 1 || got[0] != 1 {
			t.Fatalf("Get = %v, %v; want the hedge's [1]", got, err)
		}
	})
}

func TestRetryableFailureLeavesCallToOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		unavailable := &sluice.StatusError{Code: 503}
		err := sluice.NewPipeline(h).Do(context.Background(),
			latencies(l, []time.Duration{150 * ms, 80 * ms}, []error{unavailable}))
		if err != nil {
			t.Fatalf("err = %v, want the hedge's success after the first attempt's 503", err)
		}
		if got := time.Since(l.start); got != 180*ms {
			t.Errorf("returned after %v, want 180ms", got)
		}
	})
}

// A failure before the delay ends the call: no hedge starts early.
func TestFailureBeforeDelayEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		unavailable := &sluice.StatusError{Code: 503}
		err := sluice.NewPipeline(h).Do(context.Background(), latencies(l, []time.Duration{30 * ms}, []error{unavailable}))
		if err != unavailable {
			t.Fatalf("err = %v, want the first attempt's 503 as it is", err)
		}
		if time.Since(l.start) != 30*ms || l.count() != 1 {
			t.Errorf("returned after %v with %d attempts, want 30ms and 1", time.Since(l.start), l.count())
		}
	})
}

func TestFinalFailureEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		notFound := &sluice.StatusError{Code: 404}
		err := sluice.NewPipeline(h).Do(context.Background(),
			latencies(l, []time.Duration{time.Hour, 10 * ms}, []error{nil, notFound}))
		if err != notFound {
			t.Fatalf("err = %v, want the hedge's 404", err)
		}
		if time.Since(l.start) != 110*ms || !errors.Is(l.causes[0], hedge.ErrSuperseded) {
			t.Errorf("returned after %v, first attempt's cause %v; want 110ms and ErrSuperseded", time.Since(l.start), l.causes[0])
		}
		if st := h.Stats(); st.Won != 0 {
			t.Errorf("Won = %d for a failure", st.Won)
		}
	})
}

// When every attempt fails without a final answer, the call ends with the
// last failure, but a rejection yields to an earlier real failure.
func TestAllFail(t *testing.T) {
	unavailable := &sluice.StatusError{Code: 503}
	timeout := &sluice.StatusError{Code: 504}
	full := fmt.Errorf("bulkhead full: %w", sluice.ErrRejected)
	cases := []struct {
		name string
		res  []error
		want error
	}{
		{"last failure", []error{unavailable, timeout}, timeout},
		{"rejection yields", []error{unavailable, full}, unavailable},
		{"rejection only if alone", []error{full, full}, full},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := mustNew(t, hedge.Config{Delay: 100 * ms})
				l := newLog()
				err := sluice.NewPipeline(h).Do(context.Background(), latencies(l, []time.Duration{150 * ms, 80 * ms}, tc.res))
				if err != tc.want {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if time.Since(l.start) != 180*ms {
					t.Errorf("returned after %v, want 180ms, when the last attempt failed", time.Since(l.start))
				}
			})
		})
	}
}

func TestNonIdempotentNeverHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms, MaxHedges: 3})
		l := newLog()
		ctx := sluice.WithIdempotent(context.Background(), false)
		if err := sluice.NewPipeline(h).Do(ctx, latencies(l, []time.Duration{time.Second}, nil)); err != nil {
			t.Fatal(err)
		}
		if l.count() != 1 || time.Since(l.start) != time.Second {
			t.Errorf("%d attempts, returned after %v; want one attempt of 1s", l.count(), time.Since(l.start))
		}
		if st := h.Stats(); st != (hedge.Stats{Calls: 1, NotIdempotent: 1}) {
			t.Errorf("Stats = %+v", st)
		}

		// Marked idempotent, the same call is hedged.
		l = newLog()
		ctx = sluice.WithIdempotent(context.Background(), true)
		if err := sluice.NewPipeline(h).Do(ctx, latencies(l, []time.Duration{time.Second, 10 * ms}, nil)); err != nil {
			t.Fatal(err)
		}
		if l.count() != 2 {
			t.Errorf("marked idempotent: %d attempts, want 2", l.count())
		}
	})
}

// MaxHedges hedges start, a delay apart, each told its index.
func TestMaxHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 50 * ms, MaxHedges: 3})
		l := newLog()
		err := sluice.NewPipeline(h).Do(context.Background(),
			latencies(l, []time.Duration{time.Hour, time.Hour, time.Hour, 40 * ms}, nil))
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]time.Duration{0: 0, 1: 50 * ms, 2: 100 * ms, 3: 150 * ms}
		if fmt.Sprint(l.starts) != fmt.Sprint(want) {
			t.Errorf("attempts started at %v, want %v", l.starts, want)
		}
		if time.Since(l.start) != 190*ms {
			t.Errorf("returned after %v, want 190ms", time.Since(l.start))
		}
		for i := range 3 {
			if !errors.Is(l.causes[i], hedge.ErrSuperseded) {
				t.Errorf("attempt %d cause %v, want ErrSuperseded", i, l.causes[i])
			}
		}
		if st := h.Stats(); st.Hedges != 3 || st.Won != 1 {
			t.Errorf("Stats = %+v, want 3 hedges, 1 won", st)
		}
	})
}

// When the caller gives up, every attempt is cancelled, no hedge starts
// afterwards, and Execute returns the caller's error.
func TestCallerCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms, MaxHedges: 3})
		l := newLog()
		ctx, cancel := context.WithTimeout(context.Background(), 150*ms)
		defer cancel()
		err := sluice.NewPipeline(h).Do(ctx, latencies(l, []time.Duration{time.Hour, time.Hour, time.Hour}, nil))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the caller's deadline", err)
		}
		if time.Since(l.start) != 150*ms || l.count() != 2 {
			t.Errorf("returned after %v with %d attempts, want 150ms and 2", time.Since(l.start), l.count())
		}
		time.Sleep(time.Second) // virtual: had a timer been left armed, it would fire now
		synctest.Wait()
		if l.count() != 2 {
			t.Errorf("%d attempts after the call ended", l.count())
		}
	})
}

// A context already done gets no attempt.
func TestDoneContextRunsNothing(t *testing.T) {
	h := mustNew(t, hedge.Config{Delay: 100 * ms})
	ctx, cancel := context.WithCancelCause(context.Background())
	gone := errors.New("caller gone")
	cancel(gone)
	// A zero Next panics if run: Execute must not get that far.
	err := h.Execute(ctx, sluice.Next{})
	if err != gone {
		t.Fatalf("err = %v, want the context's cause", err)
	}
	if h.Stats().Calls != 0 {
		t.Errorf("Calls = %d, want 0", h.Stats().Calls)
	}
}

func TestPanicInHedgeRaisedOnCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		var got any
		func() {
			defer func() { got = recover() }()
			_ = sluice.NewPipeline(h).Do(context.Background(), func(ctx context.Context) error {
				i := l.begin(ctx)
				defer l.end(i, ctx)
				if i == 1 {
					panic("boom")
				}
				return wait(ctx, time.Hour)
			})
		}()
		if got != "boom" {
			t.Fatalf("recovered %v, want the hedge's panic", got)
		}
		if !errors.Is(l.causes[0], hedge.ErrSuperseded) || time.Since(l.start) != 100*ms {
			t.Errorf("first attempt's cause %v after %v; want ErrSuperseded at 100ms", l.causes[0], time.Since(l.start))
		}
	})
}

func TestPanicInFirstAttemptWaitsForHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms})
		l := newLog()
		var got any
		func() {
			defer func() { got = recover() }()
			_ = sluice.NewPipeline(h).Do(context.Background(), func(ctx context.Context) error {
				i := l.begin(ctx)
				defer l.end(i, ctx)
				if i == 0 {
					_ = wait(ctx, 150*ms)
					panic("first")
				}
				return wait(ctx, time.Hour)
			})
		}()
		if got != "first" {
			t.Fatalf("recovered %v", got)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if !errors.Is(l.causes[1], hedge.ErrSuperseded) {
			t.Errorf("the hedge had not returned, or not by cancellation, when the panic went on: cause %v", l.causes[1])
		}
	})
}

// Attempt reports 0 for a nested hedge's first attempt even under an outer
// hedge's attempt 1.
func TestAttemptNested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		outer := mustNew(t, hedge.Config{Delay: 100 * ms})
		inner := mustNew(t, hedge.Config{Delay: 10 * ms})
		seen := map[[2]int]bool{}
		var mu sync.Mutex
		p := sluice.NewPipeline(outer, sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
			o := hedge.Attempt(ctx)
			return next.Run(context.WithValue(ctx, outerKey{}, o))
		}), inner)
		_ = p.Do(context.Background(), func(ctx context.Context) error {
			mu.Lock()
			seen[[2]int{ctx.Value(outerKey{}).(int), hedge.Attempt(ctx)}] = true
			mu.Unlock()
			if ctx.Value(outerKey{}).(int) == 1 && hedge.Attempt(ctx) == 0 {
				return nil
			}
			return wait(ctx, time.Hour)
		})
		for _, k := range [][2]int{{0, 0}, {0, 1}, {1, 0}} {
			if !seen[k] {
				t.Errorf("no attempt saw (outer %d, inner %d); saw %v", k[0], k[1], seen)
			}
		}
	})
}

type outerKey struct{}

// With a Clock of its own the Hedge waits on that clock's timers.
func TestFakeClock(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	h := mustNew(t, hedge.Config{Delay: time.Second, Clock: clock})
	started := make(chan int, 2)
	done := make(chan error, 1)
	go func() {
		done <- sluice.NewPipeline(h).Do(context.Background(), func(ctx context.Context) error {
			i := hedge.Attempt(ctx)
			started <- i
			if i == 1 {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	if i := <-started; i != 0 {
		t.Fatalf("first attempt index %d", i)
	}
	clock.BlockUntil(1) // the hedge's timer
	if dl, ok := clock.NextDeadline(); !ok || !dl.Equal(clock.Now().Add(time.Second)) {
		t.Fatalf("the hedge's timer is due at %v (%v), want the delay from now", dl, ok)
	}
	clock.Advance(time.Second)
	if i := <-started; i != 1 {
		t.Fatalf("second attempt index %d", i)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Hedges != 1 || st.Won != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// A panicking OnHedge is a panic of the hedge: raised on the caller's
// goroutine, not crashing the process from the hedge's.
func TestPanicInOnHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := mustNew(t, hedge.Config{Delay: 100 * ms, OnHedge: func(hedge.Event) { panic("listener") }})
		var got any
		func() {
			defer func() { got = recover() }()
			_ = sluice.NewPipeline(h).Do(context.Background(), func(ctx context.Context) error { return wait(ctx, time.Hour) })
		}()
		if got != "listener" {
			t.Fatalf("recovered %v, want the listener's panic", got)
		}
	})
}
