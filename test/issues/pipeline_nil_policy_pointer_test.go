package issues

import (
	"context"
	"testing"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

// TestPipelineNilPolicyPointer: a policy left nil by optional configuration,
//
//	var b *breaker.Breaker
//	sluice.NewPipeline(b).Do(ctx, fn)
//
// is a non-nil sluice.Policy interface holding a nil pointer. NewPipeline
// tested only pol != nil, kept it, and the first call panicked with a nil
// dereference inside (*Breaker).Execute. Fixed in NewPipeline, which now
// skips nil pointers and funcs of any policy type.
func TestPipelineNilPolicyPointer(t *testing.T) {
	ctx := context.Background()
	run := func(name string, p *sluice.Pipeline) {
		t.Helper()
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: the call panicked: %v", name, r)
			}
		}()
		calls := 0
		if err := p.Do(ctx, func(context.Context) error { calls++; return nil }); err != nil || calls != 1 {
			t.Fatalf("%s: Do = %v with %d calls, want nil and 1", name, err, calls)
		}
		v, err := sluice.Get(ctx, p, func(context.Context) (int, error) { return 42, nil })
		if err != nil || v != 42 {
			t.Fatalf("%s: Get = %v, %v; want 42, nil", name, v, err)
		}
	}

	// The report, exactly.
	var b *breaker.Breaker
	p := sluice.NewPipeline(b)
	if n := len(p.Policies()); n != 0 {
		t.Fatalf("NewPipeline(nil *breaker.Breaker) kept %d policies, want 0", n)
	}
	run("nil *breaker.Breaker", p)

	// Every policy type, nil, around one real policy that must be kept.
	var (
		r  *retry.Retry
		bh *bulkhead.Bulkhead
		rl *ratelimit.TokenBucket
		to *timeout.Timeout
		fb *fallback.Fallback[int]
		pf sluice.PolicyFunc
	)
	keep := timeout.After(0)
	p = sluice.NewPipeline(fb, r, b, bh, rl, keep, to, pf, nil)
	if got := p.Policies(); len(got) != 1 || got[0] != sluice.Policy(keep) {
		t.Fatalf("NewPipeline kept %v, want only the non-nil timeout", got)
	}
	run("nil pointers of every policy type", p)
}
