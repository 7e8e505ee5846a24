package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRegistry(t *testing.T) (*registry.Registry, *sluicetest.FakeClock) {
	t.Helper()
	clk := sluicetest.NewFakeClock(time.Time{})
	r := registry.New(registry.Config{Clock: clk})
	t.Cleanup(func() { r.Close() })
	return r, clk
}

func TestGetOrCreateReturnsSameInstance(t *testing.T) {
	r, _ := newRegistry(t)
	a, err := r.Breaker("db", breaker.Config{FailureThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Breaker("db", breaker.Config{FailureThreshold: 99})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("second Breaker call built a new instance")
	}
	if a.Name() != "db" {
		t.Fatalf("name = %q, want db", a.Name())
	}
	if got := a.Config().FailureThreshold; got != 3 {
		t.Fatalf("FailureThreshold = %d, want the first config's 3", got)
	}
}

func TestInvalidConfigNamesInstance(t *testing.T) {
	r, _ := newRegistry(t)
	_, err := r.Bulkhead("pool", bulkhead.Config{MaxConcurrent: -1})
	if err == nil {
		t.Fatal("negative MaxConcurrent accepted")
	}
	if want := `registry: bulkhead "pool"`; !contains(err.Error(), want) {
		t.Fatalf("error %q does not name the instance (%q)", err, want)
	}
	if _, ok := r.LookupBulkhead("pool"); ok {
		t.Fatal("a failed build was registered")
	}
}

func TestTwoRegistriesShareNothing(t *testing.T) {
	r1, _ := newRegistry(t)
	r2, _ := newRegistry(t)
	a, _ := r1.Limiter("api", ratelimit.Config{Rate: 10, Burst: 1})
	b, _ := r2.Limiter("api", ratelimit.Config{Rate: 10, Burst: 1})
	if a == b {
		t.Fatal("registries returned the same limiter")
	}
	if len(r2.Snapshot().Limiters) != 1 || len(r1.Snapshot().Limiters) != 1 {
		t.Fatal("each registry should list exactly its own limiter")
	}
}

func TestSetBreakerKeepsOpenState(t *testing.T) {
	r, _ := newRegistry(t)
	b, err := r.SetBreaker("up", breaker.Config{FailureThreshold: 1, OpenFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b.ForceOpen()
	b2, err := r.SetBreaker("up", breaker.Config{FailureThreshold: 5, OpenFor: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if b2 != b {
		t.Fatal("SetBreaker replaced the running breaker")
	}
	if st := b.State(); st != breaker.StateForcedOpen {
		t.Fatalf("state after update = %v, want %v", st, breaker.StateForcedOpen)
	}
	if got := b.Config().FailureThreshold; got != 5 {
		t.Fatalf("FailureThreshold = %d, want 5 after update", got)
	}
	if _, err := r.SetBreaker("up", breaker.Config{FailureRateThreshold: 2}); err == nil {
		t.Fatal("invalid update accepted")
	}
	if got := b.Config().FailureThreshold; got != 5 {
		t.Fatalf("a refused update changed the config: FailureThreshold = %d", got)
	}
}

func TestAddRejectsDuplicates(t *testing.T) {
	r, _ := newRegistry(t)
	rt, err := retry.New(retry.Config{Name: "op"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddRetry(rt); err != nil {
		t.Fatal(err)
	}
	if err := r.AddRetry(rt); !errors.Is(err, registry.ErrExists) {
		t.Fatalf("duplicate AddRetry: %v, want ErrExists", err)
	}
	got, ok := r.LookupRetry("op")
	if !ok || got != rt {
		t.Fatal("LookupRetry did not return the added policy")
	}
}

func TestKeyedBoundAndLRU(t *testing.T) {
	r, clk := newRegistry(t)
	k, err := r.KeyedLimiters("tenant", ratelimit.Config{Rate: 5, Burst: 5}, registry.KeyedConfig{MaxKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := k.Get("a")
	clk.Advance(time.Second)
	k.Get("b")
	clk.Advance(time.Second)
	k.Get("c")
	clk.Advance(time.Second)
	if a2, _ := k.Get("a"); a2 != a1 { // refresh a: b is now least recently used
		t.Fatal("Get built a second instance for key a")
	}
	clk.Advance(time.Second)
	k.Get("d")
	if k.Len() != 3 {
		t.Fatalf("Len = %d, want 3 (MaxKeys)", k.Len())
	}
	names := map[string]bool{}
	for _, l := range r.Snapshot().Limiters {
		names[l.Name] = true
	}
	for _, want := range []string{"tenant/a", "tenant/c", "tenant/d"} {
		if !names[want] {
			t.Errorf("snapshot lacks %s: %v", want, names)
		}
	}
	if names["tenant/b"] {
		t.Error("least recently used key b was not evicted")
	}
	if k.Evictions() != 1 {
		t.Fatalf("Evictions = %d, want 1", k.Evictions())
	}
}

func TestKeyedIdleTTLAndEvictable(t *testing.T) {
	r, clk := newRegistry(t)
	k, err := r.KeyedBreakers("host", breaker.Config{FailureThreshold: 1}, registry.KeyedConfig{
		MaxKeys: 100,
		IdleTTL: time.Minute,
		Evictable: func(_ string, v any) bool {
			return v.(*breaker.Breaker).State() == breaker.StateClosed
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	open, _ := k.Get("down.example")
	open.ForceOpen()
	k.Get("idle.example")
	clk.Advance(2 * time.Minute)
	if n := k.Sweep(); n != 1 {
		t.Fatalf("Sweep evicted %d, want 1 (the idle closed breaker)", n)
	}
	if got, _ := k.Get("down.example"); got != open {
		t.Fatal("the open breaker was evicted and rebuilt")
	}
}

func TestSnapshotListsEverything(t *testing.T) {
	r, _ := newRegistry(t)
	r.Breaker("b2", breaker.Config{})
	r.Breaker("b1", breaker.Config{})
	r.Bulkhead("pool", bulkhead.Config{MaxConcurrent: 2})
	r.Retry("op", retry.Config{})
	s := r.Snapshot()
	if len(s.Breakers) != 2 || s.Breakers[0].Name != "b1" || s.Breakers[1].Name != "b2" {
		t.Fatalf("breakers = %+v, want b1, b2 in order", s.Breakers)
	}
	if len(s.Bulkheads) != 1 || s.Bulkheads[0].Stats.MaxConcurrent != 2 {
		t.Fatalf("bulkheads = %+v", s.Bulkheads)
	}
	if len(s.Retries) != 1 || s.Retries[0].Name != "op" {
		t.Fatalf("retries = %+v", s.Retries)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func ExampleRegistry() {
	r := registry.New(registry.Config{})
	defer r.Close()
	br, _ := r.Breaker("agents", breaker.Config{FailureThreshold: 5})
	same, _ := r.Breaker("agents", breaker.Config{})
	fmt.Println(br == same, br.Name())
	for _, b := range r.Snapshot().Breakers {
		fmt.Println(b.Name, b.Stats.State)
	}
	// Output:
	// true agents
	// agents closed
}
