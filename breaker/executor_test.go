package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
)

var errBoom = errors.New("boom")

func failCall(context.Context) error { return errBoom }

// TestExecuteTimerWithoutTraffic runs the executor on the system clock inside
// a synctest bubble: the open period ends by the breaker's timer, so the
// listener hears of it with no call arriving.
func TestExecuteTimerWithoutTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var changes []string
		start := time.Now()
		b := MustNew(Config{FailureThreshold: 2, OpenFor: 10 * sec, SuccessThreshold: 1,
			OnStateChange: func(c StateChange) {
				mu.Lock()
				changes = append(changes, fmt.Sprintf("%v->%v@%v", c.From, c.To, c.At.Sub(start)))
				mu.Unlock()
			}})
		p := sluice.NewPipeline(b)
		ctx := context.Background()
		for range 2 {
			if err := p.Do(ctx, failCall); !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want the call's error", err)
			}
		}
		time.Sleep(3 * sec)
		err := p.Do(ctx, okCall)
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("open breaker ran the call: %v", err)
		}
		if d, _ := sluice.RetryAfter(err); d != 7*sec {
			t.Fatalf("RetryAfter = %v, want 7s", d)
		}
		time.Sleep(7 * sec)
		synctest.Wait() // let the timer's callback finish
		mu.Lock()
		got := fmt.Sprint(changes)
		mu.Unlock()
		if got != "[closed->open@0s open->half-open@10s]" {
			t.Fatalf("changes without traffic: %v", got)
		}
		if err := p.Do(ctx, okCall); err != nil {
			t.Fatal(err)
		}
		if s := b.Stats(); s.State != StateClosed || s.Calls != 3 || s.Rejected != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestCloseStopsTimer checks that after Close the open period ends lazily:
// no change is heard until something reads the breaker.
func TestCloseStopsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var heard atomic.Int32
		b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, OnStateChange: func(StateChange) { heard.Add(1) }})
		_ = sluice.NewPipeline(b).Do(context.Background(), failCall)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * sec)
		synctest.Wait()
		if heard.Load() != 1 {
			t.Fatalf("heard %d changes after Close, want only the opening", heard.Load())
		}
		if b.StateAt(time.Now()) != StateHalfOpen || heard.Load() != 2 {
			t.Fatalf("lazy change not applied on read")
		}
	})
}

// TestExecuteHungProbe: a probe that never returns is given up after
// HalfOpenMaxWait, and its late outcome is ignored.
func TestExecuteHungProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, HalfOpenMaxWait: 5 * sec, SuccessThreshold: 1})
		p := sluice.NewPipeline(b)
		ctx := context.Background()
		_ = p.Do(ctx, failCall)
		time.Sleep(sec)
		synctest.Wait() // the timer's callback turns the breaker half-open
		release := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- p.Do(ctx, func(context.Context) error { <-release; return errBoom })
		}()
		synctest.Wait()
		if err := p.Do(ctx, okCall); !errors.Is(err, ErrOpen) {
			t.Fatalf("second probe admitted: %v", err)
		}
		time.Sleep(5 * sec)
		synctest.Wait()
		if s := b.Stats(); s.State != StateOpen || s.ProbesInFlight != 0 {
			t.Fatalf("hung probe not given up: %+v", s)
		}
		time.Sleep(sec)
		close(release)
		if err := <-done; !errors.Is(err, errBoom) {
			t.Fatal(err)
		}
		if s := b.StateAt(time.Now()); s != StateHalfOpen {
			t.Fatalf("late failure of a given-up probe changed the state to %v", s)
		}
		if err := p.Do(ctx, okCall); err != nil || b.StateAt(time.Now()) != StateClosed {
			t.Fatalf("fresh probe: %v, %v", err, b.StateAt(time.Now()))
		}
	})
}

func TestExecuteSlowCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := MustNew(Config{SlowCallDuration: 100 * ms, SlowCallRateThreshold: 0.5, WindowSize: 4, MinimumCalls: 4})
		p := sluice.NewPipeline(b)
		slow := func(ctx context.Context) error { time.Sleep(150 * ms); return nil }
		for _, fn := range []func(context.Context) error{okCall, slow, okCall} {
			if err := p.Do(context.Background(), fn); err != nil {
				t.Fatal(err)
			}
		}
		if s := b.Stats(); s.Slow != 1 || s.State != StateClosed {
			t.Fatalf("stats %+v", s)
		}
		_ = p.Do(context.Background(), slow)
		if s := b.Stats(); s.Slow != 2 || s.State != StateOpen {
			t.Fatalf("2 slow of 4 did not trip: %+v", s)
		}
	})
}

func TestExecuteClassification(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 100, Clock: clock})
	p := sluice.NewPipeline(b)

	// The caller's own cancellation, during the call, counts as neither.
	ctx, cancel := context.WithCancel(context.Background())
	err := p.Do(ctx, func(ctx context.Context) error { cancel(); return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	// A deadline that is not the caller's is a failure (a timeout).
	_ = p.Do(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
	// The shared classifier: 404 counts, a nil error is a success.
	_ = p.Do(context.Background(), func(context.Context) error { return &sluice.StatusError{Code: 503} })
	_ = p.Do(context.Background(), okCall)
	if s := b.Stats(); s.Ignored != 1 || s.Failures != 2 || s.Successes != 1 {
		t.Fatalf("default classification: %+v", s)
	}

	// A predicate overrides the classifier but not the cancellation rule.
	var asked []error
	c := MustNew(Config{Clock: clock, IsFailure: func(_ context.Context, err error) bool {
		asked = append(asked, err)
		return !errors.Is(err, errBoom)
	}})
	q := sluice.NewPipeline(c)
	_ = q.Do(context.Background(), failCall)
	_ = q.Do(context.Background(), func(context.Context) error { return &sluice.StatusError{Code: 503} })
	ctx2, cancel2 := context.WithCancel(context.Background())
	_ = q.Do(ctx2, func(ctx context.Context) error { cancel2(); return ctx.Err() })
	_ = q.Do(context.Background(), okCall)
	if s := c.Stats(); s.Successes != 2 || s.Failures != 1 || s.Ignored != 1 || len(asked) != 2 {
		t.Fatalf("predicate classification: %+v, asked %v", s, asked)
	}
}

func TestExecutePanicCountsAsFailure(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 1, Clock: clock})
	p := sluice.NewPipeline(b)
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Fatalf("recovered %v, want the call's panic", r)
			}
		}()
		_ = p.Do(context.Background(), func(context.Context) error { panic("kaboom") })
	}()
	if s := b.Stats(); s.Failures != 1 || s.State != StateOpen {
		t.Fatalf("panic not counted: %+v", s)
	}
}

func TestExecuteGet(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 1, Clock: clock})
	p := sluice.NewPipeline(b)
	v, err := sluice.Get(context.Background(), p, func(context.Context) (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Fatal(v, err)
	}
	_, _ = sluice.Get(context.Background(), p, func(context.Context) (int, error) { return 0, errBoom })
	if _, err := sluice.Get(context.Background(), p, func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v", err)
	}
}

// TestHalfOpenAdmitsExactly: many goroutines race for the probe slots of a
// half-open breaker; exactly HalfOpenCalls get in, everyone else is
// rejected with ErrOpen.
func TestHalfOpenAdmitsExactly(t *testing.T) {
	const callers, slots = 64, 3
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 1, OpenFor: sec, HalfOpenCalls: slots, SuccessThreshold: slots, Clock: clock})
	p := sluice.NewPipeline(b)
	_ = p.Do(context.Background(), failCall)
	clock.Advance(sec)

	entered := make(chan struct{})
	rejected := make(chan error)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.Do(context.Background(), func(context.Context) error {
				entered <- struct{}{}
				<-release
				return nil
			})
			if err != nil {
				rejected <- err
			}
		}()
	}
	var in, out int
	for in+out < callers {
		select {
		case <-entered:
			in++
		case err := <-rejected:
			if !errors.Is(err, ErrOpen) {
				t.Errorf("rejected with %v", err)
			}
			out++
		}
	}
	close(release)
	wg.Wait()
	if in != slots || out != callers-slots {
		t.Fatalf("%d probes admitted and %d rejected, want %d and %d", in, out, slots, callers-slots)
	}
	if s := b.Stats(); s.State != StateClosed || s.Rejected != callers-slots {
		t.Fatalf("stats %+v", s)
	}
}

// TestConcurrentCounts hammers a breaker from many goroutines with mixed
// outcomes (under -race) and checks that every call is accounted for.
func TestConcurrentCounts(t *testing.T) {
	const goroutines, calls = 8, 2000
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureRateThreshold: 0.5, WindowSize: 20, MinimumCalls: 20, OpenFor: ms,
		HalfOpenCalls: 2, SuccessThreshold: 2, Clock: clock})
	p := sluice.NewPipeline(b)
	var ok, failed, rejected atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range calls {
				fail := r.IntN(100) < 30
				err := p.Do(context.Background(), func(context.Context) error {
					if fail {
						return errBoom
					}
					return nil
				})
				switch {
				case errors.Is(err, ErrOpen):
					rejected.Add(1)
				case err != nil:
					failed.Add(1)
				default:
					ok.Add(1)
				}
				if r.IntN(50) == 0 {
					clock.Advance(ms)
				}
			}
		}()
	}
	wg.Wait()
	s := b.Stats()
	if s.Successes != ok.Load() || s.Failures != failed.Load() || s.Rejected != rejected.Load() ||
		s.Calls+s.Rejected != goroutines*calls {
		t.Fatalf("stats %+v; counted ok=%d failed=%d rejected=%d", s, ok.Load(), failed.Load(), rejected.Load())
	}
	if s.ProbesInFlight != 0 {
		t.Fatalf("probes left in flight: %d", s.ProbesInFlight)
	}
}

// TestHotPathAllocs asserts what the benchmarks measure: a successful call
// through a closed breaker and a rejected call allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	ctx := context.Background()
	closed := sluice.NewPipeline(MustNew(Config{}))
	for range 200 { // fill the window
		_ = closed.Do(ctx, okCall)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = closed.Do(ctx, okCall) }); n != 0 {
		t.Errorf("closed call: %v allocs", n)
	}
	ob := MustNew(Config{FailureThreshold: 1, OpenFor: time.Hour})
	open := sluice.NewPipeline(ob)
	_ = open.Do(ctx, failCall)
	if n := testing.AllocsPerRun(1000, func() { _ = open.Do(ctx, okCall) }); n != 0 {
		t.Errorf("rejected call: %v allocs", n)
	}
	clock := sluicetest.NewFakeClock(t0)
	fb := MustNew(Config{FailureThreshold: 1, Clock: clock})
	_ = sluice.NewPipeline(fb).Do(ctx, failCall)
	if n := testing.AllocsPerRun(1000, func() { _, _ = fb.AllowAt(clock.Now()) }); n != 0 {
		t.Errorf("rejected Allow with a fake clock: %v allocs", n)
	}
	if ob.word.Load()&armedBit == 0 {
		t.Error("open on the system clock without the armed bit")
	}
	ob.Close()
	if ob.word.Load()&armedBit != 0 {
		t.Error("Close left the armed bit")
	}
	if n := testing.AllocsPerRun(1000, func() { _ = open.Do(ctx, okCall) }); n != 0 {
		t.Errorf("rejected call after Close: %v allocs", n)
	}
}

// TestCleanFastPath checks the flag behind the lock-free success path: it is
// set once the count window is full of successes, and cleared by a failure.
func TestCleanFastPath(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{WindowSize: 3, FailureThreshold: 10, Clock: clock})
	call := func(o Outcome) {
		p, _ := b.AllowAt(clock.Now())
		p.DoneAt(clock.Now(), o, 0)
	}
	clean := func() bool { return b.word.Load()&cleanBit != 0 }
	for i := range 3 {
		if clean() {
			t.Fatalf("clean after %d of 3 calls", i)
		}
		call(Success)
	}
	if !clean() {
		t.Fatal("not clean with a full window of successes")
	}
	call(Failure)
	for i := range 3 {
		if clean() {
			t.Fatalf("clean with a failure in the window after %d successes", i)
		}
		call(Success)
	}
	if !clean() {
		t.Fatal("not clean after the failure left the window")
	}
}

func TestExecutePanickingPredicate(t *testing.T) {
	clock := sluicetest.NewFakeClock(t0)
	b := MustNew(Config{FailureThreshold: 1, Clock: clock, IsFailure: func(context.Context, error) bool { panic("predicate") }})
	func() {
		defer func() {
			if r := recover(); r != "predicate" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = sluice.NewPipeline(b).Do(context.Background(), failCall)
	}()
	if s := b.Stats(); s.Failures != 1 || s.State != StateOpen {
		t.Fatalf("stats %+v", s)
	}
}

// TestExecuteArmsTimerAfterExplicitTrip: times passed to Allow and Done may
// be virtual, so they arm no timer; the first Execute, which reads the
// clock, does.
func TestExecuteArmsTimerAfterExplicitTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := MustNew(Config{FailureThreshold: 1, OpenFor: sec})
		p, _ := b.AllowAt(time.Now())
		p.DoneAt(time.Now(), Failure, 0)
		if b.word.Load()&armedBit != 0 {
			t.Fatal("an explicit time armed the timer")
		}
		if err := sluice.NewPipeline(b).Do(context.Background(), okCall); !errors.Is(err, ErrOpen) {
			t.Fatalf("err = %v", err)
		}
		if b.word.Load()&armedBit == 0 {
			t.Fatal("Execute did not arm the timer")
		}
		time.Sleep(sec)
		synctest.Wait()
		if b.word.Load()&stateMask != uint64(ruleHalfOpen) { // the word, not State(), which would apply it lazily
			t.Fatal("the timer did not turn the breaker half-open")
		}
	})
}
