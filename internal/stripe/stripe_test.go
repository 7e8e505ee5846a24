package stripe

import (
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCellIsOneCacheLine(t *testing.T) {
	if got := unsafe.Sizeof(cell{}); got != 64 {
		t.Fatalf("cell is %d bytes, want 64 (one cache line each)", got)
	}
	if cells&(cells-1) != 0 {
		t.Fatalf("cells = %d, want a power of two (Add masks the random index)", cells)
	}
}

func TestZeroValueAndSteps(t *testing.T) {
	var c Counter
	steps := []struct {
		add  int64
		want int64
	}{
		{0, 0},
		{1, 1},
		{41, 42},
		{-50, -8},
		{1 << 40, 1<<40 - 8},
		{-(1 << 40), -8},
		{8, 0},
	}
	if got := c.Load(); got != 0 {
		t.Fatalf("zero Counter: Load() = %d, want 0", got)
	}
	for i, s := range steps {
		c.Add(s.add)
		if got := c.Load(); got != s.want {
			t.Fatalf("step %d: after Add(%d) Load() = %d, want %d", i, s.add, got, s.want)
		}
	}
	for range 1000 {
		c.Inc()
	}
	if got := c.Load(); got != 1000 {
		t.Fatalf("after 1000 Inc: Load() = %d, want 1000", got)
	}
}

func TestIncrementsSpreadOverCells(t *testing.T) {
	// The point of striping: goroutines alive at once land on different
	// cells. 64 live goroutines, each with its own stack, over 8 cells: all
	// landing on three or fewer would mean the hash does not spread.
	if raceEnabled {
		t.Skip("the stack hint is defeated by the race detector's heap-allocated locals; covered by the non-race run")
	}
	var c Counter
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.Inc()
		}()
	}
	close(start)
	wg.Wait()
	used := 0
	for i := range c.c {
		if c.c[i].n.Load() != 0 {
			used++
		}
	}
	if used < 4 {
		t.Fatalf("64 goroutines used %d of %d cells", used, cells)
	}
	if c.Load() != 64 {
		t.Fatalf("Load() = %d, want 64", c.Load())
	}
}

func TestOneGoroutineKeepsItsCell(t *testing.T) {
	if raceEnabled {
		t.Skip("the stack hint is defeated by the race detector; covered by the non-race run")
	}
	var c Counter
	for range 1000 {
		c.Inc()
	}
	used := 0
	for i := range c.c {
		if c.c[i].n.Load() != 0 {
			used++
		}
	}
	if used != 1 {
		t.Fatalf("an uncontended goroutine spread over %d cells, want 1", used)
	}
}

func TestConcurrentExactSum(t *testing.T) {
	// Run with -race: N goroutines × M increments must sum exactly, and
	// Loads racing with them must never exceed the total or go backwards
	// (every delta is positive and a Load reads each cell after the
	// previous Load did, so successive Loads cannot decrease).
	const goroutines, perG = 16, 5000
	var c Counter
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range perG {
				if g%2 == 0 {
					c.Inc()
				} else {
					c.Add(int64(i%3 + 1)) // 1, 2, 3, ... averaging 2
				}
			}
		})
	}
	var bad atomic.Value
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		prev := int64(0)
		for {
			select {
			case <-done:
				return
			default:
			}
			v := c.Load()
			if v < prev || v > wantTotal(goroutines, perG) {
				bad.Store([2]int64{prev, v})
				return
			}
			prev = v
		}
	})
	close(start)
	wg.Wait()
	close(done)
	reader.Wait()
	if v := bad.Load(); v != nil {
		pv := v.([2]int64)
		t.Fatalf("a Load racing with Adds returned %d after %d, want monotonic and at most %d", pv[1], pv[0], wantTotal(goroutines, perG))
	}
	if got, want := c.Load(), wantTotal(goroutines, perG); got != want {
		t.Fatalf("Load() = %d after %d goroutines × %d adds, want %d", got, goroutines, perG, want)
	}
}

// wantTotal is the sum TestConcurrentExactSum must reach: even goroutines
// add 1 per step, odd ones 1, 2, 3 in turn.
func wantTotal(goroutines, perG int) int64 {
	var odd int64
	for i := range perG {
		odd += int64(i%3 + 1)
	}
	even := int64(perG)
	return int64(goroutines/2)*even + int64(goroutines-goroutines/2)*odd
}

func TestIncDoesNotAllocate(t *testing.T) {
	var c Counter
	if n := testing.AllocsPerRun(1000, c.Inc); n != 0 {
		t.Fatalf("Inc allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = c.Load() }); n != 0 {
		t.Fatalf("Load allocates %v times per call, want 0", n)
	}
}

// The pair below is the reason the package exists: compare with
// go test -bench=Parallel -cpu=1,2 ./internal/stripe/.

func BenchmarkParallelCounterAdd(b *testing.B) {
	var c Counter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
	if c.Load() != int64(b.N) {
		b.Fatalf("Load() = %d, want %d", c.Load(), b.N)
	}
}

func BenchmarkParallelAtomicAdd(b *testing.B) {
	var c atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
	if c.Load() != int64(b.N) {
		b.Fatalf("Load() = %d, want %d", c.Load(), b.N)
	}
}

func BenchmarkCounterLoad(b *testing.B) {
	var c Counter
	c.Add(7)
	b.ReportAllocs()
	var s int64
	for b.Loop() {
		s += c.Load()
	}
	_ = s
}
