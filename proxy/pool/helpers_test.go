package pool

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicetest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func endpoints(n int) []Endpoint {
	es := make([]Endpoint, n)
	for i := range es {
		es[i] = Endpoint{Addr: fmt.Sprintf("r%d", i)}
	}
	return es
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.Clock == nil { // virtual times: keep the breakers off the system clock's timers
		cfg.Clock = sluicetest.NewFakeClock(t0)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// pick picks at now and fails the test on an error.
func pick(t testing.TB, p *Pool, now time.Time, ex ...*Replica) Attempt {
	t.Helper()
	a, err := p.PickAt(now, ex...)
	if err != nil {
		t.Fatalf("PickAt(%v): %v", now.Sub(t0), err)
	}
	return a
}

// failN sends n failing attempts to replica r (picking until r is chosen is
// not needed: the attempt is made through admit directly).
func failN(t testing.TB, p *Pool, r *Replica, now time.Time, n int) {
	t.Helper()
	for range n {
		a, ok := r.admit(now)
		if !ok {
			t.Fatalf("%s refused an attempt", r.addr)
		}
		a.DoneAt(now, time.Millisecond, Failure)
	}
}

func state(r *Replica, now time.Time) breaker.State { return r.br.StateAt(now) }
