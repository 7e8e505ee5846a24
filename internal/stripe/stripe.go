// Package stripe provides a striped counter: increments land on one of
// several cache-line-padded cells, so callers on different cores rarely touch
// the same line, and a read sums the cells. It is the statistics counter of
// the hot paths, where a single atomic would be a line that every caller
// contends on.
//
// A caller's cell is picked by hashing the address of its goroutine's stack,
// which is free and stable, so one goroutine keeps hitting a line its core
// already owns. Two busy goroutines can hash to the same cell; the increment
// is a compare-and-swap, and when that fails (the sign of such a collision)
// it moves to a cell picked at random, as Java's LongAdder re-probes on
// contention.
package stripe

import (
	"math/rand/v2"
	"sync/atomic"
	"unsafe"
)

const cells = 8 // a power of two

type cell struct {
	n atomic.Int64
	_ [56]byte // pad to a 64-byte cache line
}

// Counter is a striped int64 counter. The zero value is ready to use.
type Counter struct {
	// Each cell's word has 56 bytes of padding after it; this puts as much
	// before the first, so that no cell shares a cache line with the fields
	// around the Counter (a breaker's state word, read on every call).
	_ [56]byte
	c [cells]cell
}

// Add adds delta to the counter.
func (c *Counter) Add(delta int64) {
	cell := &c.c[stackHint()]
	if old := cell.n.Load(); cell.n.CompareAndSwap(old, old+delta) {
		return
	}
	// Contended: rand.Uint32 reads per-thread state in the runtime, no lock.
	c.c[rand.Uint32()&(cells-1)].n.Add(delta)
}

// stackHint hashes the address of a variable on the caller's stack to a
// cell index. Goroutine stacks start at 2 KiB and are at least that far
// apart, so the bits above 11 tell goroutines apart; a Fibonacci multiply
// spreads them.
func stackHint() uint32 {
	var marker byte
	return uint32((uint64(uintptr(unsafe.Pointer(&marker)))>>11)*0x9E3779B97F4A7C15>>61) & (cells - 1)
}

// Cells is the number of cells of a Counter, and the range of Hint.
const Cells = cells

// Hint returns the calling goroutine's preferred cell index in [0, Cells),
// hashed from its stack address as Counter.Add picks its cell, for other
// striped structures that want the same spreading.
func Hint() int { return int(stackHint()) }

// HintSalted is Hint with the stack address mixed with salt before it is
// hashed, so that a structure which finds two goroutines sharing a cell can
// change the salt and deal every goroutine a cell afresh.
func HintSalted(salt uint32) int {
	var marker byte
	// The XOR with a salt-derived constant changes which goroutines share
	// a cell, as the carries of the multiply then depend on the salt.
	z := uint64(uintptr(unsafe.Pointer(&marker)))>>11 ^ uint64(salt)*0xBF58476D1CE4E5B9
	return int(z * 0x9E3779B97F4A7C15 >> 61)
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
