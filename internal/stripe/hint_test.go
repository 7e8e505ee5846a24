package stripe

import "testing"

func TestHintSalted(t *testing.T) {
	seen := map[int]bool{}
	for salt := range uint32(64) {
		h := HintSalted(salt)
		if h < 0 || h >= Cells {
			t.Fatalf("HintSalted(%d) = %d, want in [0, %d)", salt, h, Cells)
		}
		seen[h] = true
	}
	// Changing the salt must deal the same goroutine other cells.
	if len(seen) < Cells/2 {
		t.Errorf("64 salts reached only %d of %d cells", len(seen), Cells)
	}
	if h := Hint(); h < 0 || h >= Cells {
		t.Fatalf("Hint() = %d", h)
	}
}
