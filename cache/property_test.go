package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice/cache"
	"github.com/sluice-go/sluice/sluicetest"
	"pgregory.net/rapid"
)

// model is the reference: a plain map of values and store times, with the
// TTL rule written out directly.
type model struct {
	ttl, stale time.Duration // ttl <= 0: never fresh
	m          map[string]modelEntry
}

type modelEntry struct {
	v      int
	stored time.Time
}

func (m *model) fresh(e modelEntry, now time.Time) bool {
	return m.ttl > 0 && now.Sub(e.stored) < m.ttl
}

func (m *model) staleOK(e modelEntry, now time.Time) bool {
	ttl := max(m.ttl, 0)
	return m.stale > 0 && now.Sub(e.stored) < ttl+m.stale
}

// TestModel checks Get's fresh/stale/miss decisions, values and ages against
// the model over random sequences of time steps, Gets, Puts and Deletes.
func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ttl := rapid.SampledFrom([]time.Duration{cache.NeverFresh, time.Second, 5 * time.Second, 20 * time.Second}).Draw(t, "ttl")
		stale := rapid.SampledFrom([]time.Duration{0, time.Second, 10 * time.Second}).Draw(t, "stale")
		clock := sluicetest.NewFakeClock(time.Time{})
		c, err := cache.New[int](cache.Config{TTL: ttl, StaleIfError: stale, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		m := &model{ttl: ttl, stale: stale, m: map[string]modelEntry{}}
		keyGen := rapid.SampledFrom([]string{"a", "b", "c"})

		t.Repeat(map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				// Whole steps hit the window boundaries exactly; odd ones land between.
				var d time.Duration
				if rapid.Bool().Draw(t, "whole") {
					d = rapid.SampledFrom([]time.Duration{0, time.Second, 4 * time.Second, 5 * time.Second, 10 * time.Second}).Draw(t, "d")
				} else {
					d = time.Duration(rapid.Int64Range(1, int64(25*time.Second)).Draw(t, "ns"))
				}
				clock.Advance(d)
			},
			"put": func(t *rapid.T) {
				k, v := keyGen.Draw(t, "key"), rapid.Int().Draw(t, "v")
				c.Put(k, v)
				m.m[k] = modelEntry{v, clock.Now()}
			},
			"delete": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				c.Delete(k)
				delete(m.m, k)
			},
			"get": func(t *rapid.T) {
				k := keyGen.Draw(t, "key")
				ok := rapid.Bool().Draw(t, "ok")
				fv := rapid.Int().Draw(t, "v")
				now := clock.Now()
				called := false
				v, info, err := c.Get(context.Background(), k, func(context.Context) (int, error) {
					called = true
					if ok {
						return fv, nil
					}
					return 0, err503
				})

				e, has := m.m[k]
				var (
					wantV      int
					wantErr    error
					wantOut    = cache.Miss
					wantAge    time.Duration
					wantCalled = true
				)
				switch {
				case has && m.fresh(e, now):
					wantV, wantOut, wantAge, wantCalled = e.v, cache.Hit, now.Sub(e.stored), false
				case ok:
					wantV = fv
					m.m[k] = modelEntry{fv, now}
				case has && m.staleOK(e, now):
					wantV, wantOut, wantAge = e.v, cache.Stale, now.Sub(e.stored)
				default:
					wantErr = err503
				}
				if v != wantV || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) ||
					info.Outcome != wantOut || info.Age != wantAge || called != wantCalled {
					t.Fatalf("Get(%s) at +%v: got %d %v %+v called=%v; want %d %v %v age %v called=%v",
						k, now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), v, err, info, called,
						wantV, wantErr, wantOut, wantAge, wantCalled)
				}
			},
			"": func(t *rapid.T) {
				// Invariant: Peek agrees with the model for every key.
				now := clock.Now()
				for _, k := range []string{"a", "b", "c"} {
					v, info, ok := c.Peek(k)
					e, has := m.m[k]
					switch {
					case has && m.fresh(e, now):
						if !ok || v != e.v || info.Outcome != cache.Hit {
							t.Fatalf("Peek(%s) = %d %+v %v, want fresh %d", k, v, info, ok, e.v)
						}
					case has && m.staleOK(e, now):
						if !ok || v != e.v || info.Outcome != cache.Stale {
							t.Fatalf("Peek(%s) = %d %+v %v, want stale %d", k, v, info, ok, e.v)
						}
					default:
						if ok {
							t.Fatalf("Peek(%s) = %d %+v, want nothing", k, v, info)
						}
					}
				}
			},
		})
	})
}
