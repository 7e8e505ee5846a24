package sluice

import (
	"context"
	"reflect"
)

// Policy is one stage of a Pipeline: it decides whether, when and how often
// the rest of the pipeline runs. Execute must call next.Run at most once per
// attempt and must not keep next after it returns.
//
// Policies that do not look at the call's result (retry, breaker, bulkhead,
// rate limiter, timeout) are written once and shared by pipelines of any
// result type. Policies that produce values (fallback, cache) reach the
// typed result through Next.Result.
type Policy interface {
	Execute(ctx context.Context, next Next) error
}

// PolicyFunc adapts a function to the Policy interface.
type PolicyFunc func(ctx context.Context, next Next) error

// Execute calls f(ctx, next).
func (f PolicyFunc) Execute(ctx context.Context, next Next) error { return f(ctx, next) }

// runner is the call at the bottom of a pipeline: a plain function for Do, a
// typed call that stores its value for Get. fork returns a runner of the
// same function with a slot of its own (and that slot, nil when there is
// none); adopt copies the value of from, a fork, into the runner's slot.
type runner interface {
	run(ctx context.Context) error
	fork() (runner, any)
	adopt(from runner)
}

// doFunc is pointer-shaped, so converting it to runner does not allocate.
type doFunc func(context.Context) error

func (f doFunc) run(ctx context.Context) error { return f(ctx) }

// fork returns f itself: a plain function has no value to keep apart.
func (f doFunc) fork() (runner, any) { return f, nil }

func (doFunc) adopt(runner) {}

// typedCall carries Get's function and the slot its value lands in.
type typedCall[T any] struct {
	fn  func(context.Context) (T, error)
	out T
}

func (c *typedCall[T]) run(ctx context.Context) error {
	v, err := c.fn(ctx)
	c.out = v
	return err
}

func (c *typedCall[T]) fork() (runner, any) {
	f := &typedCall[T]{fn: c.fn}
	return f, &f.out
}

func (c *typedCall[T]) adopt(from runner) {
	if f, ok := from.(*typedCall[T]); ok && f != c {
		c.out = f.out
	}
}

// Next runs the rest of a pipeline: the policies inside the current one and
// then the call itself. It is a small value, passed by copy, and valid only
// during the Policy.Execute call that received it.
type Next struct {
	p    *Pipeline
	i    int // index of the policy that received this Next
	call runner
	slot any
}

// Run runs the rest of the pipeline with ctx and returns its error.
func (n Next) Run(ctx context.Context) error {
	j := n.i + 1
	if j < len(n.p.policies) {
		return n.p.policies[j].Execute(ctx, Next{p: n.p, i: j, call: n.call, slot: n.slot})
	}
	return n.call.run(ctx)
}

// Result returns a pointer to the typed result of the call (a *T when the
// pipeline runs under Get[T]) or nil when the pipeline runs under Do. A
// fallback or cache policy reads the value after Run returns, or stores a
// substitute through it.
func (n Next) Result() any { return n.slot }

// Fork returns a Next that runs the same rest of the pipeline as n but keeps
// the call's value in a result slot of its own, which its Result reports;
// n's slot is left alone. A policy that runs attempts at the same time (a
// hedge) runs each extra attempt on a fork, so that no two attempts write
// one slot, and once every attempt has returned it copies the value of the
// one it chose into n's slot with Adopt. Under Do there is no value: Fork
// returns n and costs nothing. Under Get it allocates one small object.
func (n Next) Fork() Next {
	c, slot := n.call.fork()
	if slot == nil {
		return n // no value to keep apart
	}
	return Next{p: n.p, i: n.i, call: c, slot: slot}
}

// Adopt copies the value of fork, a Next that n.Fork returned, into n's
// result slot, as if the call had run on n. The caller must make sure that
// no run of fork or of n is still under way. Adopting n itself, or a fork
// under Do, does nothing.
func (n Next) Adopt(fork Next) { n.call.adopt(fork.call) }

// Pipeline composes policies, outermost first. A Pipeline is immutable and
// safe for concurrent use; the policies it holds keep their own state, so one
// breaker may sit in many pipelines.
type Pipeline struct {
	policies []Policy
}

// NewPipeline returns a pipeline that runs a call through policies, the first
// one outermost. Nil policies are skipped, so optional stages can be listed
// unconditionally; that includes a nil pointer or func of a policy type (a
// *breaker.Breaker left nil), which a plain != nil test would miss.
func NewPipeline(policies ...Policy) *Pipeline {
	p := &Pipeline{policies: make([]Policy, 0, len(policies))}
	for _, pol := range policies {
		if !isNilPolicy(pol) {
			p.policies = append(p.policies, pol)
		}
	}
	return p
}

// isNilPolicy reports whether pol is nil or an interface holding a nil
// pointer or func. Reflection is paid once, at construction.
func isNilPolicy(pol Policy) bool {
	if pol == nil {
		return true
	}
	switch v := reflect.ValueOf(pol); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// Policies returns a copy of the pipeline's policies, outermost first.
func (p *Pipeline) Policies() []Policy {
	return append([]Policy(nil), p.policies...)
}

// Do runs fn through the pipeline and returns the error of the outermost
// policy. A nil Pipeline runs fn directly. When ctx is already done, Do
// runs nothing — no policy, no attempt — and returns context.Cause(ctx): the
// caller has gone, and work started for it would only load the dependency.
// On the happy path Do itself allocates nothing.
func (p *Pipeline) Do(ctx context.Context, fn func(context.Context) error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if p == nil || len(p.policies) == 0 {
		return fn(ctx)
	}
	return p.policies[0].Execute(ctx, Next{p: p, call: doFunc(fn)})
}

// Get runs fn through p and returns its value. When a policy substitutes a
// value (a fallback, a cache hit) Get returns that value. Get allocates one
// small object per call to carry the typed result through the policies.
// Like Do, it runs nothing for a ctx that is already done, returning the
// zero T and context.Cause(ctx).
func Get[T any](ctx context.Context, p *Pipeline, fn func(context.Context) (T, error)) (T, error) {
	if ctx.Err() != nil {
		var zero T
		return zero, context.Cause(ctx)
	}
	if p == nil || len(p.policies) == 0 {
		return fn(ctx)
	}
	c := &typedCall[T]{fn: fn}
	err := p.policies[0].Execute(ctx, Next{p: p, call: c, slot: &c.out})
	return c.out, err
}
