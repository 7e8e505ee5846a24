package breaker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-go/sluice/sluicetest"
	"pgregory.net/rapid"
)

// memFleet is the shared record that sluiceredis keeps on Redis, restated
// in memory with the same rules, so that the breaker side of the protocol
// can be tested with virtual time and a deterministic delivery order: the
// test decides when queued reports reach the record (deliver) and which
// links are cut off (lose). It is a model of the store, not of the
// breaker; the breakers under test are real.
type memFleet struct {
	clock  *sluicetest.FakeClock
	quorum int           // instances whose trips open the fleet; 0 or 1: any one
	window time.Duration // a trip counts towards the quorum this long

	epoch  uint64
	open   bool
	until  time.Time
	opens  int
	ok     int
	by     string
	reason TripReason
	leases map[string]time.Time // probe slot → end of its lease
	votes  map[string]time.Time // instance → time of its latest trip

	links []*memLink
}

type memLink struct {
	f     *memFleet
	id    string
	l     *Link
	queue []Report
	down  bool     // cut off: reports are lost, AcquireProbe fails, no views
	held  []string // probe slots this instance holds
	n     int
}

func newMemFleet(clock *sluicetest.FakeClock, quorum int) *memFleet {
	return &memFleet{clock: clock, quorum: quorum, window: time.Minute,
		leases: map[string]time.Time{}, votes: map[string]time.Time{}}
}

// join returns a new instance's link to the fleet.
func (f *memFleet) join() *memLink {
	ml := &memLink{f: f, id: fmt.Sprintf("i%d", len(f.links))}
	f.links = append(f.links, ml)
	return ml
}

func (ml *memLink) Attach(l *Link) error {
	if ml.l != nil {
		return errors.New("attached twice")
	}
	ml.l = l
	if !ml.down {
		l.ApplyAt(ml.f.clock.Now(), ml.f.view())
	}
	return nil
}

func (ml *memLink) Report(r Report) {
	if !ml.down {
		ml.queue = append(ml.queue, r)
	}
}

var errCut = errors.New("cut off")

func (ml *memLink) AcquireProbe(epoch uint64, slots int, lease time.Duration) (bool, time.Duration, error) {
	if ml.down {
		return false, 0, errCut
	}
	f := ml.f
	now := f.clock.Now()
	if !f.open || f.epoch != epoch || now.Before(f.until) {
		ml.l.ApplyAt(now, f.view()) // the asker is behind: it gets the record
		return false, 0, nil
	}
	retry := lease
	for k, end := range f.leases {
		if !now.Before(end) {
			delete(f.leases, k)
		} else {
			retry = min(retry, end.Sub(now))
		}
	}
	if len(f.leases) >= slots {
		return false, retry, nil
	}
	ml.n++
	k := fmt.Sprintf("%s:%d", ml.id, ml.n)
	f.leases[k] = now.Add(lease)
	ml.held = append(ml.held, k)
	return true, 0, nil
}

func (ml *memLink) Close() error { return nil }

// release frees one slot held by ml.
func (ml *memLink) release() {
	if len(ml.held) > 0 {
		delete(ml.f.leases, ml.held[0])
		ml.held = ml.held[1:]
	}
}

func (f *memFleet) view() Fleet {
	if f.epoch == 0 {
		return Fleet{}
	}
	v := Fleet{Epoch: f.epoch, Open: f.open, Opens: f.opens}
	if f.open {
		v.ProbeAt = f.until
		v.Trip = Trip{Reason: f.reason, Cause: fmt.Errorf("opened by %s", f.by)}
	}
	return v
}

// publish sends the record to every instance that is not cut off.
func (f *memFleet) publish() {
	v := f.view()
	for _, ml := range f.links {
		if !ml.down && ml.l != nil {
			ml.l.ApplyAt(f.clock.Now(), v)
		}
	}
}

// handle applies one report of ml to the record, as the scripts do, and
// answers ml with the record (as the script's reply).
func (f *memFleet) handle(ml *memLink, r Report) {
	now := f.clock.Now()
	changed := false
	switch r.Kind {
	case ReportTrip:
		if f.open {
			break
		}
		if f.quorum > 1 {
			f.votes[ml.id] = now
			for k, at := range f.votes {
				if now.Sub(at) > f.window {
					delete(f.votes, k)
				}
			}
			if len(f.votes) < f.quorum {
				break
			}
		}
		f.openFor(ml, now, r.OpenFor, r.Trip.Reason)
		changed = true
	case ReportReopen:
		if f.open && f.epoch == r.Epoch {
			f.openFor(ml, now, r.OpenFor, r.Trip.Reason)
			changed = true
		}
	case ReportProbeSuccess, ReportProbeFreed:
		if !f.open || f.epoch != r.Epoch {
			break
		}
		ml.release()
		if r.Kind == ReportProbeSuccess {
			f.ok++
			if f.ok >= r.Successes {
				f.epoch++
				f.open, f.opens, f.ok = false, 0, 0
				clear(f.leases)
				changed = true
			}
		}
	}
	if changed {
		f.publish()
	} else {
		ml.l.ApplyAt(now, f.view())
	}
}

func (f *memFleet) openFor(ml *memLink, now time.Time, d time.Duration, why TripReason) {
	f.epoch++
	f.open, f.until, f.ok, f.by, f.reason = true, now.Add(d), 0, ml.id, why
	f.opens++
	clear(f.leases)
	clear(f.votes)
	for _, o := range f.links {
		o.held = nil
	}
}

// deliver hands every queued report to the record, in order, until no
// link has any left (a view can make a breaker report again).
func (f *memFleet) deliver(t tb) {
	for range 100 {
		busy := false
		for _, ml := range f.links {
			for len(ml.queue) > 0 {
				r := ml.queue[0]
				ml.queue = ml.queue[1:]
				f.handle(ml, r)
				busy = true
			}
		}
		if !busy {
			return
		}
	}
	t.Fatal("reports kept coming after 100 rounds")
}

// lose cuts ml off, as a failed round trip does: the breaker is told.
func (ml *memLink) lose() {
	ml.down, ml.queue = true, nil
	ml.l.LostAt(ml.f.clock.Now())
}

// heal reconnects ml and re-reads the record, as the sync does.
func (ml *memLink) heal() {
	ml.down = false
	ml.l.ApplyAt(ml.f.clock.Now(), ml.f.view())
}

var errDown = errors.New("down")

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// fleetOf returns n breakers of cfg joined to one memFleet.
func fleetOf(t tb, n, quorum int, cfg Config) (*memFleet, []*Breaker) {
	t.Helper()
	clock := sluicetest.NewFakeClock(t0)
	f := newMemFleet(clock, quorum)
	bs := make([]*Breaker, n)
	for i := range bs {
		c := cfg
		c.Clock = clock
		c.Shared = f.join()
		bs[i] = MustNew(c)
	}
	return f, bs
}

// fail runs failing calls through b at the fleet's time until it opens or
// n calls were made.
func fail(t tb, f *memFleet, b *Breaker, n int) {
	t.Helper()
	for range n {
		p, err := b.AllowAt(f.clock.Now())
		if err != nil {
			return
		}
		p.DoneAt(f.clock.Now(), Failure, 0)
	}
}

func TestSharedTripOpensEveryInstance(t *testing.T) {
	f, bs := fleetOf(t, 3, 0, Config{FailureThreshold: 2, OpenFor: 10 * time.Second})
	fail(t, f, bs[0], 2)
	if got := bs[1].StateAt(f.clock.Now()); got != StateClosed {
		t.Fatalf("before delivery, instance 1 is %v, want closed", got)
	}
	f.deliver(t)
	for i, b := range bs {
		if _, err := b.AllowAt(f.clock.Now()); !errors.Is(err, ErrOpen) {
			t.Fatalf("instance %d after the fleet opened: AllowAt error %v, want ErrOpen", i, err)
		}
	}
	if !f.open || f.until != t0.Add(10*time.Second) {
		t.Fatalf("record open=%v until %v, want open until %v", f.open, f.until, t0.Add(10*time.Second))
	}
	// The instance that tripped keeps its own cause; the others name the
	// instance that opened the fleet.
	if c := bs[0].StatsAt(f.clock.Now()).LastTrip.Cause; c != nil {
		t.Fatalf("the tripping instance took the record's cause %v for its own (none: DoneAt carries no error)", c)
	}
	if c := bs[2].StatsAt(f.clock.Now()).LastTrip.Cause; c == nil || c.Error() != "opened by i0" {
		t.Fatalf("instance 2's trip cause = %v, want the record's", c)
	}
	f.clock.Advance(10 * time.Second)
	for i, b := range bs {
		if got := b.StateAt(f.clock.Now()); got != StateHalfOpen {
			t.Fatalf("instance %d at the end of the open period is %v, want half-open", i, got)
		}
	}
}

// The fleet sends HalfOpenCalls probes at once in total, whichever
// instances the callers come to, and SuccessThreshold successes close
// every instance.
func TestSharedProbesAreCountedFleetWide(t *testing.T) {
	f, bs := fleetOf(t, 3, 0, Config{FailureThreshold: 1, OpenFor: time.Second, HalfOpenCalls: 2, SuccessThreshold: 2})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	f.clock.Advance(time.Second)
	var probes []Permit
	for round := range 5 {
		for i, b := range bs {
			p, err := b.AllowAt(f.clock.Now())
			switch {
			case err == nil && p.Probe():
				probes = append(probes, p)
			case err == nil:
				t.Fatalf("round %d instance %d: a half-open fleet admitted a call that is no probe", round, i)
			case !errors.Is(err, ErrOpen):
				t.Fatalf("round %d instance %d: %v", round, i, err)
			}
		}
	}
	if len(probes) != 2 {
		t.Fatalf("%d probes admitted across 3 instances, want HalfOpenCalls = 2 in total", len(probes))
	}
	for _, p := range probes {
		p.DoneAt(f.clock.Now(), Success, 0)
	}
	f.deliver(t)
	for i, b := range bs {
		if got := b.StateAt(f.clock.Now()); got != StateClosed {
			t.Fatalf("instance %d after 2 fleet-wide probe successes is %v, want closed", i, got)
		}
	}
}

// A failed probe reopens the fleet for everyone, with the backoff the
// fleet's count of openings gives.
func TestSharedProbeFailureReopensEveryInstance(t *testing.T) {
	f, bs := fleetOf(t, 2, 0, Config{FailureThreshold: 1, OpenFor: time.Second,
		OpenBackoff: Backoff{Multiplier: 2}})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	f.clock.Advance(time.Second)
	p, err := bs[1].AllowAt(f.clock.Now())
	if err != nil || !p.Probe() {
		t.Fatalf("instance 1 half-open: permit %+v, error %v; want a probe", p, err)
	}
	p.DoneAt(f.clock.Now(), Failure, 0)
	f.deliver(t)
	want := f.clock.Now().Add(2 * time.Second)
	if f.until != want || f.opens != 2 {
		t.Fatalf("record until %v opens %d, want until %v (the second opening, doubled) opens 2", f.until, f.opens, want)
	}
	for i, b := range bs {
		st := b.StatsAt(f.clock.Now())
		if st.State != StateOpen || st.NextProbeIn != 2*time.Second {
			t.Fatalf("instance %d: %v with next probe in %v, want open for 2s", i, st.State, st.NextProbeIn)
		}
		// Both show the reopening: instance 1 its own, instance 0 the record's.
		if st.LastTrip.Reason != TripProbeFailed || !st.LastTrip.At.Equal(f.clock.Now()) {
			t.Fatalf("instance %d: last trip %v at %v, want probe-failed now", i, st.LastTrip.Reason, st.LastTrip.At)
		}
	}
	if c := bs[1].StatsAt(f.clock.Now()).LastTrip.Cause; c != nil {
		t.Fatalf("instance 1 took the record's cause %v for its own failed probe's", c)
	}
}

// An instance created while the fleet is open starts open; one created
// after the open period starts half-open and asks the fleet for a slot.
func TestSharedLateJoinerStartsOpen(t *testing.T) {
	f, bs := fleetOf(t, 1, 0, Config{FailureThreshold: 1, OpenFor: 10 * time.Second})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	late := MustNew(Config{FailureThreshold: 1, OpenFor: 10 * time.Second, Clock: f.clock, Shared: f.join()})
	if got := late.StateAt(f.clock.Now()); got != StateOpen {
		t.Fatalf("a breaker created while the fleet is open is %v, want open", got)
	}
	f.clock.Advance(11 * time.Second)
	later := MustNew(Config{FailureThreshold: 1, OpenFor: 10 * time.Second, Clock: f.clock, Shared: f.join()})
	if got := later.StateAt(f.clock.Now()); got != StateHalfOpen {
		t.Fatalf("a breaker created after the open period is %v, want half-open", got)
	}
}

// Under a quorum of 2, one instance's trip opens only that instance; a
// second instance's trip within the window opens the fleet.
func TestSharedQuorum(t *testing.T) {
	f, bs := fleetOf(t, 3, 2, Config{FailureThreshold: 1, OpenFor: 10 * time.Second})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	if f.open {
		t.Fatal("one trip opened the fleet under a quorum of 2")
	}
	if got := bs[0].StateAt(f.clock.Now()); got != StateOpen {
		t.Fatalf("the instance that tripped is %v, want open by its own rules", got)
	}
	for _, b := range bs[1:] {
		if _, err := b.AllowAt(f.clock.Now()); err != nil {
			t.Fatalf("an instance that did not trip rejects: %v", err)
		}
	}
	f.clock.Advance(5 * time.Second)
	fail(t, f, bs[1], 1)
	f.deliver(t)
	if !f.open {
		t.Fatal("two trips within the window did not open the fleet")
	}
	for i, b := range bs {
		st := b.StatsAt(f.clock.Now())
		if st.State != StateOpen || st.NextProbeIn != 10*time.Second {
			t.Fatalf("instance %d: %v, next probe in %v; want the fleet's open period, 10s", i, st.State, st.NextProbeIn)
		}
	}
}

// A locally tripped instance under a quorum not reached probes and closes
// by itself.
func TestSharedQuorumNotReachedClosesLocally(t *testing.T) {
	f, bs := fleetOf(t, 2, 2, Config{FailureThreshold: 1, OpenFor: time.Second, SuccessThreshold: 1})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	f.clock.Advance(time.Second)
	p, err := bs[0].AllowAt(f.clock.Now())
	if err != nil || !p.Probe() {
		t.Fatalf("half-open by its own rules: %+v %v, want a local probe", p, err)
	}
	p.DoneAt(f.clock.Now(), Success, 0)
	f.deliver(t)
	if got := bs[0].StateAt(f.clock.Now()); got != StateClosed {
		t.Fatalf("after its own probe succeeded: %v, want closed", got)
	}
}

// Cut off from the record, a breaker bound to the fleet's half-open period
// probes and closes by its own rules; when the link heals it re-binds to
// the record it finds.
func TestSharedLostFallsBackToLocalRules(t *testing.T) {
	f, bs := fleetOf(t, 2, 0, Config{FailureThreshold: 1, OpenFor: time.Second, SuccessThreshold: 1})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	f.clock.Advance(time.Second)
	f.links[1].lose()
	p, err := bs[1].AllowAt(f.clock.Now())
	if err != nil || !p.Probe() {
		t.Fatalf("cut off and half-open: %+v %v, want a local probe", p, err)
	}
	p.DoneAt(f.clock.Now(), Success, 0)
	if got := bs[1].StateAt(f.clock.Now()); got != StateClosed {
		t.Fatalf("cut off, after its probe succeeded: %v, want closed by its own rules", got)
	}
	f.links[1].heal() // the record is still the same half-open period
	if got := bs[1].StateAt(f.clock.Now()); got != StateHalfOpen {
		t.Fatalf("healed while the fleet is half-open: %v, want half-open again", got)
	}
}

// A probe slot request that fails falls back to a local probe at once.
func TestSharedAcquireFailureProbesLocally(t *testing.T) {
	f, bs := fleetOf(t, 1, 0, Config{FailureThreshold: 1, OpenFor: time.Second})
	fail(t, f, bs[0], 1)
	f.deliver(t)
	f.clock.Advance(time.Second)
	f.links[0].down = true // the breaker is not told: the request finds out
	p, err := bs[0].AllowAt(f.clock.Now())
	if err != nil || !p.Probe() {
		t.Fatalf("slot request failed: %+v %v, want a local probe", p, err)
	}
	if bs[0].sh.bound {
		t.Fatal("still bound to the fleet after the request failed")
	}
}

// The merge rules of Link.ApplyAt, one record at a time.
func TestApplyFleetSteps(t *testing.T) {
	open := func(epoch uint64, probeIn time.Duration) Fleet {
		return Fleet{Epoch: epoch, Open: true, ProbeAt: t0.Add(probeIn), Opens: 1, Trip: Trip{Reason: TripFailureRate}}
	}
	closed := func(epoch uint64) Fleet { return Fleet{Epoch: epoch} }
	type step struct {
		trip  bool // a local trip first (FailureThreshold 1)
		lost  bool // LostAt first
		fleet Fleet
		want  State
		bound bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"open record opens a closed breaker", []step{{fleet: open(5, time.Second), want: StateOpen, bound: true}}},
		{"open record past its end gives half-open", []step{{fleet: open(5, -time.Second), want: StateHalfOpen, bound: true}}},
		{"older record is ignored", []step{
			{fleet: closed(7), want: StateClosed},
			{fleet: open(6, time.Second), want: StateClosed}}},
		{"same record again changes nothing", []step{
			{fleet: open(5, time.Second), want: StateOpen, bound: true},
			{fleet: closed(5), want: StateOpen, bound: true}}},
		{"closed record closes a bound breaker", []step{
			{fleet: open(5, time.Second), want: StateOpen, bound: true},
			{fleet: closed(6), want: StateClosed}}},
		{"closed record leaves a local trip open", []step{
			{trip: true, fleet: closed(6), want: StateOpen}}},
		{"open record binds a local trip", []step{
			{trip: true, fleet: open(6, time.Second), want: StateOpen, bound: true}}},
		{"no record unbinds", []step{
			{fleet: open(5, time.Second), want: StateOpen, bound: true},
			{fleet: Fleet{}, want: StateOpen}}},
		{"after LostAt the same open record binds again", []step{
			{fleet: open(5, time.Second), want: StateOpen, bound: true},
			{lost: true, fleet: open(5, time.Second), want: StateOpen, bound: true}}},
		{"after LostAt the same closed record changes nothing", []step{
			{fleet: closed(5), want: StateClosed},
			{lost: true, fleet: closed(5), want: StateClosed}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, bs := fleetOf(t, 1, 0, Config{FailureThreshold: 1, OpenFor: time.Minute})
			b, l := bs[0], f.links[0].l
			for i, st := range c.steps {
				if st.trip {
					fail(t, f, b, 1)
				}
				if st.lost {
					l.LostAt(t0)
				}
				l.ApplyAt(t0, st.fleet)
				if got := b.StateAt(t0); got != st.want || b.sh.bound != st.bound {
					t.Fatalf("step %d: %v bound=%v, want %v bound=%v", i, got, b.sh.bound, st.want, st.bound)
				}
			}
		})
	}
}

// A record reaches a forced-open or disabled breaker's epoch but not its
// state: the operator's word stands.
func TestApplyFleetLeavesManualModes(t *testing.T) {
	f, bs := fleetOf(t, 2, 0, Config{FailureThreshold: 1})
	bs[0].ForceOpen()
	bs[1].Disable()
	f.links[0].l.ApplyAt(t0, Fleet{Epoch: 3})
	f.links[1].l.ApplyAt(t0, Fleet{Epoch: 3, Open: true, ProbeAt: t0.Add(time.Minute)})
	if got := bs[0].StateAt(t0); got != StateForcedOpen {
		t.Fatalf("forced open breaker after a closed record: %v", got)
	}
	if _, err := bs[1].AllowAt(t0); err != nil {
		t.Fatalf("disabled breaker after an open record rejects: %v", err)
	}
}

// The fleet's breakers, driven by random calls, time steps, deliveries and
// cut links, keep the promises of the shared record: every instance in
// touch with an open record rejects until its end and is half-open after
// it; no more than HalfOpenCalls probes of one record are out at once
// across the fleet; and without a quorum or a cut link, a closed record
// means every instance is closed.
func TestSharedFleetProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(rt, "instances")
		quorum := rapid.IntRange(0, n).Draw(rt, "quorum")
		cfg := Config{
			FailureThreshold: rapid.IntRange(1, 3).Draw(rt, "failureThreshold"),
			OpenFor:          time.Duration(rapid.IntRange(1, 10).Draw(rt, "openFor")) * time.Second,
			HalfOpenCalls:    rapid.IntRange(1, 3).Draw(rt, "halfOpenCalls"),
			SuccessThreshold: rapid.IntRange(1, 3).Draw(rt, "successThreshold"),
			HalfOpenMaxWait:  20 * time.Second,
		}
		f, bs := fleetOf(rt, n, quorum, cfg)
		type held struct {
			i     int
			p     Permit
			epoch uint64 // the record a fleet probe was granted under, else 0
			at    time.Time
		}
		var out []held
		everCut := false
		for step := range 200 {
			now := f.clock.Now()
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2: // a call that ends at once
				i := rapid.IntRange(0, n-1).Draw(rt, "i")
				if p, err := bs[i].AllowAt(now); err == nil {
					p.DoneAt(now, Outcome(rapid.IntRange(0, 2).Draw(rt, "outcome")), 0)
				}
			case 3: // a call that stays out
				i := rapid.IntRange(0, n-1).Draw(rt, "i")
				if p, err := bs[i].AllowAt(now); err == nil {
					h := held{i: i, p: p, at: now}
					if p.Probe() && bs[i].sh.bound {
						h.epoch = bs[i].sh.epoch
					}
					out = append(out, h)
				}
			case 4: // one that was out ends
				if len(out) > 0 {
					k := rapid.IntRange(0, len(out)-1).Draw(rt, "k")
					out[k].p.DoneAt(now, Outcome(rapid.IntRange(0, 2).Draw(rt, "outcome")), 0)
					out = append(out[:k], out[k+1:]...)
				}
			case 5, 6:
				f.clock.Advance(time.Duration(rapid.IntRange(0, 12000).Draw(rt, "ms")) * time.Millisecond)
			case 7, 8:
				f.deliver(rt)
			case 9:
				ml := f.links[rapid.IntRange(0, n-1).Draw(rt, "link")]
				if ml.down {
					ml.heal()
				} else {
					ml.lose()
					everCut = true
				}
			}
			now = f.clock.Now()
			// No more than HalfOpenCalls probes of one record at once, counting
			// those within their lease.
			perEpoch := map[uint64]int{}
			for _, h := range out {
				if h.epoch != 0 && now.Sub(h.at) < cfg.HalfOpenMaxWait {
					perEpoch[h.epoch]++
				}
			}
			for e, k := range perEpoch {
				if k > cfg.HalfOpenCalls {
					rt.Fatalf("step %d: %d probes of record %d out at once, HalfOpenCalls %d", step, k, e, cfg.HalfOpenCalls)
				}
			}
			if pending(f) {
				continue
			}
			for i, b := range bs {
				if f.links[i].down {
					continue
				}
				got := b.StateAt(now)
				switch {
				case f.open && now.Before(f.until):
					if got != StateOpen {
						rt.Fatalf("step %d: instance %d is %v while the record is open for %v more", step, i, got, f.until.Sub(now))
					}
				case f.open:
					// Open too: StateAt itself may have applied the hung-probe
					// rule, whose reopening the record has not heard yet.
					if got != StateHalfOpen && got != StateOpen {
						rt.Fatalf("step %d: instance %d is %v while the record is half-open", step, i, got)
					}
				case quorum <= 1 && !everCut && got != StateClosed:
					rt.Fatalf("step %d: instance %d is %v while the record is closed", step, i, got)
				}
			}
		}
	})
}

// pending reports whether a report waits for delivery: the invariants
// hold once the record has heard everything.
func pending(f *memFleet) bool {
	for _, ml := range f.links {
		if len(ml.queue) > 0 {
			return true
		}
	}
	return false
}

// A breaker open for the fleet takes each newer record's trip; one open by
// its own rules keeps its own when the record it caused arrives.
func TestApplyFleetTripFigures(t *testing.T) {
	f, bs := fleetOf(t, 1, 0, Config{FailureThreshold: 1, OpenFor: time.Minute})
	b, l := bs[0], f.links[0].l
	l.ApplyAt(t0, Fleet{Epoch: 5, Open: true, ProbeAt: t0.Add(time.Minute), Trip: Trip{Reason: TripFailureRate}})
	l.ApplyAt(t0, Fleet{Epoch: 6, Open: true, ProbeAt: t0.Add(time.Minute), Trip: Trip{Reason: TripProbeFailed}})
	if got := b.StatsAt(t0).LastTrip; got.Reason != TripProbeFailed || !got.At.Equal(t0) {
		t.Fatalf("after a newer record: last trip %v at %v, want the record's probe-failed at %v", got.Reason, got.At, t0)
	}
	b.Reset()
	p, _ := b.AllowAt(t0)
	p.DoneAt(t0, Failure, 0) // its own trip, reported
	l.ApplyAt(t0, Fleet{Epoch: 7, Open: true, ProbeAt: t0.Add(time.Minute), Trip: Trip{Reason: TripFailureRate}})
	if got := b.StatsAt(t0).LastTrip; got.Reason != TripConsecutive {
		t.Fatalf("after the record of its own trip: last trip %v, want its own consecutive-failures", got.Reason)
	}
}

// Update keeps the link when given the Config the breaker returns, and
// refuses to swap or drop it; Close closes it.
func TestSharedUpdateAndClose(t *testing.T) {
	f, bs := fleetOf(t, 1, 0, Config{FailureThreshold: 1})
	b := bs[0]
	cfg := b.Config()
	cfg.FailureThreshold = 3
	if err := b.Update(cfg); err != nil {
		t.Fatalf("Update with the same Shared: %v", err)
	}
	cfg.Shared = newMemFleet(f.clock, 0).join()
	if err := b.Update(cfg); err == nil || err.Error() != "breaker: Update cannot change Config.Shared" {
		t.Fatalf("Update with another Shared: %v, want an error naming Config.Shared", err)
	}
	cfg.Shared = nil
	if err := b.Update(cfg); err == nil {
		t.Fatal("Update without Shared: no error")
	}
	closing := &closeCounter{memLink: f.join()}
	c := MustNew(Config{Clock: f.clock, Shared: closing})
	if err := c.Close(); err != nil || closing.closed != 1 {
		t.Fatalf("Close: %v, link closed %d times, want once", err, closing.closed)
	}
}

type closeCounter struct {
	*memLink
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }
