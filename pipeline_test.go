package sluice_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tracer is a policy that logs its entry and exit and counts next.Run calls.
type tracer struct {
	name string
	log  *[]string
	runs int
}

func (tr *tracer) Execute(ctx context.Context, next sluice.Next) error {
	*tr.log = append(*tr.log, tr.name+">")
	tr.runs++
	err := next.Run(ctx)
	*tr.log = append(*tr.log, "<"+tr.name)
	return err
}

// passThrough runs the rest of the pipeline unchanged.
type passThrough struct{}

func (passThrough) Execute(ctx context.Context, next sluice.Next) error { return next.Run(ctx) }

func TestPipelineOrder(t *testing.T) {
	var log []string
	a, b, c := &tracer{name: "a", log: &log}, &tracer{name: "b", log: &log}, &tracer{name: "c", log: &log}
	p := sluice.NewPipeline(a, b, c)
	err := p.Do(context.Background(), func(context.Context) error {
		log = append(log, "call")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(log, " "), "a> b> c> call <c <b <a"; got != want {
		t.Fatalf("order %q, want %q (outermost first)", got, want)
	}
	for _, tr := range []*tracer{a, b, c} {
		if tr.runs != 1 {
			t.Errorf("%s ran next %d times, want 1", tr.name, tr.runs)
		}
	}
	pol := p.Policies()
	if len(pol) != 3 || pol[0] != sluice.Policy(a) || pol[2] != sluice.Policy(c) {
		t.Fatalf("Policies() = %v", pol)
	}
	pol[0] = nil
	if p.Policies()[0] != sluice.Policy(a) {
		t.Error("Policies() is not a copy")
	}
}

func TestPipelineContextFlows(t *testing.T) {
	type key struct{}
	tag := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		return next.Run(context.WithValue(ctx, key{}, "tagged"))
	})
	var got any
	_ = sluice.NewPipeline(tag, passThrough{}).Do(context.Background(), func(ctx context.Context) error {
		got = ctx.Value(key{})
		return nil
	})
	if got != "tagged" {
		t.Fatalf("inner call saw %v, want the context its outer policy passed", got)
	}
}

type nilPtrPolicy struct{}

func (*nilPtrPolicy) Execute(ctx context.Context, next sluice.Next) error { panic("must be skipped") }

func TestNilPoliciesSkipped(t *testing.T) {
	var optional *nilPtrPolicy // an optional stage left unset
	var fn sluice.PolicyFunc
	var log []string
	a := &tracer{name: "a", log: &log}
	p := sluice.NewPipeline(nil, a, optional, fn, nil)
	if n := len(p.Policies()); n != 1 {
		t.Fatalf("%d policies kept, want 1", n)
	}
	if err := p.Do(context.Background(), func(context.Context) error { return nil }); err != nil || a.runs != 1 {
		t.Fatalf("err %v, runs %d", err, a.runs)
	}
	if n := len(sluice.NewPipeline(nil, nil).Policies()); n != 0 {
		t.Fatalf("all-nil pipeline kept %d", n)
	}
}

func TestNilAndEmptyPipeline(t *testing.T) {
	boom := errors.New("boom")
	for _, p := range []*sluice.Pipeline{nil, sluice.NewPipeline()} {
		if err := p.Do(context.Background(), func(context.Context) error { return boom }); err != boom {
			t.Errorf("Do: %v", err)
		}
		v, err := sluice.Get(context.Background(), p, func(context.Context) (int, error) { return 7, nil })
		if v != 7 || err != nil {
			t.Errorf("Get: %v, %v", v, err)
		}
	}
}

func TestErrorsFlowUnchanged(t *testing.T) {
	var log []string
	p := sluice.NewPipeline(&tracer{name: "a", log: &log}, passThrough{}, &tracer{name: "b", log: &log})
	boom := &sluice.StatusError{Code: 503}
	err := p.Do(context.Background(), func(context.Context) error { return boom })
	if err != error(boom) {
		t.Fatalf("got %v, want the call's own error value", err)
	}
	_, err = sluice.Get(context.Background(), p, func(context.Context) (string, error) { return "", boom })
	if err != error(boom) {
		t.Fatalf("Get: got %v", err)
	}
}

func TestGetResult(t *testing.T) {
	var seen []any
	peek := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		err := next.Run(ctx)
		seen = append(seen, next.Result())
		if p, ok := next.Result().(*int); ok {
			seen = append(seen, *p)
		}
		return err
	})
	p := sluice.NewPipeline(peek)
	v, err := sluice.Get(context.Background(), p, func(context.Context) (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Fatalf("Get = %v, %v", v, err)
	}
	if len(seen) != 2 || seen[1] != 42 {
		t.Fatalf("policy saw %v, want a *int holding 42", seen)
	}
	seen = nil
	_ = p.Do(context.Background(), func(context.Context) error { return nil })
	if len(seen) != 1 || seen[0] != nil {
		t.Fatalf("under Do Result() = %v, want nil", seen)
	}
}

func TestGetSubstitutedValue(t *testing.T) {
	// A fallback-like policy writes a value through Result and clears the error.
	substitute := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		if err := next.Run(ctx); err != nil {
			*next.Result().(*string) = "cached"
		}
		return nil
	})
	p := sluice.NewPipeline(substitute, passThrough{})
	v, err := sluice.Get(context.Background(), p, func(context.Context) (string, error) { return "partial", errors.New("down") })
	if v != "cached" || err != nil {
		t.Fatalf("Get = %q, %v; want the substitute", v, err)
	}
}

func TestNextPerAttempt(t *testing.T) {
	// A retry-like policy runs next once per attempt; the last attempt's
	// value is the result.
	retry := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		var err error
		for range 3 {
			if err = next.Run(ctx); err == nil {
				return nil
			}
		}
		return err
	})
	var log []string
	inner := &tracer{name: "inner", log: &log}
	calls := 0
	v, err := sluice.Get(context.Background(), sluice.NewPipeline(retry, inner), func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return -calls, errors.New("flaky")
		}
		return calls, nil
	})
	if v != 3 || err != nil || calls != 3 || inner.runs != 3 {
		t.Fatalf("v=%d err=%v calls=%d inner runs=%d", v, err, calls, inner.runs)
	}
}

func TestDoAllocatesNothing(t *testing.T) {
	p := sluice.NewPipeline(passThrough{}, passThrough{})
	ctx := context.Background()
	fn := func(ctx context.Context) error { return ctx.Err() }
	if a := testing.AllocsPerRun(1000, func() { _ = p.Do(ctx, fn) }); a != 0 {
		t.Fatalf("Do allocated %v times per call, want 0", a)
	}
	// Get allocates its one result carrier and nothing more.
	get := func(context.Context) (int, error) { return 1, nil }
	if a := testing.AllocsPerRun(1000, func() { _, _ = sluice.Get(ctx, p, get) }); a != 1 {
		t.Fatalf("Get allocated %v times per call, want 1", a)
	}
}

func TestPolicyFunc(t *testing.T) {
	called := false
	f := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error { called = true; return next.Run(ctx) })
	if err := sluice.NewPipeline(f).Do(context.Background(), func(context.Context) error { return nil }); err != nil || !called {
		t.Fatalf("err %v, called %v", err, called)
	}
}

func TestIdempotent(t *testing.T) {
	ctx := context.Background()
	if _, marked := sluice.Idempotent(ctx); marked {
		t.Error("unmarked context reports a mark")
	}
	for _, want := range []bool{true, false} {
		got, marked := sluice.Idempotent(sluice.WithIdempotent(ctx, want))
		if !marked || got != want {
			t.Errorf("WithIdempotent(%v): got %v, %v", want, got, marked)
		}
	}
}

func BenchmarkPipelineEmpty(b *testing.B) {
	p := sluice.NewPipeline()
	fn := func(ctx context.Context) error { return ctx.Err() }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := p.Do(ctx, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDo(b *testing.B) {
	p := sluice.NewPipeline(passThrough{})
	fn := func(ctx context.Context) error { return ctx.Err() }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := p.Do(ctx, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	p := sluice.NewPipeline(passThrough{})
	fn := func(ctx context.Context) (int, error) { return 1, ctx.Err() }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := sluice.Get(ctx, p, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A caller that has gone gets no work done: Do and Get return the context's
// error before any policy or the call runs.
func TestDoneContextStartsNoWork(t *testing.T) {
	var log []string
	p := sluice.NewPipeline(&tracer{name: "a", log: &log})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		p    *sluice.Pipeline
	}{{"no policies", sluice.NewPipeline()}, {"nil pipeline", nil}, {"one policy", p}} {
		calls := 0
		err := tc.p.Do(ctx, func(context.Context) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Do = %v, want context.Canceled", tc.name, err)
		}
		v, err := sluice.Get(ctx, tc.p, func(context.Context) (int, error) { calls++; return 1, nil })
		if !errors.Is(err, context.Canceled) || v != 0 {
			t.Errorf("%s: Get = %v, %v, want 0, context.Canceled", tc.name, v, err)
		}
		if calls != 0 {
			t.Errorf("%s: the call ran %d times for a cancelled context", tc.name, calls)
		}
	}
	if len(log) != 0 {
		t.Errorf("policies ran for a cancelled context: %v", log)
	}
	// The context's cause is what the caller learns.
	why := errors.New("user left")
	cctx, ccancel := context.WithCancelCause(context.Background())
	ccancel(why)
	if err := p.Do(cctx, func(context.Context) error { return nil }); !errors.Is(err, why) {
		t.Errorf("Do with a cause = %v, want the cause %v", err, why)
	}
}
