package sluiceredis

// HeldSlots is the number of probe slots s believes it holds, for tests.
func (s *BreakerSync) HeldSlots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// DoneScriptHash is the SHA-1 of the script that ends a probe, for tests
// that hold its round trip.
func DoneScriptHash() string { return doneScript.Hash() }
