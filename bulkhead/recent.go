package bulkhead

import "time"

// The recent rejection rate covers the current 10-second slot and the five
// before it: the last 50 to 60 seconds.
const (
	recentSlots = 6
	recentSlot  = 10 * time.Second
)

// recentWindow holds, per 10-second slot, the cumulative call and rejection
// counts as of the first Stats read in that slot (and one from New). The
// rate over the window is the difference between now and the oldest
// snapshot in it or, when Stats was not read in it, the newest snapshot
// before it.
//
// Snapshots are taken when Stats is read, never on the path of a call:
// internal/window.Buckets would need a lock taken and the clock read on every
// call, and on the machines sluice is measured on a clock read alone costs
// more than a whole admission. The cost: a monitor that reads Stats at least
// every 10 seconds sees the last 50 to 60 seconds; read less often, the rate
// covers the time since the previous read.
type recentWindow struct {
	slots [recentSlots]snapshot
}

type snapshot struct {
	valid    bool
	epoch    int64 // slot number since the Unix epoch
	total    int64
	rejected int64
}

func recentEpoch(now time.Time) int64 {
	ns := now.UnixNano()
	e := ns / int64(recentSlot)
	if ns < 0 && ns%int64(recentSlot) != 0 {
		e--
	}
	return e
}

func slotIndex(epoch int64) int {
	return int(((epoch % recentSlots) + recentSlots) % recentSlots)
}

// observe records the counts for the slot of epoch unless the slot already
// holds a snapshot from it.
func (w *recentWindow) observe(epoch, total, rejected int64) {
	s := &w.slots[slotIndex(epoch)]
	if s.valid && s.epoch == epoch {
		return
	}
	*s = snapshot{valid: true, epoch: epoch, total: total, rejected: rejected}
}

// rate returns the share of calls rejected since the base snapshot: the
// oldest in the window ending with slot epoch or, if none, the newest before.
func (w *recentWindow) rate(epoch, total, rejected int64) float64 {
	var in, before *snapshot
	for i := range w.slots {
		s := &w.slots[i]
		switch {
		case !s.valid || s.epoch > epoch:
		case s.epoch > epoch-recentSlots:
			if in == nil || s.epoch < in.epoch {
				in = s
			}
		default:
			if before == nil || s.epoch > before.epoch {
				before = s
			}
		}
	}
	base := in
	if base == nil {
		base = before
	}
	if base == nil {
		return 0
	}
	dt, dr := total-base.total, rejected-base.rejected
	if dt <= 0 || dr <= 0 {
		return 0
	}
	return float64(dr) / float64(dt)
}
