package sim

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The event queue against a reference model: a stable sort by time of the
// events pushed, interleaved with pops.
func TestEventQueueMatchesStableSort(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q eventQueue[int]
		type ref struct {
			at int64
			id int
		}
		var model []ref
		id := 0
		steps := rapid.IntRange(1, 300).Draw(t, "steps")
		for range steps {
			if len(model) > 0 && rapid.Bool().Draw(t, "pop") {
				slices.SortStableFunc(model, func(a, b ref) int { return int(a.at - b.at) })
				want := model[0]
				model = model[1:]
				at, got := q.pop()
				if at != want.at || got != want.id {
					t.Fatalf("pop = (%d, %d), want (%d, %d)", at, got, want.at, want.id)
				}
				continue
			}
			at := rapid.Int64Range(0, 20).Draw(t, "at") // small range: many ties
			q.push(at, id)
			model = append(model, ref{at, id})
			id++
		}
		if q.len() != len(model) {
			t.Fatalf("len = %d, want %d", q.len(), len(model))
		}
	})
}

// Lanes and the heap together give the same order as the heap alone.
func TestWorldLanesKeepOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type item struct {
			at   int64
			lane bool
		}
		n := rapid.IntRange(1, 100).Draw(t, "n")
		var items []item
		var laneAt int64
		for range n {
			if rapid.Bool().Draw(t, "lane") {
				laneAt += rapid.Int64Range(0, 5).Draw(t, "step")
				items = append(items, item{laneAt, true})
			} else {
				items = append(items, item{rapid.Int64Range(0, 500).Draw(t, "at"), false})
			}
		}
		order := func(useLane bool) []int {
			w := newWorld()
			l := w.newLane()
			var got []int
			for i, it := range items {
				fn := func() { got = append(got, i) }
				if it.lane && useLane {
					w.atLane(l, it.at, fn)
				} else {
					w.at(it.at, fn)
				}
			}
			w.run(1<<62, nil)
			return got
		}
		if a, b := order(true), order(false); !slices.Equal(a, b) {
			t.Fatalf("with lanes %v, heap only %v", a, b)
		}
	})
}

func TestWorldRunStopsAtUntil(t *testing.T) {
	w := newWorld()
	var ran []int64
	for _, at := range []int64{5, 1, 9, 3} {
		w.at(at, func() { ran = append(ran, w.now) })
	}
	w.run(5, nil)
	if want := []int64{1, 3, 5}; !slices.Equal(ran, want) {
		t.Fatalf("ran at %v, want %v", ran, want)
	}
	if got := w.clock.Now(); !got.Equal(epoch.Add(5)) {
		t.Fatalf("clock reads %v, want epoch+5ns", got)
	}
}

func TestRandStreamsAreIndependentAndRepeatable(t *testing.T) {
	a, b := newRand(1, 2, 3), newRand(1, 2, 3)
	c := newRand(1, 2, 4)
	for i := range 10 {
		x, y, z := a.Uint64(), b.Uint64(), c.Uint64()
		if x != y {
			t.Fatalf("draw %d: same path gave %d and %d", i, x, y)
		}
		if x == z {
			t.Fatalf("draw %d: different paths both gave %d", i, x)
		}
	}
}

func TestRecovery(t *testing.T) {
	flat := func(n int, v int64) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	with := func(s []int64, from, to int, v int64) []int64 {
		s = slices.Clone(s)
		for i := from; i < to; i++ {
			s[i] = v
		}
		return s
	}
	offered := flat(40, 100)
	tests := []struct {
		name string
		good []int64
		end  int
		want float64
	}{
		{"never hurt", flat(40, 100), 10, 0},
		{"back three buckets after the end", with(flat(40, 100), 5, 13, 0), 10, 3},
		{"within 5 % counts as back", with(flat(40, 96), 5, 10, 0), 10, 0},
		{"never back", with(flat(40, 100), 5, 40, 50), 10, -1},
		{"a relapse later resets it", with(with(flat(40, 100), 5, 12, 0), 25, 27, 0), 10, 17},
		{"end too late to judge", flat(40, 100), 37, -1},
	}
	for _, tt := range tests {
		if got := recovery(offered, tt.good, tt.end); got != tt.want {
			t.Errorf("%s: recovery = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int64) []int64 {
		for i := range v {
			v[i] *= int64(time.Millisecond)
		}
		return v
	}
	tests := []struct {
		d    []int64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{ms(7), 0.999, 7},
		{ms(1, 2, 3, 4), 0.5, 2},
		{ms(1, 2, 3, 4), 0.99, 4},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9},
	}
	for i, tt := range tests {
		if got := percentileMs(tt.d, tt.q); got != tt.want {
			t.Errorf("case %d: percentile(%v) = %v, want %v", i, tt.q, got, tt.want)
		}
	}
}
