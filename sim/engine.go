package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/sluice-go/sluice"
)

// epoch is virtual time zero. Policies see epoch.Add(elapsed), so every run
// hands them the same instants.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// eventQueue is a binary min-heap of events ordered by time and, at equal
// times, by the order they were scheduled: the tie-break is what makes a run
// repeat exactly.
type eventQueue[E any] struct {
	items []event[E]
	seq   uint64
}

type event[E any] struct {
	at  int64 // nanoseconds since epoch
	seq uint64
	ev  E
}

func (a *event[E]) before(b *event[E]) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *eventQueue[E]) len() int { return len(q.items) }

func (q *eventQueue[E]) push(at int64, ev E) {
	q.seq++
	q.items = append(q.items, event[E]{at: at, seq: q.seq, ev: ev})
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.items[i].before(&q.items[p]) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *eventQueue[E]) pop() (int64, E) {
	top := q.items[0]
	n := len(q.items) - 1
	q.items[0] = q.items[n]
	var zero event[E]
	q.items[n] = zero // drop the reference held by the slot
	q.items = q.items[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.items[r].before(&q.items[l]) {
			m = r
		}
		if !q.items[m].before(&q.items[i]) {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top.at, top.ev
}

// world is the discrete-event loop of one simulated run: a single goroutine
// pops the earliest event, moves virtual time to it and runs it.
//
// Besides the heap it keeps lanes: FIFOs for events scheduled a fixed delay
// after they are made (the per-attempt timeouts), whose times therefore
// never decrease. They keep the heap small; events of all queues share one
// sequence, so the order is the same as with the heap alone.
type world struct {
	q     eventQueue[func()]
	lanes []*lane
	now   int64
	clock vclock
}

// lane is a FIFO of events in time order.
type lane struct {
	items []event[func()]
	head  int
}

func newWorld() *world {
	w := &world{}
	w.clock = vclock{w}
	return w
}

// at schedules fn at virtual time t (never earlier than now).
func (w *world) at(t int64, fn func()) {
	if t < w.now {
		t = w.now
	}
	w.q.push(t, fn)
}

// after schedules fn d from now.
func (w *world) after(d time.Duration, fn func()) { w.at(w.now+int64(d), fn) }

// newLane returns a lane of w.
func (w *world) newLane() *lane {
	l := &lane{}
	w.lanes = append(w.lanes, l)
	return l
}

// atLane schedules fn at t on lane l, whose last event must not be later
// than t; otherwise fn goes on the heap.
func (w *world) atLane(l *lane, t int64, fn func()) {
	if n := len(l.items); n > l.head && l.items[n-1].at > t || t < w.now {
		w.at(t, fn)
		return
	}
	w.q.seq++
	l.items = append(l.items, event[func()]{at: t, seq: w.q.seq, ev: fn})
}

// next removes and returns the earliest event of the heap and the lanes.
func (w *world) next() (int64, func(), bool) {
	var best *event[func()]
	var from *lane
	if w.q.len() > 0 {
		best = &w.q.items[0]
	}
	for _, l := range w.lanes {
		if l.head < len(l.items) && (best == nil || l.items[l.head].before(best)) {
			best, from = &l.items[l.head], l
		}
	}
	if best == nil {
		return 0, nil, false
	}
	if from == nil {
		t, fn := w.q.pop()
		return t, fn, true
	}
	e := from.items[from.head]
	from.items[from.head] = event[func()]{}
	from.head++
	if from.head == len(from.items) {
		from.items, from.head = from.items[:0], 0
	} else if from.head >= 1024 && from.head*2 >= len(from.items) {
		n := copy(from.items, from.items[from.head:])
		clear(from.items[n:])
		from.items, from.head = from.items[:n], 0
	}
	return e.at, e.ev, true
}

// time returns now as the time.Time the policies are given.
func (w *world) time() time.Time { return epoch.Add(time.Duration(w.now)) }

// run processes events up to and including time until, then stops, leaving
// later events unprocessed. check, if not nil, is called every few thousand
// events and stops the run when it returns false.
func (w *world) run(until int64, check func() bool) bool {
	n := 0
	for {
		t, fn, ok := w.next()
		if !ok {
			return true
		}
		if t > until {
			return true
		}
		w.now = t
		fn()
		if n++; n%4096 == 0 && check != nil && !check() {
			return false
		}
	}
}

// vclock is the policies' Clock during a run: it reads the event loop's
// virtual time. The simulator drives the policies through their
// explicit-time methods, so this serves only the reads they make on their
// own (a breaker's start time, statistics); none of them sleeps on it.
type vclock struct{ w *world }

func (c vclock) Now() time.Time { return c.w.time() }

func (c vclock) NewTimer(time.Duration) sluice.Timer {
	panic("sim: a policy asked for a timer; the simulator drives policies through their explicit-time methods only")
}

// newRand returns a PCG source seeded from seed and a stream path, so that
// each purpose (a client's arrivals, the server's service times, ...) draws
// from its own reproducible stream, independent of the policy under test.
func newRand(seed uint64, path ...uint64) *rand.Rand {
	h := splitmix(seed ^ 0x5eed5eed5eed5eed)
	for _, p := range path {
		h = splitmix(h ^ p)
	}
	return rand.New(rand.NewPCG(h, splitmix(h^0x9e3779b97f4a7c15)))
}

// splitmix is the SplitMix64 finaliser, a good 64-bit mixer.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// expDur draws an exponential duration with the given mean.
func expDur(r *rand.Rand, mean time.Duration) int64 {
	return int64(r.ExpFloat64() * float64(mean))
}

// absNormal draws |Normal(mean, sd)|, the network delay model of Brooker's
// simulator.
func absNormal(r *rand.Rand, mean, sd time.Duration) int64 {
	return int64(math.Abs(r.NormFloat64()*float64(sd) + float64(mean)))
}

// logNormal draws a log-normal duration with the given mean and shape sigma.
func logNormal(r *rand.Rand, mean time.Duration, sigma float64) int64 {
	mu := math.Log(float64(mean)) - sigma*sigma/2
	return int64(math.Exp(mu + sigma*r.NormFloat64()))
}
