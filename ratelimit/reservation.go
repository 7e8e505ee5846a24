package ratelimit

import "time"

// Reservation is a claim on tokens made by ReserveAt: the caller may act
// after Delay, or give the tokens back with Cancel if it will not act after
// all. It is a small value; ReserveAt allocates nothing.
type Reservation struct {
	l        *TokenBucket
	p        *params // the configuration it was made under
	ok       bool
	n        int64
	base     int64 // the TAT the reservation started from (its slot's start)
	end      int64 // the TAT it left behind
	act      int64 // when the caller may act, ns since the epoch
	wait     int64
	canceled bool
}

// OK reports whether the tokens were reserved.
func (r Reservation) OK() bool { return r.ok }

// Delay is how long after the reservation's time the caller may act. When
// the reservation is not OK, Delay is how long until the same request could
// be admitted at once, or math.MaxInt64 when it never could (more tokens
// than Burst).
func (r Reservation) Delay() time.Duration { return time.Duration(r.wait) }

// Cancel gives the tokens back, on the limiter's clock. See CancelAt.
func (r *Reservation) Cancel() {
	if r.ok && r.l != nil {
		r.cancelAt(r.l.now())
	}
}

// CancelAt gives the tokens back at now, for a caller that will not act. It
// does nothing once the reservation's time to act has come (the tokens
// count as used), after an Update (they were counted under another
// configuration), or on a second call. A bursty limiter gets the tokens
// back whatever was reserved after them (the bucket never overfills); a
// smooth one only when no later call has reserved a slot behind this one,
// so that the spacing it promised later callers still holds.
func (r *Reservation) CancelAt(now time.Time) {
	if r.ok && r.l != nil {
		r.cancelAt(r.l.at(now))
	}
}

func (r *Reservation) cancelAt(now int64) {
	if !r.ok || r.l == nil || r.canceled || now >= r.act {
		return
	}
	r.canceled = true
	l := r.l
	for {
		tat, p := l.load()
		if p != r.p {
			return
		}
		var newTat int64
		switch {
		case tat == r.end:
			newTat = r.base // nothing reserved since: undo exactly
		case p.smooth:
			return
		default:
			newTat = max(tat-r.n*p.interval, now)
		}
		if l.tat.CompareAndSwap(tat, newTat) {
			return
		}
	}
}
