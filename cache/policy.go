package cache

import (
	"context"

	"github.com/sluice-go/sluice"
)

// Policy returns a sluice.Policy that caches the result of the rest of a
// pipeline run under sluice.Get[T], under the key that key computes from the
// call's context:
//
//   - a fresh value is written through next.Result() and the rest of the
//     pipeline does not run;
//   - otherwise the rest of the pipeline runs once for all concurrent callers
//     of the key, on the first caller's goroutine and under its context, and
//     a nil error stores the value it produced;
//   - when it fails with an error Config.ServeStale allows and the key holds
//     a value in its stale window, that value is written through
//     next.Result() and Execute returns nil.
//
// Waiting callers share the first caller's value or error. If the first
// caller leaves before the pipeline returns (its context ends) or the
// pipeline panics, the first caller sees that as it would without a cache,
// and each waiting caller starts over: one of them runs the pipeline itself.
// Config.CallTimeout does not apply; put a timeout policy inside the cache.
//
// When key returns "" the call bypasses the cache, so one policy can serve
// requests that must not be cached. Under Pipeline.Do, or under Get of
// another type than T, the policy only runs the rest of the pipeline. Use
// WithInfo to learn what the policy did. Policy panics if key is nil.
func (c *Cache[T]) Policy(key func(ctx context.Context) string) sluice.Policy {
	if key == nil {
		panic("cache: Policy called with a nil key function")
	}
	return &policy[T]{c: c, key: key}
}

type policy[T any] struct {
	c   *Cache[T]
	key func(context.Context) string
}

type infoKey struct{}

// WithInfo returns a context under which a cache policy records in *info what
// it did (hit, miss or stale, whether it waited on another caller, and the
// value's age), for example to set an HTTP Age header. When several cache
// policies run under one context, the outermost one writes last.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func report(ctx context.Context, info Info) {
	if p, _ := ctx.Value(infoKey{}).(*Info); p != nil {
		*p = info
	}
}

// Execute implements sluice.Policy.
func (p *policy[T]) Execute(ctx context.Context, next sluice.Next) error {
	slot, ok := next.Result().(*T)
	if !ok {
		return next.Run(ctx)
	}
	key := p.key(ctx)
	if key == "" {
		return next.Run(ctx)
	}
	c := p.c
	s := c.shardFor(key)
	if v, age, ok := c.fresh(s, key); ok {
		c.hits.Inc()
		*slot = v
		report(ctx, Info{Outcome: Hit, Age: age})
		return nil
	}
	now := c.clock.Now()
	waited := false
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		f, v, age, st := c.join(s, key, now)
		switch st {
		case joinHit:
			c.hits.Inc()
			*slot = v
			report(ctx, Info{Outcome: Hit, Age: age, Coalesced: waited})
			return nil
		case joinLead:
			c.misses.Add(1)
			return c.lead(ctx, s, key, f, slot, next, waited)
		}
		if !waited {
			c.coalesced.Add(1)
			waited = true
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if f.abandoned {
			now = c.clock.Now()
			continue
		}
		return c.answer(ctx, s, key, f, f.val, f.err, slot, Info{Coalesced: true})
	}
}

// lead runs the rest of the pipeline for every caller of key.
func (c *Cache[T]) lead(ctx context.Context, s *shard[T], key string, f *flight[T], slot *T, next sluice.Next, waited bool) error {
	returned := false
	defer func() {
		if !returned {
			// A panic or runtime.Goexit: no recover, so it unwinds with its
			// own stack; the waiters start over rather than deadlock.
			f.abandoned = true
			c.finish(s, key, f)
		}
	}()
	err := next.Run(ctx)
	returned = true
	if err == nil {
		f.val = *slot
	} else {
		f.err = err
		// The caller's own cancellation is not an answer for the others.
		f.abandoned = ctx.Err() != nil
	}
	c.finish(s, key, f)
	return c.answer(ctx, s, key, f, *slot, err, slot, Info{Coalesced: waited})
}

// answer writes a call's outcome, or a stale value, through slot.
func (c *Cache[T]) answer(ctx context.Context, s *shard[T], key string, f *flight[T], v T, err error, slot *T, info Info) error {
	if err == nil {
		*slot = v
		report(ctx, info)
		return nil
	}
	if sv, age, ok := c.staleFor(ctx, s, key, f.at, err); ok {
		*slot = sv
		info.Outcome, info.Age = Stale, age
		report(ctx, info)
		return nil
	}
	report(ctx, info)
	return err
}
