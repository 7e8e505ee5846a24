package test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/retry"
)

// TestValuesThroughFallbackAndCache runs sluice.Get[Status] through
// fallback → cache → retry → dependency and follows one key's value through
// the cache's fresh, stale and expired states (TTL 1m, stale-if-error 5m)
// while the dependency comes and goes: each answer must come from the
// layer that should give it, and the dependency must be called exactly when
// the cache cannot answer.
func TestValuesThroughFallbackAndCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, err := fallback.New(fallback.Config[Status]{Name: "agents", Default: &unknown})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New[Status](cache.Config{Name: "agents", TTL: time.Minute, StaleIfError: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		rt, err := retry.New(retry.Config{MaxAttempts: 2, Backoff: retry.Constant(0), Budget: retry.NoBudget{}})
		if err != nil {
			t.Fatal(err)
		}
		p := sluice.NewPipeline(fb, c.Policy(agentOf), rt)
		up := &upstream{}
		start := time.Now()

		const m = time.Minute
		steps := []struct {
			at        time.Duration
			mode, ver int
			agent     string
			want      Status
			cached    cache.Outcome
			age       time.Duration // of a cached answer
			branch    fallback.Branch
			calls     int
		}{
			{at: 0, mode: healthy, ver: 1, agent: "a", want: Status{"a", 1}, cached: cache.Miss, branch: fallback.BranchPrimary, calls: 1},
			{at: 30 * time.Second, mode: healthy, ver: 2, agent: "a", want: Status{"a", 1}, cached: cache.Hit, age: 30 * time.Second, branch: fallback.BranchPrimary, calls: 1},
			// At exactly TTL the value is no longer fresh: refreshed.
			{at: m, mode: healthy, ver: 2, agent: "a", want: Status{"a", 2}, cached: cache.Miss, branch: fallback.BranchPrimary, calls: 2},
			{at: m + time.Second, mode: failing, agent: "a", want: Status{"a", 2}, cached: cache.Hit, age: time.Second, branch: fallback.BranchPrimary, calls: 2},
			// Stale: both attempts fail and the cache answers with the old
			// value; the fallback sees a success.
			{at: 2 * m, mode: failing, agent: "a", want: Status{"a", 2}, cached: cache.Stale, age: m, branch: fallback.BranchPrimary, calls: 4},
			{at: 7*m - 1, mode: failing, agent: "a", want: Status{"a", 2}, cached: cache.Stale, age: 6*m - 1, branch: fallback.BranchPrimary, calls: 6},
			// Past TTL + stale-if-error: the cache has nothing; the default answers.
			{at: 7 * m, mode: failing, agent: "a", want: unknown, cached: cache.Miss, branch: fallback.BranchDefault, calls: 8},
			{at: 7 * m, mode: failing, agent: "b", want: unknown, cached: cache.Miss, branch: fallback.BranchDefault, calls: 10},
			{at: 8 * m, mode: healthy, ver: 3, agent: "a", want: Status{"a", 3}, cached: cache.Miss, branch: fallback.BranchPrimary, calls: 11},
			{at: 8 * m, mode: healthy, ver: 4, agent: "a", want: Status{"a", 3}, cached: cache.Hit, branch: fallback.BranchPrimary, calls: 11},
		}
		for i, st := range steps {
			sleepUntil(t, start.Add(st.at))
			up.set(st.mode, st.ver)
			var info cache.Info
			var o fallback.Outcome
			ctx := cache.WithInfo(fallback.WithOutcome(withAgent(t.Context(), st.agent), &o), &info)
			v, err := sluice.Get(ctx, p, up.fetch)
			if err != nil {
				t.Fatalf("step %d (at %v): Get(%s): %v", i, st.at, st.agent, err)
			}
			if v != st.want || info.Outcome != st.cached || info.Age != st.age || o.Branch != st.branch {
				t.Fatalf("step %d (at %v): Get(%s) = %+v, cache %v (age %v), fallback %v; want %+v, %v (age %v), %v",
					i, st.at, st.agent, v, info.Outcome, info.Age, o.Branch, st.want, st.cached, st.age, st.branch)
			}
			if got := up.count(); got != st.calls {
				t.Fatalf("step %d: dependency called %d times so far, want %d", i, got, st.calls)
			}
		}
		cs := c.Stats()
		if cs.Hits != 3 || cs.Stale != 2 || cs.Misses != 7 {
			t.Errorf("cache stats %+v: want 3 hits, 2 stale, 7 calls started (misses)", cs)
		}
	})
}

// TestTypedPoliciesUnderDoAndOtherTypes: the same pipeline run by Do (no
// result) or by Get of another type must still run, with no value written
// where there is no slot for it.
func TestTypedPoliciesUnderDoAndOtherTypes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, err := fallback.New(fallback.Config[Status]{Default: &unknown})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New[Status](cache.Config{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		up := &upstream{mode: failing}
		ctx := withAgent(t.Context(), "a")

		// Under Do the fallback's default still makes the call succeed; the
		// cache only runs the rest of the pipeline.
		if err := sluice.NewPipeline(fb, c.Policy(agentOf)).Do(ctx, up.do); err != nil {
			t.Fatalf("Do through fallback with a default: %v, want nil", err)
		}
		if up.count() != 1 || c.Len() != 0 {
			t.Fatalf("Do: %d dependency calls, %d cache entries; want 1, 0", up.count(), c.Len())
		}

		// Under Get[string] the cache steps aside; a Fallback[Status] refuses
		// to run rather than write a Status into a string.
		up.set(healthy, 1)
		s, err := sluice.Get(ctx, sluice.NewPipeline(c.Policy(agentOf)), func(context.Context) (string, error) { return "plain", nil })
		if err != nil || s != "plain" || c.Len() != 0 {
			t.Fatalf("Get[string] through Cache[Status].Policy = %q, %v with %d entries; want plain, nil, 0", s, err, c.Len())
		}
		if _, err := sluice.Get(ctx, sluice.NewPipeline(fb), func(context.Context) (string, error) { return "x", nil }); err == nil {
			t.Fatal("Get[string] through Fallback[Status]: nil error, want a type mismatch error")
		}
	})
}
