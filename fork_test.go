package sluice_test

import (
	"context"
	"sync"
	"testing"

	"github.com/sluice-go/sluice"
)

// forking runs the rest of the pipeline twice at once, each run on a fork,
// and adopts the value of the run named by pick.
type forking struct{ pick int }

func (f forking) Execute(ctx context.Context, next sluice.Next) error {
	forks := [2]sluice.Next{next.Fork(), next.Fork()}
	errs := [2]error{}
	var wg sync.WaitGroup
	for i := range forks {
		wg.Go(func() { errs[i] = forks[i].Run(context.WithValue(ctx, runKey{}, i)) })
	}
	wg.Wait()
	next.Adopt(forks[f.pick])
	return errs[f.pick]
}

type runKey struct{}

// Concurrent runs on forks each keep their own value; the adopted one is
// what Get returns. Under -race this also checks that the runs do not share
// a slot.
func TestForkKeepsValuesApart(t *testing.T) {
	for pick := range 2 {
		p := sluice.NewPipeline(forking{pick: pick})
		got, err := sluice.Get(context.Background(), p, func(ctx context.Context) (int, error) {
			return 10 + ctx.Value(runKey{}).(int), nil
		})
		if err != nil || got != 10+pick {
			t.Errorf("pick %d: Get = %d, %v; want %d", pick, got, err, 10+pick)
		}
	}
}

// A policy inside a fork that substitutes a value writes the fork's slot,
// not the caller's, until the fork is adopted.
func TestForkResultIsOwnSlot(t *testing.T) {
	var forkSlot, callerSlot *string
	substitute := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		*next.Result().(*string) = "substitute"
		return nil
	})
	outer := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		f := next.Fork()
		callerSlot, forkSlot = next.Result().(*string), f.Result().(*string)
		if err := f.Run(ctx); err != nil {
			return err
		}
		if *callerSlot != "" {
			t.Errorf("caller's slot holds %q before Adopt", *callerSlot)
		}
		next.Adopt(f)
		return nil
	})
	got, err := sluice.Get(context.Background(), sluice.NewPipeline(outer, substitute), func(context.Context) (string, error) {
		t.Error("the call ran; the inner policy substitutes")
		return "", nil
	})
	if err != nil || got != "substitute" {
		t.Fatalf("Get = %q, %v; want the adopted substitute", got, err)
	}
	if forkSlot == callerSlot {
		t.Error("the fork's Result is the caller's slot")
	}
}

// Under Do there is no value: Fork costs nothing and Adopt does nothing.
func TestForkUnderDo(t *testing.T) {
	runs := 0
	pol := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
		f := next.Fork()
		if f.Result() != nil {
			t.Errorf("fork under Do has Result %v", f.Result())
		}
		err := f.Run(ctx)
		next.Adopt(f)
		return err
	})
	p := sluice.NewPipeline(pol)
	call := func(context.Context) error { runs++; return nil }
	allocs := testing.AllocsPerRun(100, func() { _ = p.Do(context.Background(), call) })
	if runs != 101 {
		t.Errorf("ran %d times, want 101", runs)
	}
	if allocs != 0 {
		t.Errorf("Fork and Adopt under Do allocate %v times per call, want 0", allocs)
	}
}
