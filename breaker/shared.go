package breaker

import (
	"errors"
	"strconv"
	"time"
)

// Shared links a Breaker to the breakers of the same name in other
// instances of a program, so that the fleet acts as one breaker: when one
// instance opens, the others open too, the fleet sends the configured
// number of half-open probes in total rather than per instance, and the
// probes' outcomes close or reopen every instance. sluiceredis.BreakerSync
// keeps the shared record on Redis; the breaker package itself knows no
// store.
//
// The breaker keeps running its own rules and stays the only judge of its
// calls: the closed path never waits on the link. It tells the link what
// its rules did (Report), asks it for a probe slot when a half-open period
// is the fleet's (AcquireProbe), and learns the fleet's state through the
// Link it hands to Attach. When the link fails it says so (Link.LostAt)
// and the breaker goes on alone, by its local rules, until the next view
// (Link.ApplyAt) binds it to the fleet again.
type Shared interface {
	// Attach connects the link to a breaker; New calls it once, last.
	// A link serves one breaker: Attach returns an error if it is called
	// again. It may call l.ApplyAt before it returns (the state the fleet
	// is in), so that a breaker created while the fleet is open starts open.
	Attach(l *Link) error

	// Report tells the link what the breaker's rules did. It is called
	// under the breaker's lock: it must not block and must not call the
	// breaker (queue the report and act on it elsewhere).
	Report(r Report)

	// AcquireProbe asks for one of the fleet's slots probes of the half-open
	// period of record epoch, for at most lease (then the slot is free
	// again, so that a dead instance does not hold it); slots is the
	// fleet's number (Config.HalfOpenCalls). It returns whether a slot was
	// granted, and if not how long to wait before asking again. An error
	// means the fleet could not be asked: the breaker then probes by its
	// local rules. It must return within the link's own short timeout; it
	// is called without the breaker's lock, by the caller that would probe.
	AcquireProbe(epoch uint64, slots int, lease time.Duration) (granted bool, retry time.Duration, err error)

	// Close stops the link: its goroutines end, and it calls the Link no
	// more. Breaker.Close calls it.
	Close() error
}

// Fleet is the state of the fleet's breaker as the shared record holds it,
// handed to Link.ApplyAt.
type Fleet struct {
	// Epoch names the record: it grows with every change of the fleet's
	// state (open, reopen, close). Zero means there is no record (the
	// fleet never opened, or the record expired): the fleet holds no
	// opinion, and a breaker bound to it goes on by its local rules.
	Epoch uint64
	// Open says the fleet is open until ProbeAt and half-open after it;
	// false says it closed.
	Open bool
	// ProbeAt is the end of the open period on the breaker's clock.
	ProbeAt time.Time
	// Opens is the openings since the fleet last closed after successful
	// probes; it drives Config.OpenBackoff for every instance alike.
	Opens int
	// Trip is the figures of the opening, as far as the record has them:
	// the Reason and a Cause naming the instance that opened it.
	Trip Trip
}

// ReportKind is what a breaker's rules did, told to its Shared link.
type ReportKind uint8

// The reports.
const (
	// ReportTrip: the rules opened the breaker from closed, or reopened it
	// in a half-open period that was its own. The fleet opens on it (in a
	// quorum, counts it as a vote).
	ReportTrip ReportKind = iota + 1
	// ReportReopen: a probe of the fleet's half-open period Epoch failed,
	// was slow or hung. The fleet reopens.
	ReportReopen
	// ReportProbeSuccess: a probe of the fleet's half-open period Epoch
	// succeeded; its slot is free, and Successes of them close the fleet.
	ReportProbeSuccess
	// ReportProbeFreed: a probe of the fleet's half-open period Epoch ended
	// as neither success nor failure; its slot is free.
	ReportProbeFreed
)

// String returns "trip", "reopen", "probe-success" or "probe-freed".
func (k ReportKind) String() string {
	switch k {
	case ReportTrip:
		return "trip"
	case ReportReopen:
		return "reopen"
	case ReportProbeSuccess:
		return "probe-success"
	case ReportProbeFreed:
		return "probe-freed"
	}
	return "ReportKind(" + strconv.Itoa(int(k)) + ")"
}

// Report is one thing a breaker's rules did, for its Shared link.
type Report struct {
	// Kind is what the rules did.
	Kind ReportKind
	// Epoch is the fleet record the breaker's state was bound to; zero for
	// a ReportTrip from a state of its own.
	Epoch uint64
	// At is when it happened, on the breaker's clock.
	At time.Time
	// OpenFor is, for ReportTrip and ReportReopen, the open period the
	// rules chose (OpenBackoff applied to Fleet.Opens).
	OpenFor time.Duration
	// Successes is, for ReportProbeSuccess, the probe successes that close
	// the fleet (Config.SuccessThreshold).
	Successes int
	// Trip is, for ReportTrip and ReportReopen, the figures of the opening.
	Trip Trip
}

// Link is a breaker's side of its Shared link, handed to Shared.Attach:
// what the link calls to tell the breaker about the fleet. Its methods may
// be called from any goroutine, never under a lock the link's Report takes.
type Link struct{ b *Breaker }

// Name returns the breaker's Config.Name.
func (l *Link) Name() string { return l.b.name }

// Now returns the time of the breaker's Clock, for the times in a Fleet.
func (l *Link) Now() time.Time { return l.b.set.Load().clock.Now() }

// ApplyAt merges the fleet's state f, as known at time now, into the
// breaker. A record newer than the last one applied wins over the local
// state: an open fleet opens the breaker until f.ProbeAt (half-open after
// it) and binds it to the record; a closed fleet closes a breaker bound to
// the fleet. A breaker open by its own rules and not bound (a trip the
// fleet has not taken up, or one under a quorum not reached) stays open
// on a closed record: only its own probes close it. An older record, or the
// same one again, changes nothing, except that after LostAt the same open
// record binds the breaker again. A record of epoch zero (none) unbinds
// the breaker, which goes on by its local rules. Manual modes (ForceOpen,
// Disable, SetMetricsOnly) note the record and change nothing.
func (l *Link) ApplyAt(now time.Time, f Fleet) {
	b := l.b
	s := b.set.Load()
	b.mu.Lock()
	b.advanceLocked(now, s)
	b.applyFleetLocked(now, s, f)
	b.armLocked(now, s)
	b.publishLocked()
	b.unlockAndNotify()
}

// LostAt tells the breaker, at time now, that the link cannot reach the
// fleet: it goes on by its local rules (it probes by itself, and its own
// probe successes close it) until the next ApplyAt.
func (l *Link) LostAt(now time.Time) {
	b := l.b
	s := b.set.Load()
	b.mu.Lock()
	b.advanceLocked(now, s)
	b.sh.lost = true
	b.unbindLocked(now, s)
	b.armLocked(now, s)
	b.publishLocked()
	b.unlockAndNotify()
}

// shared is a breaker's state of its Shared link, guarded by Breaker.mu.
type shared struct {
	link   Shared
	epoch  uint64    // the newest fleet record applied
	bound  bool      // the current open or half-open period is the fleet's
	lost   bool      // LostAt since the last ApplyAt
	asking bool      // a probe slot request is out
	denied time.Time // no probe slot is asked for before then
	own    bool      // the breaker's latest opening was by its own rules
}

// attach connects b to its Shared link, at the end of New.
func (b *Breaker) attach(link Shared) error {
	b.mu.Lock()
	b.sh = &shared{link: link}
	b.mu.Unlock()
	return link.Attach(&Link{b: b})
}

// sameShared reports an Update that would change Config.Shared.
func (b *Breaker) sameShared(cfg Config) error {
	if cfg.Shared != b.set.Load().cfg.Shared {
		return errors.New("breaker: Update cannot change Config.Shared")
	}
	return nil
}

// closeShared closes the link, at Close.
func (b *Breaker) closeShared() error {
	if b.sh == nil {
		return nil
	}
	return b.sh.link.Close()
}

// applyFleetLocked is ApplyAt under the lock.
func (b *Breaker) applyFleetLocked(now time.Time, s *settings, f Fleet) {
	sh := b.sh
	rebind := sh.lost && f.Open
	sh.lost = false
	switch {
	case f.Epoch == 0:
		b.unbindLocked(now, s)
		return
	case f.Epoch < sh.epoch, f.Epoch == sh.epoch && !rebind:
		return
	}
	sh.epoch = f.Epoch
	sh.denied = time.Time{}
	if b.mode != modeAuto {
		return
	}
	if !f.Open {
		if sh.bound && b.state != ruleClosed {
			b.opens = 0
			b.toClosedLocked(now, s)
		}
		sh.bound = false
		return
	}
	b.opens = f.Opens
	sh.bound = true
	b.fleetOpenLocked(now, f)
}

// fleetOpenLocked puts the breaker in the fleet's open period f: open until
// f.ProbeAt, or half-open if that has passed. A breaker open by its own
// rules (most often the very trip or failed probe that opened the record)
// keeps that opening's figures and cause, and takes the fleet's ProbeAt.
func (b *Breaker) fleetOpenLocked(now time.Time, f Fleet) {
	from := b.state
	if from != ruleOpen || !b.sh.own {
		b.trip = f.Trip
		if b.trip.At.IsZero() {
			b.trip.At = now
		}
	}
	b.sh.own = false
	b.gen++
	b.probesOut, b.probeOK = 0, 0
	if !now.Before(f.ProbeAt) {
		b.state = ruleHalfOpen
		b.progress = now
		if b.busyErr.cause != b.trip.Cause {
			b.busyErr = &rejection{b: b, kind: rejectBusy, cause: b.trip.Cause}
		}
	} else {
		b.state = ruleOpen
		b.probeAt = f.ProbeAt
		b.openRej = &rejection{b: b, gen: b.gen, probeAt: b.probeAt, cause: b.trip.Cause, kind: rejectOpen}
		b.rej.Store(b.openRej)
	}
	if b.state != from {
		b.ruleChangeLocked(from, now)
	}
}

// unbindLocked detaches the current period from the fleet: the breaker
// probes by itself, and a half-open breaker that already has its probe
// successes closes.
func (b *Breaker) unbindLocked(now time.Time, s *settings) {
	sh := b.sh
	sh.bound = false
	sh.denied = time.Time{}
	if b.mode == modeAuto && b.state == ruleHalfOpen && b.probeOK >= s.successThreshold {
		b.opens = 0
		b.toClosedLocked(now, s)
	}
}

// fleetProbeLocked reports whether a call to a half-open breaker must ask
// the fleet for a probe slot: the period is the fleet's and the link works.
func (b *Breaker) fleetProbeLocked() bool {
	sh := b.sh
	return sh != nil && sh.bound && !sh.lost && b.mode == modeAuto && b.state == ruleHalfOpen
}

// allowFleetProbe decides a call to a half-open breaker bound to the
// fleet: it is a probe only if the fleet grants a slot. It is called with
// the lock held and releases it; the request to the fleet is made without
// the lock, by this caller alone (others are rejected meanwhile).
func (b *Breaker) allowFleetProbe(now time.Time, clocked bool, s *settings) (Permit, error) {
	sh := b.sh
	if b.probesOut >= s.halfOpenCalls || sh.asking || now.Before(sh.denied) {
		return b.rejectLocked(now, clocked, s, b.busyErr)
	}
	sh.asking = true
	epoch, gen := sh.epoch, b.gen
	b.publishLocked()
	b.unlockAndNotify()
	granted, retry, err := sh.link.AcquireProbe(epoch, s.halfOpenCalls, s.halfOpenMaxWait)
	b.mu.Lock()
	sh.asking = false
	changed := gen != b.gen
	switch {
	case err != nil:
		sh.lost = true
		b.unbindLocked(now, s)
	case granted && (changed || !b.fleetProbeLocked() || b.probesOut >= s.halfOpenCalls):
		granted = false // the state moved on meanwhile: give the slot back
		sh.link.Report(Report{Kind: ReportProbeFreed, Epoch: epoch, At: now})
	case !granted && !changed:
		sh.denied = now.Add(retry)
	}
	var p Permit
	switch {
	case b.mode == modeForcedOpen:
		return b.rejectLocked(now, clocked, s, b.forcedErr)
	case b.state == ruleHalfOpen && b.probesOut < s.halfOpenCalls && (err != nil || granted):
		if b.probesOut == 0 {
			b.progress = later(b.progress, now)
		}
		b.probesOut++
		p = Permit{b: b, gen: b.gen, kind: permitProbe}
	case b.state == ruleClosed:
		p = Permit{b: b, gen: b.gen, kind: permitClosed}
	case b.state == ruleOpen:
		return b.rejectLocked(now, clocked, s, b.openRej)
	default:
		return b.rejectLocked(now, clocked, s, b.busyErr)
	}
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	b.unlockAndNotify()
	return p, nil
}

// rejectLocked rejects a call with r and releases the lock.
func (b *Breaker) rejectLocked(now time.Time, clocked bool, s *settings, r *rejection) (Permit, error) {
	if clocked {
		b.armLocked(now, s)
	}
	b.publishLocked()
	b.unlockAndNotify()
	b.rejected.Inc()
	return Permit{}, r
}

// sharedOpenedLocked tells the link that the rules opened the breaker
// from state from, with the figures of b.trip, until b.probeAt.
func (b *Breaker) sharedOpenedLocked(from uint8, at time.Time) {
	sh := b.sh
	if sh == nil || b.mode != modeAuto {
		return
	}
	sh.own = true
	r := Report{Kind: ReportTrip, At: at, OpenFor: b.probeAt.Sub(at), Trip: b.trip}
	if from == ruleHalfOpen && sh.bound && !sh.lost {
		r.Kind, r.Epoch = ReportReopen, sh.epoch
	} else {
		sh.bound = false
	}
	sh.link.Report(r)
}

// sharedProbeOKLocked reports whether a probe success belongs to the
// fleet's half-open period: the link is told, and the fleet, not the local
// count, closes the breaker.
func (b *Breaker) sharedProbeOKLocked(now time.Time, s *settings) bool {
	sh := b.sh
	if sh == nil || !sh.bound || sh.lost || b.mode != modeAuto {
		return false
	}
	sh.link.Report(Report{Kind: ReportProbeSuccess, Epoch: sh.epoch, At: now, Successes: s.successThreshold})
	return true
}

// sharedProbeFreedLocked tells the link that a probe of the fleet's
// half-open period ended as neither success nor failure.
func (b *Breaker) sharedProbeFreedLocked(now time.Time) {
	sh := b.sh
	if sh != nil && sh.bound && !sh.lost && b.mode == modeAuto {
		sh.link.Report(Report{Kind: ReportProbeFreed, Epoch: sh.epoch, At: now})
	}
}
