package bulkhead

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"
)

// The explicit-time queue step by step: admission, queueing, a full queue,
// a grant, an expired wait, a cancellation, and what Stats makes of them.
func TestTicketSteps(t *testing.T) {
	var rejected []Reason
	b := mustNew(t, Config{Name: "db", MaxConcurrent: 2, MaxQueue: 2, MaxWait: time.Second,
		OnReject: func(e *FullError) { rejected = append(rejected, e.Reason()) }})
	for i := range 2 {
		if _, ok, err := b.EnqueueAt(at(0)); !ok || err != nil {
			t.Fatalf("Enqueue %d with a free permit: admitted %v, err %v", i, ok, err)
		}
	}
	t1, ok, err := b.EnqueueAt(at(100 * time.Millisecond))
	if ok || err != nil || t1 == (Ticket{}) {
		t.Fatalf("third Enqueue: %v %v %v, want a ticket", t1, ok, err)
	}
	t2, _, _ := b.EnqueueAt(at(200 * time.Millisecond))
	if _, _, err := b.EnqueueAt(at(300 * time.Millisecond)); !errors.Is(err, ErrFull) {
		t.Fatalf("fifth Enqueue: err %v, want ErrFull (queue full)", err)
	}
	if st := b.Stats(); st.Active != 2 || st.Queued != 2 || st.Waited != 2 || st.Rejected != 1 {
		t.Fatalf("with two queued: %+v", st)
	}
	if g := b.ReleaseAt(at(500 * time.Millisecond)); !slices.Equal(g, []Ticket{t1}) {
		t.Fatalf("ReleaseAt = %v, want the first ticket", g)
	}
	if exp, err := b.ExpireAt(at(1100 * time.Millisecond)); exp != nil || err != nil {
		t.Fatalf("ExpireAt before the second wait ran out = %v, %v", exp, err)
	}
	exp, err := b.ExpireAt(at(1200 * time.Millisecond))
	var fe *FullError
	if !slices.Equal(exp, []Ticket{t2}) || !errors.As(err, &fe) || fe.Reason() != WaitExpired {
		t.Fatalf("ExpireAt = %v, %v; want the second ticket, wait expired", exp, err)
	}
	t3, _, _ := b.EnqueueAt(at(1300 * time.Millisecond))
	if !b.Cancel(t3) || b.Cancel(t3) || b.Cancel(t2) || b.Cancel(t1) || b.Cancel(Ticket{}) {
		t.Error("Cancel: want true once for a queued ticket, false for one cancelled, expired, granted or zero")
	}
	st := b.Stats()
	if st.Active != 2 || st.Queued != 0 || st.Admitted != 3 || st.Rejected != 2 || st.Canceled != 1 || st.Waited != 3 || st.Total != 6 {
		t.Errorf("at the end: %+v; want 2 active, 3 admitted, 2 rejected, 1 cancelled, 3 waited", st)
	}
	if !slices.Equal(rejected, []Reason{QueueFull, WaitExpired}) {
		t.Errorf("OnReject saw %v", rejected)
	}
}

// A ticket whose wait has run out is never granted a permit, whichever of
// ReleaseAt and ExpireAt is called first for the instant.
func TestReleaseAtPassesOverExpired(t *testing.T) {
	for _, expireFirst := range []bool{false, true} {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 5, MaxWait: time.Second})
		b.EnqueueAt(at(0))
		t1, _, _ := b.EnqueueAt(at(0))                      // runs out at 1s
		t2, _, _ := b.EnqueueAt(at(500 * time.Millisecond)) // at 1.5s
		now := at(time.Second)
		var exp []Ticket
		if expireFirst {
			exp, _ = b.ExpireAt(now)
		}
		g := b.ReleaseAt(now)
		if !expireFirst {
			exp, _ = b.ExpireAt(now)
		}
		if !slices.Equal(g, []Ticket{t2}) || !slices.Equal(exp, []Ticket{t1}) {
			t.Errorf("expire first %v: granted %v, expired %v; want the second granted, the first expired", expireFirst, g, exp)
		}
	}
}

// Tickets and blocked callers share one FIFO queue.
func TestTicketsQueueWithBlockedCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 3})
		mustAcquire(t, b)
		t1, _, _ := b.EnqueueAt(time.Now())
		ch := acquireAsync(context.Background(), b)
		t2, _, _ := b.EnqueueAt(time.Now())
		if g := b.ReleaseAt(time.Now()); !slices.Equal(g, []Ticket{t1}) {
			t.Fatalf("first release granted %v, want the first ticket", g)
		}
		if g := b.ReleaseAt(time.Now()); len(g) != 0 {
			t.Fatalf("second release granted %v, want the blocked caller", g)
		}
		synctest.Wait()
		if err := <-ch; err != nil {
			t.Fatalf("blocked caller: %v", err)
		}
		b.Release() // the goroutine's permit, released by someone else: the ticket waits for Granted
		if g := b.Granted(); !slices.Equal(g, []Ticket{t2}) {
			t.Fatalf("Granted = %v, want the second ticket", g)
		}
		if st := b.Stats(); st.Active != 1 || st.Queued != 0 || st.Admitted != 4 || st.Waited != 3 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Cancelling a ticket granted by an Update, before its owner collected it,
// gives the permit back.
func TestCancelGrantedTicket(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 2})
	b.EnqueueAt(at(0))
	t1, _, _ := b.EnqueueAt(at(0))
	t2, _, _ := b.EnqueueAt(at(0))
	if err := b.Update(Config{MaxConcurrent: 2, MaxQueue: 2}); err != nil {
		t.Fatal(err)
	}
	if !b.Cancel(t1) {
		t.Fatal("Cancel of a granted, uncollected ticket = false")
	}
	if g := b.Granted(); !slices.Equal(g, []Ticket{t2}) {
		t.Fatalf("Granted = %v, want the permit passed on to the second ticket", g)
	}
	if st := b.Stats(); st.Active != 2 || st.Queued != 0 || st.Canceled != 0 {
		t.Errorf("stats %+v; want both permits held, nobody queued", st)
	}
}

// tkModel is the reference for the shared queue: permits in use and one
// FIFO of waiters, each a blocked goroutine or a ticket with a deadline.
type tkModel struct {
	limit, maxQueue int
	active          int
	queue           []int
	ticket          map[int]bool
	deadline        map[int]time.Duration // tickets; 0: never
	state           map[int]string        // see tkCheck
	pending         []int                 // tickets granted, not yet returned
	passed          []int                 // tickets passed over by ReleaseAt, not yet returned by ExpireAt
	admitted        int64
	rejected        int64
}

// dispatch grants free permits head first; now < 0 means a release without
// a time, which does not look at deadlines.
func (m *tkModel) dispatch(now time.Duration) {
	for len(m.queue) > 0 {
		id := m.queue[0]
		if m.ticket[id] && now >= 0 && m.deadline[id] > 0 && now >= m.deadline[id] {
			m.queue = m.queue[1:]
			m.passed = append(m.passed, id)
			m.state[id] = "passed"
			m.rejected++
			continue
		}
		if m.active >= m.limit {
			return
		}
		m.queue = m.queue[1:]
		m.active++
		m.admitted++
		if m.ticket[id] {
			m.state[id] = "pending"
			m.pending = append(m.pending, id)
		} else {
			m.state[id] = "granted"
		}
	}
}

// The explicit-time queue against a model, mixed with blocked callers:
// random EnqueueAt, Acquire, TryAcquire, Release, ReleaseAt, Granted,
// ExpireAt, Cancel, context cancellation and limit changes, with the queue,
// the permits in use, the fate of every waiter and the counts compared after
// every step.
func TestPropertyTicketsAgainstModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rapid.Check(struct{ testing.TB }{t}, func(rt *rapid.T) {
			maxWait := time.Duration(rapid.IntRange(0, 3).Draw(rt, "maxWait")) * time.Second
			m := &tkModel{
				limit: rapid.IntRange(1, 3).Draw(rt, "limit"), maxQueue: rapid.IntRange(0, 4).Draw(rt, "queue"),
				ticket: map[int]bool{}, deadline: map[int]time.Duration{}, state: map[int]string{},
			}
			// A MaxWait needs a queue; without one it is left zero.
			waitFor := func(queue int) time.Duration { return min(time.Duration(queue), 1) * maxWait }
			b := MustNew(Config{MaxConcurrent: m.limit, MaxQueue: m.maxQueue, MaxWait: waitFor(m.maxQueue)})
			var now time.Duration // virtual time of the tickets; the goroutines' timers never fire
			type gcall struct {
				cancel context.CancelFunc
				done   chan error
			}
			tickets := map[int]Ticket{}
			byTicket := map[Ticket]int{}
			calls := map[int]*gcall{}
			observed := map[int]string{}
			direct, n := 0, 0
			var canceled, waited int64
			defer func() {
				for _, c := range calls {
					c.cancel()
				}
				synctest.Wait()
			}()
			collect := func(g []Ticket, want []int, what string) {
				got := make([]int, len(g))
				for i, tk := range g {
					got[i] = byTicket[tk]
					observed[got[i]] = "granted"
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("%s returned tickets %v, model %v", what, got, want)
				}
				for _, id := range want {
					m.state[id] = "granted"
				}
			}
			check := func() {
				synctest.Wait()
				for id, c := range calls {
					if observed[id] != "queued" {
						continue
					}
					select {
					case err := <-c.done:
						switch {
						case err == nil:
							observed[id] = "granted"
						case errors.Is(err, context.Canceled):
							observed[id] = "canceled"
						default:
							rt.Fatalf("waiter %d: %v", id, err)
						}
					default:
					}
				}
				for id := range n {
					want := m.state[id]
					if want == "passed" || want == "pending" {
						want = "queued" // not yet told
					}
					if observed[id] != want {
						rt.Fatalf("waiter %d is %s, model says %s", id, observed[id], m.state[id])
					}
				}
				st := b.Stats()
				if st.Active != m.active || st.Queued != len(m.queue) {
					rt.Fatalf("active %d queued %d, model %d %d", st.Active, st.Queued, m.active, len(m.queue))
				}
				if st.Admitted != m.admitted || st.Rejected != m.rejected || st.Canceled != canceled || st.Waited != waited {
					rt.Fatalf("stats %+v, model admitted %d rejected %d canceled %d waited %d", st, m.admitted, m.rejected, canceled, waited)
				}
			}
			join := func(id int, isTicket bool) {
				m.ticket[id] = isTicket
				switch {
				case len(m.queue) == 0 && m.active < m.limit:
					m.active++
					m.admitted++
					m.state[id] = "granted"
				case len(m.queue) >= m.maxQueue:
					m.rejected++
					m.state[id] = "rejected"
				default:
					waited++
					m.queue = append(m.queue, id)
					m.state[id] = "queued"
					if isTicket && maxWait > 0 {
						m.deadline[id] = now + maxWait
					}
				}
			}
			release := func(rt *rapid.T) {
				var holders []int // -1 for a TryAcquire permit
				if direct > 0 {
					holders = append(holders, -1)
				}
				for id := range n {
					if observed[id] == "granted" {
						holders = append(holders, id)
					}
				}
				if len(holders) == 0 {
					rt.Skip("nothing to release")
				}
				if h := rapid.SampledFrom(holders).Draw(rt, "holder"); h < 0 {
					direct--
				} else {
					observed[h], m.state[h] = "released", "released"
				}
				m.active--
			}
			grants := func() {
				want := m.pending
				m.pending = nil
				collect(b.Granted(), want, "Granted")
			}
			rt.Repeat(map[string]func(*rapid.T){
				"enqueue": func(rt *rapid.T) {
					id := n
					n++
					join(id, true)
					tk, ok, err := b.EnqueueAt(t0.Add(now))
					switch {
					case err != nil:
						observed[id] = "rejected"
					case ok:
						observed[id] = "granted"
					default:
						observed[id] = "queued"
						tickets[id], byTicket[tk] = tk, id
					}
					check()
				},
				"acquire": func(rt *rapid.T) {
					id := n
					n++
					join(id, false)
					ctx, cancel := context.WithCancel(context.Background())
					c := &gcall{cancel: cancel, done: make(chan error, 1)}
					calls[id] = c
					go func() { c.done <- b.Acquire(ctx) }()
					synctest.Wait()
					select {
					case err := <-c.done:
						if err == nil {
							observed[id] = "granted"
						} else {
							observed[id] = "rejected"
						}
					default:
						observed[id] = "queued"
					}
					check()
				},
				"try": func(rt *rapid.T) {
					want := len(m.queue) == 0 && m.active < m.limit
					if got := b.TryAcquire(); got != want {
						rt.Fatalf("TryAcquire = %v, model %v", got, want)
					}
					if want {
						m.active++
						m.admitted++
						direct++
					} else {
						m.rejected++
					}
					check()
				},
				"release": func(rt *rapid.T) {
					release(rt)
					b.Release()
					m.dispatch(-1)
					check()
				},
				"releaseAt": func(rt *rapid.T) {
					release(rt)
					m.dispatch(now)
					want := m.pending
					m.pending = nil
					collect(b.ReleaseAt(t0.Add(now)), want, "ReleaseAt")
					check()
				},
				"granted": func(rt *rapid.T) {
					grants()
					check()
				},
				"time": func(rt *rapid.T) {
					now += time.Duration(rapid.IntRange(0, 1500).Draw(rt, "ms")) * time.Millisecond
				},
				"expire": func(rt *rapid.T) {
					want := m.passed
					m.passed = nil
					m.queue = slices.DeleteFunc(m.queue, func(id int) bool {
						if m.ticket[id] && m.deadline[id] > 0 && now >= m.deadline[id] {
							m.rejected++
							want = append(want, id)
							return true
						}
						return false
					})
					// The queue order of the newly expired; the passed-over
					// ones left the queue earlier, so they come first.
					exp, err := b.ExpireAt(t0.Add(now))
					got := make([]int, len(exp))
					for i, tk := range exp {
						got[i] = byTicket[tk]
						observed[got[i]] = "expired"
					}
					if !slices.Equal(got, want) || (len(want) > 0) != (err != nil) {
						rt.Fatalf("ExpireAt = %v, %v; model %v", got, err, want)
					}
					for _, id := range want {
						m.state[id] = "expired"
					}
					check()
				},
				"cancel": func(rt *rapid.T) {
					var waiting []int
					for _, id := range m.queue {
						waiting = append(waiting, id)
					}
					waiting = append(waiting, m.pending...)
					if len(waiting) == 0 {
						rt.Skip("nobody waits")
					}
					id := rapid.SampledFrom(waiting).Draw(rt, "waiter")
					if i := slices.Index(m.pending, id); i >= 0 {
						// Granted, not yet told: the permit goes back.
						m.pending = slices.Delete(m.pending, i, i+1)
						m.active--
						m.state[id] = "canceled"
						if !b.Cancel(tickets[id]) {
							rt.Fatalf("Cancel of granted ticket %d = false", id)
						}
						observed[id] = "canceled"
						m.dispatch(-1)
						check()
						return
					}
					m.queue = slices.DeleteFunc(m.queue, func(x int) bool { return x == id })
					m.state[id] = "canceled"
					canceled++
					if m.ticket[id] {
						if !b.Cancel(tickets[id]) {
							rt.Fatalf("Cancel of queued ticket %d = false", id)
						}
						observed[id] = "canceled"
					} else {
						calls[id].cancel()
					}
					check()
				},
				"update": func(rt *rapid.T) {
					m.limit = rapid.IntRange(1, 3).Draw(rt, "new limit")
					m.maxQueue = rapid.IntRange(0, 4).Draw(rt, "new queue")
					if err := b.Update(Config{MaxConcurrent: m.limit, MaxQueue: m.maxQueue, MaxWait: waitFor(m.maxQueue)}); err != nil {
						rt.Fatal(err)
					}
					m.dispatch(-1)
					check()
				},
			})
		})
	})
}
