package ids

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTextRoundTripAndOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var a, b ID
		copy(a[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "a"))
		copy(b[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "b"))
		for _, id := range []ID{a, b} {
			got, err := Parse(id.String())
			if err != nil || got != id {
				t.Fatalf("Parse(%q) = %v, %v; want %v", id.String(), got, err, id)
			}
		}
		if c1, c2 := bytes.Compare(a[:], b[:]), compareStrings(a.String(), b.String()); c1 != c2 {
			t.Fatalf("byte order %d but text order %d for %s, %s", c1, c2, a, b)
		}
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestGeneratorMonotonic(t *testing.T) {
	var g Generator
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, 0, 0, time.Millisecond, 500 * time.Microsecond, -time.Hour, 2 * time.Millisecond, 2 * time.Millisecond}
	var prev ID
	for i, d := range steps {
		id := g.NewAt(base.Add(d))
		if i > 0 && bytes.Compare(prev[:], id[:]) >= 0 {
			t.Fatalf("step %d: id %s does not sort after %s", i, id, prev)
		}
		prev = id
	}
	if got := g.NewAt(base.Add(5 * time.Millisecond)).Time(); !got.Equal(base.Add(5 * time.Millisecond)) {
		t.Fatalf("Time() = %v, want %v", got, base.Add(5*time.Millisecond))
	}
	// A clock that stepped back keeps the later millisecond.
	if got := g.NewAt(base).Time(); !got.Equal(base.Add(5 * time.Millisecond)) {
		t.Fatalf("after a backward step Time() = %v, want the previous millisecond", got)
	}
}

func TestGeneratorConcurrentUnique(t *testing.T) {
	var g Generator
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const workers, each = 8, 2000
	out := make([][]ID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				out[w] = append(out[w], g.NewAt(now))
			}
		}()
	}
	wg.Wait()
	seen := make(map[ID]bool, workers*each)
	for _, ids := range out {
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			if i > 0 && bytes.Compare(ids[i-1][:], id[:]) >= 0 {
				t.Fatalf("ids of one goroutine not increasing: %s then %s", ids[i-1], id)
			}
		}
	}
	// Two generators (two processes) draw independent random tails.
	var g2 Generator
	if a, b := g.NewAt(now.Add(time.Second)), g2.NewAt(now.Add(time.Second)); a == b {
		t.Fatalf("two generators made the same id %s", a)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "0123", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "01ARZ3NDEKTSV4RRFFQ69G5FA!"} {
		if _, err := Parse(s); err != ErrSyntax {
			t.Errorf("Parse(%q) err = %v, want ErrSyntax", s, err)
		}
	}
	if id, err := Parse("01arz3ndektsv4rrffq69g5fav"); err != nil || id.String() != "01ARZ3NDEKTSV4RRFFQ69G5FAV" {
		t.Errorf("lower case: %v %v", id, err)
	}
	if !(ID{}).IsZero() {
		t.Error("zero ID not IsZero")
	}
}
