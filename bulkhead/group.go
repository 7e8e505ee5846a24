package bulkhead

import "sync"

// Group is a set of bulkheads that lend each other idle capacity. A
// bulkhead joins the group named in its Config.Group when it is created and
// stays a member for the group's lifetime.
//
// The group's capacity is the sum of its members' MaxConcurrent. A member
// with Shared isolation runs up to its own MaxConcurrent like a Strict one;
// beyond that it may take up to floor(OverflowRatio × MaxConcurrent) more
// permits, each granted only while the permits in use across the whole
// group are fewer than the group's capacity, that is, only while some other
// member is leaving part of its share idle. A member's own MaxConcurrent is
// never reduced by another's overflow: when the idle member gets busy again
// it takes its full share at once, the group may run above its capacity for
// as long as the overflowing calls last, and no new overflow permits are
// granted until it is back below. Strict members contribute capacity and
// never overflow. Adaptive bulkheads cannot join a group. A Shared member's
// queued callers are admitted, into its own share or the overflow, as its
// own permits come back; a permit returned to another member does not wake
// them.
//
// The zero Group is ready to use and safe for concurrent use. Its lock is
// taken only when a Shared member is at its own limit, never on the common
// path.
type Group struct {
	mu      sync.Mutex
	members []*Bulkhead
}

func (g *Group) add(b *Bulkhead) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = append(g.members, b)
}

// Capacity returns the sum of the members' MaxConcurrent.
func (g *Group) Capacity() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.capacityLocked()
}

// InUse returns the number of permits held across the members, overflow
// included.
func (g *Group) InUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inUseLocked()
}

// Members returns the names of the member bulkheads, in joining order.
func (g *Group) Members() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, len(g.members))
	for i, b := range g.members {
		names[i] = b.name
	}
	return names
}

func (g *Group) capacityLocked() int {
	n := 0
	for _, b := range g.members {
		n += int(b.p.limit())
	}
	return n
}

func (g *Group) inUseLocked() int {
	n := 0
	for _, b := range g.members {
		n += int(b.p.inUse())
	}
	return n
}

// tryOverflow takes a permit for p, the permits of a Shared member whose
// own permits were all in use when it looked. It serialises overflow grants
// on the group lock so that the group's in-use count it checks cannot be
// raced past by another overflow grant; members' grants within their own
// limit race freely, as they are always allowed. Like take it refuses while
// the member has waiters, unless fromQueue.
func (g *Group) tryOverflow(p *permits, fromQueue bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return p.takeBeyond(fromQueue, func() bool { return g.inUseLocked() < g.capacityLocked() })
}
