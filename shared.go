package sluice

// SharedComponent is a component whose state lives outside the process, in
// a store that every instance shares (a Redis-backed rate limiter, a
// dead-letter store that fails over to a local file, a breaker whose state
// is synchronised between instances), and which falls back to a local mode
// while that store cannot be reached. Health reports and metrics read it
// without knowing the store: package health lists such components and
// alerts on them, and package metrics exports sluice_shared_degraded.
type SharedComponent interface {
	// Degraded reports whether the component works in its local fallback
	// mode now instead of from the shared state.
	Degraded() bool
	// LastError returns the last failure to reach the shared state (it
	// stays after a recovery, for the record), or nil if there was none.
	LastError() error
}
