package dlq

import (
	"fmt"
	"time"
)

// Thresholds are the limits past which a queue needs an operator: its
// oldest message too old, or too many messages waiting or parked. The zero
// value checks nothing; each zero (or negative) field is a check left out.
type Thresholds struct {
	// MaxAge alerts when the oldest message (ready or parked) has waited
	// longer than this.
	MaxAge time.Duration
	// MaxDepth alerts when the queue holds more messages than this.
	MaxDepth int64
	// MaxParked alerts when more messages than this are parked.
	MaxParked int64
}

// AlertKind says which threshold an Alert crossed.
type AlertKind uint8

const (
	// AlertAge: the oldest message is older than Thresholds.MaxAge.
	AlertAge AlertKind = iota + 1
	// AlertDepth: the queue is deeper than Thresholds.MaxDepth.
	AlertDepth
	// AlertParked: more messages are parked than Thresholds.MaxParked.
	AlertParked
)

var alertNames = [...]string{"", "age", "depth", "parked"}

// String returns "age", "depth", "parked", or "AlertKind(n)".
func (k AlertKind) String() string {
	if k > 0 && int(k) < len(alertNames) {
		return alertNames[k]
	}
	return fmt.Sprintf("AlertKind(%d)", uint8(k))
}

// Alert is one crossed threshold of one queue.
type Alert struct {
	// Queue is the queue that crossed the threshold.
	Queue string
	// Kind is the threshold crossed.
	Kind AlertKind
	// Value and Limit are the measured value and the threshold, in
	// seconds for AlertAge and in messages otherwise.
	Value, Limit float64
	// Message is a sentence for an operator.
	Message string
}

// Check returns the thresholds that q crosses at now, in the order age,
// depth, parked; nil if none. It is what the health monitor calls on each
// queue's stats.
func (t Thresholds) Check(now time.Time, q QueueStats) []Alert {
	var out []Alert
	if age := q.OldestAge(now); t.MaxAge > 0 && age > t.MaxAge {
		out = append(out, Alert{
			Queue: q.Queue, Kind: AlertAge, Value: age.Seconds(), Limit: t.MaxAge.Seconds(),
			Message: fmt.Sprintf("dead-letter queue %q: oldest message has waited %v, more than %v", q.Queue, age, t.MaxAge),
		})
	}
	if d := q.Depth(); t.MaxDepth > 0 && d > t.MaxDepth {
		out = append(out, Alert{
			Queue: q.Queue, Kind: AlertDepth, Value: float64(d), Limit: float64(t.MaxDepth),
			Message: fmt.Sprintf("dead-letter queue %q: %d messages, more than %d", q.Queue, d, t.MaxDepth),
		})
	}
	if t.MaxParked > 0 && q.Parked > t.MaxParked {
		out = append(out, Alert{
			Queue: q.Queue, Kind: AlertParked, Value: float64(q.Parked), Limit: float64(t.MaxParked),
			Message: fmt.Sprintf("dead-letter queue %q: %d messages parked, more than %d", q.Queue, q.Parked, t.MaxParked),
		})
	}
	return out
}

// CheckAll runs Check on every queue, in order.
func (t Thresholds) CheckAll(now time.Time, qs []QueueStats) []Alert {
	var out []Alert
	for _, q := range qs {
		out = append(out, t.Check(now, q)...)
	}
	return out
}
