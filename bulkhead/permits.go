package bulkhead

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/sluice-go/sluice/internal/stripe"
)

// permits is the permit accounting of a Bulkhead, and the only code that
// reads or writes its state word and stashes: the rest of the bulkhead is a
// queue (which counts its waiters through join, unwait and takeForWaiter)
// and a limit (setLimit). Its zero value, with wake set, is a limit of zero.
//
// # The state word
//
// The word packs, from the low bits up: the permits taken out of it (22
// bits), the callers waiting in the queue (20 bits), and the low 22 bits of
// the count of permits ever granted. Taking a permit is one CAS that adds to
// the first and last fields; returning one is one atomic add. Because the
// waiter count sits in the same word as the permits, a releasing caller
// learns from the result of its own add whether anyone waits, and a caller
// that joins the queue does so with a CAS that fails if a permit was freed
// since it looked: no wakeup can be lost between the two.
//
// # Stashes
//
// With a large strict limit (see stripes) part of the free permits sit in
// per-cell stashes, so that callers on different cores take and return
// permits on cache lines of their own instead of all bouncing the state
// word between them. The permits field of the word then counts those in use
// plus those in stashes (plus, for an instant, those being moved between
// the two): in use = taken from the word − Σ stashes. A caller whose stash
// is empty takes a batch from the word with the usual CAS, which checks the
// limit, so the permits in use never exceed it. A caller that finds no
// permit in the word drains every stash back into it before it gives up or
// queues, so no caller is refused while a permit sits in a stash. A release
// that deposits into a stash then looks at the word, and a caller that joins
// the queue drains the stashes after counting itself a waiter: as both steps
// are sequentially consistent atomics, either the release sees the waiter
// and flushes the stashes to the queue, or the waiter's drain sees the
// permit.
//
// # The cell hint
//
// A caller's cell is hint(), a hash of its stack address. Which cell a call
// uses never matters for correctness (a permit may be taken from one cell
// and returned to another; refill moves permits back in batches), only for
// speed: a goroutine should return its permits where it takes them. The one
// rule is therefore that hint is called by the exported method itself, at
// its entry, and the cell passed down explicitly (tryAcquire(h),
// release(h)), never taken again by a helper: the stack address then
// depends only on the user's call site, and Execute, which holds the permit
// across the call, returns it through the very cell it took it from.
type permits struct {
	// Read or written by every call; kept together, on a cache line of
	// their own: the padding keeps whatever comes before the permits off
	// it, the cells (each a line) whatever comes after.
	_       [64]byte
	state   atomic.Uint64
	lim     atomic.Int64  // own limit: MaxConcurrent, or the adaptive estimate
	striped atomic.Bool   // permits are stashed per cell
	salt    atomic.Uint32 // mixed into the cell hash
	_       [64 - 24]byte

	cells       [stashCells]stashCell
	everStriped atomic.Bool // striped was ever set: stashes may hold permits

	countHi  atomic.Int64 // times the granted-count field of state wrapped
	overflow atomic.Int64 // permits allowed beyond lim while lender has idle capacity
	lender   *Group       // Shared: the group to borrow from; nil otherwise

	// wake hands the permits in the word to the queue's waiters; it takes
	// the queue's lock, so permits call it only outside it.
	wake func()

	testHookJoin func() // tests: runs between looking at the state and joining the queue
}

const (
	activeBits = 22
	waitBits   = 20
	activeMask = 1<<activeBits - 1
	waitShift  = activeBits
	waitOne    = 1 << waitShift
	waitMask   = (1<<waitBits - 1) << waitShift
	countShift = activeBits + waitBits
	countBits  = 64 - countShift
	acqDelta   = 1 + 1<<countShift // one more permit in use, one more granted
	lastCount  = (1<<countBits - 1) << countShift
)

const (
	stashCells = stripe.Cells
	stashBits  = 22 // as activeBits: the permits of all stashes fit
	stashMask  = 1<<stashBits - 1
	stashAdmit = 1 << stashBits // one admission counted in a cell
	stripeMin  = 64 * stashCells
	maxBatch   = 32
	stashHigh  = 2 * maxBatch // above this a release goes to the word
)

// stashCell holds, in the low stashBits, free permits taken out of the
// state word, and above them the number of permits granted from this stash,
// on a cache line of its own.
type stashCell struct {
	w atomic.Uint64
	_ [56]byte
}

// stripes reports whether a config gets permit stashes.
func stripes(c *Config) bool {
	return c.Isolation == Strict && c.Group == nil && c.MaxConcurrent >= stripeMin
}

// hint returns the calling goroutine's stash cell. Call it only from an
// exported method, at its entry, and pass the result down; see permits.
func (p *permits) hint() int { return stripe.HintSalted(p.salt.Load()) }

// setLimit sets the limit. Permits in use above a lowered limit stay until
// they are returned; a raised one is for the caller to hand to waiters.
func (p *permits) setLimit(n int64) { p.lim.Store(n) }

// limit returns the limit.
func (p *permits) limit() int64 { return p.lim.Load() }

// setOverflow sets how many permits beyond the limit a Shared member may
// take while its lender has idle capacity.
func (p *permits) setOverflow(n int64) { p.overflow.Store(n) }

// overflowed returns what setOverflow set.
func (p *permits) overflowed() int64 { return p.overflow.Load() }

// setStriped turns the stashes on or off. Permits left in them by turning
// them off are taken back by the next drain.
func (p *permits) setStriped(on bool) {
	if on {
		p.everStriped.Store(true)
	}
	p.striped.Store(on)
}

// inUse returns the permits held by callers, overflow included.
func (p *permits) inUse() int64 {
	if !p.everStriped.Load() {
		return int64(p.state.Load() & activeMask)
	}
	// The stashes first: a permit moving between a stash and the word is
	// then missed rather than counted twice.
	free, _ := p.stashTotals()
	return max(int64(p.state.Load()&activeMask)-free, 0)
}

// waiting returns the number of callers counted in the queue.
func (p *permits) waiting() int {
	return int((p.state.Load() & waitMask) >> waitShift)
}

// admitted returns the count of permits ever granted. A caller that just
// wrapped the count field may not have carried it yet, so two reads can go
// backwards by 1<<countBits for an instant; the caller keeps a floor.
func (p *permits) admitted() int64 {
	for {
		hi := p.countHi.Load()
		s := p.state.Load()
		if p.countHi.Load() == hi {
			_, sa := p.stashTotals()
			return hi<<countBits + int64(s>>countShift) + sa
		}
	}
}

// tryAcquire is the fast path: one CAS, on cell h's stash or on the word,
// when a permit is free and nobody waits. Once every 4M admissions, when the
// CAS would wrap the count field, it leaves the work to tryTake, which
// carries the wrap into countHi, so that the common path has no branch for
// it. The stash path is written out here rather than called, to keep the
// call under TryAcquire one deep.
func (p *permits) tryAcquire(h int) bool {
	if p.striped.Load() {
		c := &p.cells[h]
		// A failed CAS means another goroutine hashed to the same cell:
		// retry a few times, as a single word would, before looking
		// elsewhere.
		for range 4 {
			w := c.w.Load()
			if w&stashMask == 0 || p.state.Load()&waitMask != 0 {
				break
			}
			if c.w.CompareAndSwap(w, w-1+stashAdmit) {
				return true
			}
			// Now and then, change the salt of the cell hash, so that two
			// goroutines that keep colliding on a cell get dealt apart.
			if rand.Uint32()&7 == 0 {
				p.salt.Add(1)
			}
		}
		return p.refill(c, h)
	}
	s := p.state.Load()
	// Waiters sit above the permits in the word, so one comparison checks
	// both that nobody waits and that a permit is free.
	if s&(waitMask|activeMask) < uint64(p.lim.Load()) && s < lastCount && p.state.CompareAndSwap(s, s+acqDelta) {
		return true
	}
	return p.tryTakeOrSteal()
}

// release returns a permit through cell h, handing it to the queue if
// anyone waits. Returning a permit that was not taken panics (with stashes,
// only once they are drained).
func (p *permits) release(h int) {
	if p.striped.Load() {
		// Into cell h's stash, a batch of which goes back to the word
		// when it grew past stashHigh.
		c := &p.cells[h]
		if w := c.w.Add(1); w&stashMask > stashHigh {
			p.spill(c)
		}
		p.afterDeposit()
		return
	}
	if p.put() {
		p.wake()
	}
}

// put returns a permit to the word, bypassing the stashes, and reports
// whether callers wait for it: the caller then hands it to the queue.
func (p *permits) put() (waiters bool) {
	s := p.state.Add(^uint64(0)) // one fewer in use
	// Someone waits, or the permits in use went below zero.
	if s&(waitMask|activeMask) < activeMask {
		return false
	}
	if s&activeMask == activeMask {
		p.state.Add(1) // undo, so the state stays consistent for others
		panic("bulkhead: Release without a permit")
	}
	return true
}

// tryTake takes a permit from the word if one is free, borrowing from the
// lender when at the limit. Without stashes it is also how a wrapping CAS is
// carried.
func (p *permits) tryTake() bool { return p.take(false) }

// takeForWaiter takes a permit for the head of the queue, removing it from
// the waiter count in the same CAS; false if none is free.
func (p *permits) takeForWaiter() bool { return p.take(true) }

// take is tryTake (fromQueue false: it fails while anyone waits, to keep
// admission FIFO) and takeForWaiter.
func (p *permits) take(fromQueue bool) bool {
	delta := uint64(acqDelta)
	if fromQueue {
		delta -= waitOne
	}
	for {
		s := p.state.Load()
		if !fromQueue && s&waitMask != 0 {
			return false
		}
		if int64(s&activeMask) >= p.lim.Load() {
			if p.lender != nil {
				return p.lender.tryOverflow(p, fromQueue)
			}
			return false
		}
		n := s + delta
		if p.state.CompareAndSwap(s, n) {
			p.noteAdmitted(n)
			return true
		}
	}
}

// takeBeyond is take for a Shared bulkhead that found its own permits all
// in use: it also grants one of the overflow permits while idle reports
// that the lender has idle capacity. The lender serialises the calls.
func (p *permits) takeBeyond(fromQueue bool, idle func() bool) bool {
	delta := uint64(acqDelta)
	if fromQueue {
		delta -= waitOne
	}
	for {
		s := p.state.Load()
		if !fromQueue && s&waitMask != 0 {
			return false
		}
		active, limit := int64(s&activeMask), p.lim.Load()
		if active >= limit {
			if active >= limit+p.overflow.Load() || !idle() {
				return false
			}
		}
		n := s + delta
		if p.state.CompareAndSwap(s, n) {
			p.noteAdmitted(n)
			return true
		}
	}
}

// noteAdmitted carries the granted-count field of state n into countHi when
// the CAS that produced n made it wrap.
func (p *permits) noteAdmitted(n uint64) {
	if n < 1<<countShift {
		p.countHi.Add(1)
	}
}

// The results of join.
const (
	joinQueued  = iota // counted among the waiters: push the waiter before unlocking
	joinTook           // took a permit after all
	joinFull           // the queue holds maxQueue waiters
	joinDrained        // drained stashed permits into the word: hand them to the queue, then join again
)

// join is the way into the queue's count, under the queue's lock: it takes
// a permit if one is free and nobody waits, else counts the caller among
// the waiters, unless maxQueue are waiting already. It joins with a CAS on
// the state that showed no permit, so that a permit freed since fails the
// CAS and is seen on the next round; once in, the waiter count makes every
// releasing caller look at the queue.
func (p *permits) join(maxQueue int) int {
	for {
		if p.tryTake() {
			return joinTook
		}
		if p.drain() > 0 {
			return joinDrained
		}
		s := p.state.Load()
		if s&waitMask == 0 && int64(s&activeMask) < p.lim.Load() {
			continue
		}
		if int((s&waitMask)>>waitShift) >= maxQueue {
			return joinFull
		}
		if p.testHookJoin != nil {
			p.testHookJoin()
		}
		if p.state.CompareAndSwap(s, s+waitOne) {
			return joinQueued
		}
	}
}

// unwait takes one caller, which leaves the queue without a permit, out of
// the waiter count.
func (p *permits) unwait() { p.state.Add(^uint64(waitOne - 1)) }

// refill takes a permit for a caller whose stash (cell h) was empty or
// contended: half of the first other stash found, the rest of which goes to
// c's stash, else a batch from the state word likewise, else one permit as
// without stashes. Taking half of another stash makes a goroutine whose
// releases land in another cell than its acquires move its permits back in
// batches, not one by one through the state word.
func (p *permits) refill(c *stashCell, h int) bool {
	if p.state.Load()&waitMask == 0 {
		for i := 1; i < stashCells; i++ {
			o := &p.cells[(h+i)%stashCells]
			w := o.w.Load()
			n := w & stashMask
			if n == 0 {
				continue
			}
			k := (n + 1) / 2
			if o.w.CompareAndSwap(w, w-k+stashAdmit) {
				if k > 1 {
					c.w.Add(k - 1)
					p.afterDeposit()
				}
				return true
			}
		}
	}
	limit := p.lim.Load()
	batch := min(max(limit/(8*stashCells), 1), maxBatch)
	for {
		s := p.state.Load()
		if s&waitMask != 0 || limit-int64(s&activeMask) < batch || s >= lastCount {
			break
		}
		if p.state.CompareAndSwap(s, s+uint64(batch)+1<<countShift) {
			if batch > 1 {
				c.w.Add(uint64(batch - 1))
				p.afterDeposit()
			}
			return true
		}
	}
	return p.tryTakeOrSteal()
}

// spill moves maxBatch permits from c's stash, if it still holds more than
// stashHigh, back to the state word.
func (p *permits) spill(c *stashCell) {
	for {
		w := c.w.Load()
		if w&stashMask <= stashHigh {
			return
		}
		if c.w.CompareAndSwap(w, w-maxBatch) {
			p.toCentral(maxBatch)
			return
		}
	}
}

// afterDeposit flushes the stashes to the queue when a permit was just put
// in one while callers wait, or while more permits are out than the limit
// (lowered by Update).
func (p *permits) afterDeposit() {
	if s := p.state.Load(); s&waitMask != 0 || int64(s&activeMask) > p.lim.Load() {
		p.drain()
		if p.state.Load()&waitMask != 0 {
			p.wake()
		}
	}
}

// tryTakeOrSteal is tryTake, which, when it finds no permit in the state
// word, first drains the stashes back into it. Not under the queue's lock.
func (p *permits) tryTakeOrSteal() bool {
	if p.tryTake() {
		return true
	}
	if p.drain() == 0 {
		return false
	}
	if p.state.Load()&waitMask != 0 {
		// Others queued ahead: the drained permits are theirs.
		p.wake()
		return false
	}
	return p.tryTake()
}

// drain moves every stashed permit back into the state word and returns
// how many it moved. The caller hands them to waiters, if any.
func (p *permits) drain() int64 {
	if !p.everStriped.Load() {
		return 0 // without a call: this is on every rejection's path
	}
	return p.drainCells()
}

// drainCells is drain once stashes may hold permits.
func (p *permits) drainCells() int64 {
	var total uint64
	for i := range p.cells {
		c := &p.cells[i]
		for {
			w := c.w.Load()
			n := w & stashMask
			if n == 0 || c.w.CompareAndSwap(w, w-n) {
				total += n
				break
			}
		}
	}
	if total > 0 {
		p.toCentral(total)
	}
	return int64(total)
}

// toCentral returns n permits taken out of stashes to the state word.
func (p *permits) toCentral(n uint64) {
	for {
		s := p.state.Load()
		if s&activeMask < n {
			panic("bulkhead: Release without a permit")
		}
		if p.state.CompareAndSwap(s, s-n) {
			return
		}
	}
}

// stashTotals returns the permits sitting in stashes and the admissions
// granted from them.
func (p *permits) stashTotals() (free, admitted int64) {
	for i := range p.cells {
		w := p.cells[i].w.Load()
		free += int64(w & stashMask)
		admitted += int64(w >> stashBits)
	}
	return free, admitted
}
