package bulkhead

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/internal/stripe"
)

// A Strict bulkhead without a Group and with a large limit keeps part of its
// free permits in per-core-ish stashes, so that callers on different cores
// take and return permits on cache lines of their own instead of all
// bouncing the state word between them.
//
// The permits field of the state word then counts the permits taken out of
// the word: those in use plus those sitting in stashes (plus, for an
// instant, those being moved between the two). A caller whose stash is empty
// takes a batch from the word with the usual CAS, which checks the limit, so
// the permits in use never exceed it. A caller that finds no permit in the
// word drains every stash back into it before it gives up or queues, so no
// caller is refused while a permit sits in a stash. A release that deposits
// into a stash then looks at the word, and a caller that joins the queue
// drains the stashes after counting itself a waiter: as both steps are
// sequentially consistent atomics, either the release sees the waiter and
// flushes the stashes into the queue, or the waiter's drain sees the permit.
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

// tryAcquireStriped is tryAcquire with stashes: one CAS on the caller's
// cell h when its stash holds a permit and nobody waits. tryAcquire and
// Release pick the cell themselves, at the same depth below their caller,
// so that the stack address hashes to the same cell for both.
func (b *Bulkhead) tryAcquireStriped(h int) bool {
	c := &b.cells[h]
	// A failed CAS means another goroutine hashed to the same cell: retry
	// a few times, as a single word would, before looking elsewhere.
	for range 4 {
		w := c.w.Load()
		if w&stashMask == 0 || b.state.Load()&waitMask != 0 {
			break
		}
		if c.w.CompareAndSwap(w, w-1+stashAdmit) {
			return true
		}
		// Now and then, change the salt of the cell hash, so that two
		// goroutines that keep colliding on a cell get dealt apart.
		if rand.Uint32()&7 == 0 {
			b.salt.Add(1)
		}
	}
	return b.refill(c, h)
}

// refill takes a permit for a caller whose stash (cell h) was empty or
// contended: half of the first other stash found, the rest of which goes to
// c's stash, else a batch from the state word likewise, else one permit as
// without stashes. Taking half of another stash makes a goroutine whose
// releases land in another cell than its acquires (they ran at other stack
// depths) move its permits back in batches, not one by one through the
// state word.
func (b *Bulkhead) refill(c *stashCell, h int) bool {
	if b.state.Load()&waitMask == 0 {
		for i := 1; i < stashCells; i++ {
			o := &b.cells[(h+i)%stashCells]
			w := o.w.Load()
			n := w & stashMask
			if n == 0 {
				continue
			}
			k := (n + 1) / 2
			if o.w.CompareAndSwap(w, w-k+stashAdmit) {
				if k > 1 {
					c.w.Add(k - 1)
					b.afterDeposit()
				}
				return true
			}
		}
	}
	limit := b.limit.Load()
	batch := min(max(limit/(8*stashCells), 1), maxBatch)
	for {
		s := b.state.Load()
		if s&waitMask != 0 || limit-int64(s&activeMask) < batch || s >= lastCount {
			break
		}
		if b.state.CompareAndSwap(s, s+uint64(batch)+1<<countShift) {
			if batch > 1 {
				c.w.Add(uint64(batch - 1))
				b.afterDeposit()
			}
			return true
		}
	}
	return b.tryTakeOrSteal()
}

// releaseStriped returns a permit to the stash of cell h, moving a batch
// of that stash back to the state word when it grew past stashHigh.
func (b *Bulkhead) releaseStriped(h int) {
	c := &b.cells[h]
	if w := c.w.Add(1); w&stashMask > stashHigh {
		b.spill(c)
	}
	b.afterDeposit()
}

// spill moves maxBatch permits from c's stash, if it still holds more than
// stashHigh, back to the state word.
func (b *Bulkhead) spill(c *stashCell) {
	for {
		w := c.w.Load()
		if w&stashMask <= stashHigh {
			return
		}
		if c.w.CompareAndSwap(w, w-maxBatch) {
			b.toCentral(maxBatch)
			return
		}
	}
}

// afterDeposit flushes the stashes when a permit was just put in one while
// callers wait or more permits are out than the limit (lowered by Update).
func (b *Bulkhead) afterDeposit() {
	if s := b.state.Load(); s&waitMask != 0 || int64(s&activeMask) > b.limit.Load() {
		b.flush()
	}
}

// flush drains the stashes into the state word and hands what it can to
// the queue.
func (b *Bulkhead) flush() {
	b.drainStashes()
	if b.state.Load()&waitMask != 0 {
		b.mu.Lock()
		b.dispatchLocked(time.Time{})
		b.mu.Unlock()
	}
}

// tryTakeOrSteal is tryTake(false), which, when it finds no permit in the
// state word, first drains the stashes back into it. Not under b.mu.
func (b *Bulkhead) tryTakeOrSteal() bool {
	if b.tryTake(false) {
		return true
	}
	if !b.everStriped.Load() || b.drainStashes() == 0 {
		return false
	}
	if b.state.Load()&waitMask != 0 {
		// Others queued ahead: the drained permits are theirs.
		b.mu.Lock()
		b.dispatchLocked(time.Time{})
		b.mu.Unlock()
		return false
	}
	return b.tryTake(false)
}

// settleLocked runs after a waiter joined the queue when stashes may exist:
// a permit deposited in a stash before the waiter was counted is drained and
// handed to the queue, since the depositor did not see the waiter.
func (b *Bulkhead) settleLocked() {
	if b.everStriped.Load() {
		b.drainStashes()
		b.dispatchLocked(time.Time{})
	}
}

// drainStashes moves every stashed permit back into the state word and
// returns how many it moved.
func (b *Bulkhead) drainStashes() int64 {
	var total uint64
	for i := range b.cells {
		c := &b.cells[i]
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
		b.toCentral(total)
	}
	return int64(total)
}

// toCentral returns n permits taken out of stashes to the state word.
func (b *Bulkhead) toCentral(n uint64) {
	for {
		s := b.state.Load()
		if s&activeMask < n {
			panic("bulkhead: Release without a permit")
		}
		if b.state.CompareAndSwap(s, s-n) {
			return
		}
	}
}

// stashTotals returns the permits sitting in stashes and the admissions
// granted from them.
func (b *Bulkhead) stashTotals() (free, admitted int64) {
	for i := range b.cells {
		w := b.cells[i].w.Load()
		free += int64(w & stashMask)
		admitted += int64(w >> stashBits)
	}
	return free, admitted
}
