package sluiceredis

// HeldSlots is the number of probe slots s believes it holds, for tests.
func (s *BreakerSync) HeldSlots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
