package fallback_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-go/sluice/fallback"
	"github.com/sluice-go/sluice/sluicetest"
)

// TestLastGoodModel checks the last-good branch against a plain map of
// (value, stored at) under random successes, failures, forgets and clock
// moves.
func TestLastGoodModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ttl := time.Duration(rapid.Int64Range(1, 10).Draw(t, "ttl")) * time.Second
		clock := sluicetest.NewFakeClock(time.Time{})
		f, err := fallback.New(fallback.Config[int]{
			LastGoodTTL: ttl, Clock: clock,
			Key: func(ctx context.Context) string { return ctx.Value(agentKey{}).(string) },
		})
		if err != nil {
			t.Fatal(err)
		}
		type stored struct {
			v  int
			at time.Time
		}
		model := map[string]stored{}
		keys := []string{"", "a", "b", "c"}
		down := fail[int](errors.New("down"))

		t.Repeat(map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				// Half-second steps land exactly on the TTL boundary often.
				clock.Advance(time.Duration(rapid.Int64Range(0, int64(4*ttl/time.Second)).Draw(t, "halfSeconds")) * time.Second / 2)
			},
			"success": func(t *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				v := rapid.Int().Draw(t, "v")
				got, _, err := get(context.WithValue(context.Background(), agentKey{}, k), f, ok(v))
				if err != nil || got != v {
					t.Fatalf("success: %d, %v", got, err)
				}
				model[k] = stored{v, clock.Now()}
			},
			"failure": func(t *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				got, o, err := get(context.WithValue(context.Background(), agentKey{}, k), f, down)
				m, has := model[k]
				age := clock.Now().Sub(m.at)
				if has && age < ttl {
					if err != nil || got != m.v || o.Branch != fallback.BranchLastGood || o.Age != age {
						t.Fatalf("key %q: got %d via %v age %v (%v), want %d age %v", k, got, o.Branch, o.Age, err, m.v, age)
					}
					return
				}
				if !errors.Is(err, fallback.ErrExhausted) || o.Branch != fallback.BranchExhausted {
					t.Fatalf("key %q: got %d via %v (%v), want exhausted", k, got, o.Branch, err)
				}
			},
			"forget": func(t *rapid.T) {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				f.Forget(k)
				delete(model, k)
			},
		})
	})
}
