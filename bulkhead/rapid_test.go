package bulkhead

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"pgregory.net/rapid"
)

// bhModel is the reference: a counter of permits in use, a FIFO queue of
// waiter ids, and the rule that a permit goes to the head of the queue
// first.
type bhModel struct {
	limit, maxQueue int
	active          int
	queue           []int
	state           map[int]string // waiter id -> "queued", "granted", "rejected", "canceled", "released"
}

func (m *bhModel) dispatch() {
	for len(m.queue) > 0 && m.active < m.limit {
		m.state[m.queue[0]] = "granted"
		m.queue = m.queue[1:]
		m.active++
	}
}

type bhCall struct {
	cancel context.CancelFunc
	done   chan error
	state  string // as observed from the real bulkhead
}

// TestPropertyAgainstModel drives a Bulkhead with random sequences of
// TryAcquire, queued Acquire, Release, cancellation of a waiter and limit
// changes, and after every step compares it with bhModel: the permits in
// use, the queue length and the fate of every waiter. Any admission beyond
// the limit, lost permit, lost wakeup or out-of-order admission shows up as
// a difference. synctest makes each step settle before the comparison.
func TestPropertyAgainstModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Hide *testing.T from rapid, which would ask for its Deadline, a
		// call that panics inside a synctest bubble.
		rapid.Check(struct{ testing.TB }{t}, func(rt *rapid.T) {
			m := &bhModel{
				limit:    rapid.IntRange(1, 4).Draw(rt, "limit"),
				maxQueue: rapid.IntRange(0, 4).Draw(rt, "queue"),
				state:    map[int]string{},
			}
			b := MustNew(Config{MaxConcurrent: m.limit, MaxQueue: m.maxQueue})
			direct := 0 // permits held through TryAcquire
			var calls []*bhCall
			defer func() {
				// Unblock every waiter, even when the case failed, so that
				// the bubble ends with no goroutine left behind.
				for _, c := range calls {
					c.cancel()
				}
				synctest.Wait()
			}()

			settle := func() {
				synctest.Wait()
				for _, c := range calls {
					if c.state != "queued" {
						continue
					}
					select {
					case err := <-c.done:
						switch {
						case err == nil:
							c.state = "granted"
						case errors.Is(err, ErrFull):
							c.state = "rejected"
						case errors.Is(err, context.Canceled):
							c.state = "canceled"
						default:
							rt.Fatalf("unexpected error %v", err)
						}
					default:
					}
				}
			}
			check := func() {
				settle()
				st := b.Stats()
				if st.Active != m.active || st.Queued != len(m.queue) {
					rt.Fatalf("active %d queued %d, model %d %d", st.Active, st.Queued, m.active, len(m.queue))
				}
				for id, c := range calls {
					if c.state != m.state[id] {
						rt.Fatalf("waiter %d is %s, model says %s", id, c.state, m.state[id])
					}
				}
			}

			rt.Repeat(map[string]func(*rapid.T){
				"try": func(rt *rapid.T) {
					want := len(m.queue) == 0 && m.active < m.limit
					if got := b.TryAcquire(); got != want {
						rt.Fatalf("TryAcquire = %v, model %v", got, want)
					}
					if want {
						m.active++
						direct++
					}
					check()
				},
				"acquire": func(rt *rapid.T) {
					ctx, cancel := context.WithCancel(context.Background())
					c := &bhCall{cancel: cancel, done: make(chan error, 1), state: "queued"}
					id := len(calls)
					calls = append(calls, c)
					switch {
					case len(m.queue) == 0 && m.active < m.limit:
						m.active++
						m.state[id] = "granted"
					case len(m.queue) >= m.maxQueue:
						m.state[id] = "rejected"
					default:
						m.queue = append(m.queue, id)
						m.state[id] = "queued"
					}
					go func() { c.done <- b.Acquire(ctx) }()
					check()
				},
				"release": func(rt *rapid.T) {
					var holders []int // -1 for a direct permit
					if direct > 0 {
						holders = append(holders, -1)
					}
					for id, c := range calls {
						if c.state == "granted" {
							holders = append(holders, id)
						}
					}
					if len(holders) == 0 {
						rt.Skip("nothing to release")
					}
					h := rapid.SampledFrom(holders).Draw(rt, "holder")
					if h < 0 {
						direct--
					} else {
						calls[h].state, m.state[h] = "released", "released"
					}
					b.Release()
					m.active--
					m.dispatch()
					check()
				},
				"cancel": func(rt *rapid.T) {
					if len(m.queue) == 0 {
						rt.Skip("nobody waits")
					}
					id := rapid.SampledFrom(m.queue).Draw(rt, "waiter")
					calls[id].cancel()
					m.queue = slices.DeleteFunc(m.queue, func(x int) bool { return x == id })
					m.state[id] = "canceled"
					check()
				},
				"update": func(rt *rapid.T) {
					m.limit = rapid.IntRange(1, 4).Draw(rt, "new limit")
					m.maxQueue = rapid.IntRange(0, 4).Draw(rt, "new queue")
					if err := b.Update(Config{MaxConcurrent: m.limit, MaxQueue: m.maxQueue}); err != nil {
						rt.Fatal(err)
					}
					m.dispatch()
					check()
				},
			})

			// Tear down: cancel the waiters, return every permit, and the
			// bulkhead must be empty with all its permits free.
			for _, c := range calls {
				c.cancel()
			}
			settle()
			for _, c := range calls {
				if c.state == "granted" {
					b.Release()
				}
			}
			for range direct {
				b.Release()
			}
			if st := b.Stats(); st.Active != 0 || st.Queued != 0 {
				rt.Fatalf("after teardown: %+v", st)
			}
			for range m.limit {
				if !b.TryAcquire() {
					rt.Fatal("a permit was lost")
				}
			}
			if b.TryAcquire() {
				rt.Fatal("more permits than the limit")
			}
		})
	})
}
