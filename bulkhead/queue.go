package bulkhead

import "time"

// Ticket is a place in a Bulkhead's queue, taken with EnqueueAt by a caller
// that waits in explicit time (a simulator, an event loop) rather than
// blocking a goroutine in Acquire. Tickets wait in the same FIFO queue as
// blocked callers, under the same MaxQueue, and are granted permits in the
// same order. A Ticket is comparable, so it can key a map; the zero Ticket
// is no place at all.
type Ticket struct{ w *waiter }

// EnqueueAt asks for a permit at now without blocking. If one is free and
// nobody waits, the caller holds it at once (admitted true) and must
// Release it. If the queue is full, or there is none (MaxQueue zero), err
// is the *FullError of a QueueFull rejection, counted as such. Otherwise the
// caller is queued behind everyone already waiting and gets t: its wait
// runs out at now + MaxWait (never, when MaxWait is zero). Stats counts a
// queued ticket as Queued and Waited, then as admitted when ReleaseAt or
// Granted returns it, rejected when ExpireAt does, or cancelled by Cancel.
func (b *Bulkhead) EnqueueAt(now time.Time) (t Ticket, admitted bool, err error) {
	if b.p.tryAcquire(b.p.hint()) {
		return Ticket{}, true, nil
	}
	cfg := b.cfg.Load()
	if cfg.MaxQueue == 0 {
		return Ticket{}, false, b.reject(QueueFull)
	}
	b.mu.Lock()
	switch b.joinLocked(cfg.MaxQueue) {
	case joinTook:
		b.mu.Unlock()
		return Ticket{}, true, nil
	case joinFull:
		b.mu.Unlock()
		return Ticket{}, false, b.reject(QueueFull)
	}
	w := &waiter{state: ticketQueued} // not pooled: the Ticket keeps pointing at it
	if cfg.MaxWait > 0 {
		w.deadline = now.Add(cfg.MaxWait)
	}
	b.pushLocked(w)
	b.settleLocked()
	if w.state == ticketGranted {
		// A permit drained from a stash went to w at once: hand it over
		// here rather than through Granted.
		for i, g := range b.granted {
			if g.w == w {
				b.granted = append(b.granted[:i], b.granted[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return Ticket{}, true, nil
	}
	b.mu.Unlock()
	return Ticket{w}, false, nil
}

// ReleaseAt returns a permit at now, as Release does, and returns the
// tickets that were handed a permit, in queue order: each owner now holds a
// permit and must Release it in turn. A ticket whose wait ran out by now is
// passed over (ExpireAt reports it), so the outcome does not depend on
// whether ReleaseAt or ExpireAt is called first for the same instant. The
// result also holds tickets granted since the last ReleaseAt or Granted by
// permits freed otherwise (Release, an Update that raised the limit).
// Under Adaptive isolation it feeds no sample to the limit algorithm.
func (b *Bulkhead) ReleaseAt(now time.Time) (granted []Ticket) {
	if b.p.put() {
		b.mu.Lock()
		b.dispatchAtLocked(now)
		b.mu.Unlock()
	}
	return b.Granted()
}

// Granted returns the tickets handed a permit since the last ReleaseAt or
// Granted, in queue order, for a caller that frees permits some other way
// (ReleaseSampleAt, Update). Each owner holds a permit and must Release it.
func (b *Bulkhead) Granted() []Ticket {
	b.mu.Lock()
	g := b.granted
	b.granted = nil
	for _, t := range g {
		t.w.state = ticketHeld
	}
	b.mu.Unlock()
	return g
}

// ExpireAt takes the tickets whose wait has run out by now out of the queue
// and returns them in queue order, with the *FullError (reason WaitExpired)
// each is rejected with; err is nil when there are none. They count as
// rejections in Stats and are passed to OnReject. Call it when a ticket's
// wait is due (its EnqueueAt time plus MaxWait); a ticket never expires
// otherwise, except that ReleaseAt passes over it.
func (b *Bulkhead) ExpireAt(now time.Time) (expired []Ticket, err error) {
	b.mu.Lock()
	for w := b.head; w != nil; {
		next := w.next
		if w.ch == nil && w.expiredBy(now) {
			b.expireLocked(w)
		}
		w = next
	}
	expired = b.expired
	b.expired = nil
	b.mu.Unlock()
	if len(expired) == 0 {
		return nil, nil
	}
	e := b.errs.Load()[WaitExpired]
	if l := b.cfg.Load().OnReject; l != nil {
		for range expired {
			l(e)
		}
	}
	return expired, e
}

// Cancel withdraws t, whose owner gave up waiting (its deadline passed, say),
// and reports whether it was still waiting: queued, in which case it leaves
// the queue and counts as cancelled, or granted a permit not yet returned by
// ReleaseAt or Granted, in which case the permit goes back to the bulkhead
// (to the next in line). It returns false for a ticket already returned by
// ReleaseAt, Granted or ExpireAt, or cancelled before: the owner of a
// granted ticket holds a permit and releases it with Release.
func (b *Bulkhead) Cancel(t Ticket) bool {
	w := t.w
	if w == nil {
		return false
	}
	b.mu.Lock()
	switch w.state {
	case ticketQueued:
		b.unlinkLocked(w)
		w.state = ticketCanceled
		b.mu.Unlock()
		b.canceled.Add(1)
		return true
	case ticketGranted:
		for i, g := range b.granted {
			if g == t {
				b.granted = append(b.granted[:i], b.granted[i+1:]...)
				break
			}
		}
		w.state = ticketCanceled
		b.mu.Unlock()
		b.Release() // admitted, then given back, as for a blocked caller that gave up too late
		return true
	}
	b.mu.Unlock()
	return false
}

// expiredBy reports whether a ticket's wait has run out by now.
func (w *waiter) expiredBy(now time.Time) bool {
	return !w.deadline.IsZero() && !now.Before(w.deadline)
}

// expireLocked takes the queued ticket w out of the queue as rejected, for
// ExpireAt to report.
func (b *Bulkhead) expireLocked(w *waiter) {
	b.unlinkLocked(w)
	w.state = ticketExpired
	b.rejected.Inc()
	b.expired = append(b.expired, Ticket{w})
}
