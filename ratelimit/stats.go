package ratelimit

import "time"

// Stats is a snapshot of a limiter's counters and state.
type Stats struct {
	Name string
	// Allowed counts the calls admitted, after waiting or not.
	Allowed int64
	// Rejected counts the calls refused.
	Rejected int64
	// Waited counts the admitted calls that slept first, and WaitTime is
	// the total time they slept.
	Waited   int64
	WaitTime time.Duration
	// Tokens is how many tokens the bucket holds now; negative when
	// waiting callers hold tokens that have not refilled yet.
	Tokens float64
	// Rate, Per, Burst and Smooth are the configuration in force; Rate is
	// zero for an unlimited limiter.
	Rate   float64
	Per    time.Duration
	Burst  int
	Smooth bool
}

// Stats returns a snapshot of the limiter. The counters are read one after
// another, so a snapshot taken under load may be off by the calls in flight.
func (l *TokenBucket) Stats() Stats {
	tat, p := l.load()
	return Stats{
		Name:     l.name,
		Allowed:  l.allowed.Load(),
		Rejected: l.rejected.Load(),
		Waited:   l.waited.Load(),
		WaitTime: time.Duration(l.waitNs.Load()),
		Tokens:   p.tokens(tat, l.now()),
		Rate:     p.cfg.Rate,
		Per:      p.cfg.Per,
		Burst:    p.cfg.Burst,
		Smooth:   p.cfg.Smooth,
	}
}
