package health

import (
	"fmt"
	"time"

	"github.com/sluice-go/sluice/dlq"
)

// DLQThresholds are the limits past which a dead-letter queue needs an
// operator: its oldest message too old, or too many messages waiting or
// parked. They live with the monitor, which is what checks them, rather
// than with the store. The zero value checks nothing; each zero (or
// negative) field is a check left out.
type DLQThresholds struct {
	// MaxAge alerts when the oldest message (ready or parked) has waited
	// longer than this.
	MaxAge time.Duration
	// MaxDepth alerts when the queue holds more messages than this.
	MaxDepth int64
	// MaxParked alerts when more messages than this are parked.
	MaxParked int64
}

// CheckAt returns the warnings that q raises at now, in the order
// AlertDLQAge, AlertDLQDepth, AlertDLQParked, each with the queue as its
// Subject; nil if none. Value and Threshold are in seconds for the age and
// in messages otherwise. Since is left for the Monitor to fill.
func (t DLQThresholds) CheckAt(now time.Time, q dlq.QueueStats) []Alert {
	var out []Alert
	warn := func(typ string, value, limit float64, format string, args ...any) {
		out = append(out, Alert{
			Type: typ, Severity: SeverityWarning, Subject: q.Queue,
			Message: fmt.Sprintf(format, args...), Value: value, Threshold: limit,
		})
	}
	if age := q.OldestAgeAt(now); t.MaxAge > 0 && age > t.MaxAge {
		warn(AlertDLQAge, age.Seconds(), t.MaxAge.Seconds(),
			"dead-letter queue %q: oldest message has waited %v, more than %v", q.Queue, age, t.MaxAge)
	}
	if d := q.Depth(); t.MaxDepth > 0 && d > t.MaxDepth {
		warn(AlertDLQDepth, float64(d), float64(t.MaxDepth),
			"dead-letter queue %q: %d messages, more than %d", q.Queue, d, t.MaxDepth)
	}
	if t.MaxParked > 0 && q.Parked > t.MaxParked {
		warn(AlertDLQParked, float64(q.Parked), float64(t.MaxParked),
			"dead-letter queue %q: %d messages parked, more than %d", q.Queue, q.Parked, t.MaxParked)
	}
	return out
}

// CheckAllAt runs CheckAt on every queue, in order.
func (t DLQThresholds) CheckAllAt(now time.Time, qs []dlq.QueueStats) []Alert {
	var out []Alert
	for _, q := range qs {
		out = append(out, t.CheckAt(now, q)...)
	}
	return out
}
