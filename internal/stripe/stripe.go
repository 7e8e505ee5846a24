// Package stripe provides a striped counter: increments land on one of
// several cache-line-padded cells chosen at random, so callers on different
// cores rarely touch the same line, and a read sums the cells. It is the
// statistics counter of the hot paths, where a single atomic would be a line
// that every caller contends on.
package stripe

import (
	"math/rand/v2"
	"sync/atomic"
)

const cells = 8 // a power of two

type cell struct {
	n atomic.Int64
	_ [56]byte // pad to a 64-byte cache line
}

// Counter is a striped int64 counter. The zero value is ready to use.
type Counter struct {
	c [cells]cell
}

// Add adds delta to the counter.
func (c *Counter) Add(delta int64) {
	// rand.Uint32 reads per-thread state in the runtime: no lock, no shared line.
	c.c[rand.Uint32()&(cells-1)].n.Add(delta)
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Load returns the sum of the cells. It is not a snapshot: increments that
// race with Load may or may not be included.
func (c *Counter) Load() int64 {
	var s int64
	for i := range c.c {
		s += c.c[i].n.Load()
	}
	return s
}
