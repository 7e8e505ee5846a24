package dlq

import (
	"fmt"
	"maps"
	"time"

	"github.com/sluice-go/sluice/internal/ids"
)

// ID identifies a message. IDs sort by the time the message was put (to the
// millisecond, then by order of Put within a process) and are unique across
// processes without coordination; the text form (String) is 26 characters
// whose string order is the same.
type ID [16]byte

// ParseID decodes the text form of an ID.
func ParseID(s string) (ID, error) {
	id, err := ids.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("dlq: invalid message id %q", s)
	}
	return ID(id), nil
}

// String returns the 26-character text form.
func (id ID) String() string { return ids.ID(id).String() }

// Time returns when the message was put, to the millisecond, in UTC: the
// time its age is measured from.
func (id ID) Time() time.Time { return ids.ID(id).Time() }

// IsZero reports whether id is the zero ID, which no store assigns.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler (JSON and YAML use it).
func (id ID) MarshalText() ([]byte, error) { return ids.ID(id).AppendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// IDGenerator makes IDs for a Store implementation. The zero value is ready
// and safe for concurrent use; each store keeps its own.
type IDGenerator struct{ g ids.Generator }

// NewAt returns an ID stamped with now that sorts after every ID this
// generator made before.
func (g *IDGenerator) NewAt(now time.Time) ID { return ID(g.g.NewAt(now)) }

// State is where a message is in its life: ready (waiting for replay) or
// parked (set aside for an operator after too many failed replays).
type State uint8

const (
	// StateAny matches both states in a Query or PurgeFilter; it is not
	// the state of a stored message.
	StateAny State = iota
	// StateReady is a message the Replayer will try again once its
	// NextReplay time has come.
	StateReady
	// StateParked is a message the Replayer leaves alone: it failed too
	// many replays (a poison message) or an operator parked it. Only an
	// on-demand replay or Reschedule moves it again.
	StateParked
)

// String returns "any", "ready", "parked", or "State(n)" for other values.
func (s State) String() string {
	switch s {
	case StateAny:
		return "any"
	case StateReady:
		return "ready"
	case StateParked:
		return "parked"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Message is one unit of work that exhausted every other option and waits
// in a queue for replay.
type Message struct {
	// ID is assigned by the store in Put; Put ignores the value given.
	ID ID
	// Queue names the queue (usually the route or target) the message
	// belongs to: 1 to 255 bytes.
	Queue string
	// Payload is the work itself, opaque to the store.
	Payload []byte
	// Headers carries metadata (method, URL, content type, trace id...).
	Headers map[string]string
	// Attempts counts every attempt made so far: those before the message
	// was put, which the producer reports, plus one per failed replay.
	Attempts int
	// Replays counts failed replays; the Replayer parks the message when
	// it reaches ReplayerConfig.MaxReplays.
	Replays int
	// FirstFailure is when the work first failed. If zero at Put, the put
	// time.
	FirstFailure time.Time
	// LastFailure is when the work last failed. If zero at Put,
	// FirstFailure.
	LastFailure time.Time
	// LastError is the text of the last failure's error.
	LastError string
	// NextReplay is when the message is next due for replay. If zero at
	// Put, the put time (due at once).
	NextReplay time.Time
	// State is ready or parked. If zero at Put, StateReady.
	State State
}

// Enqueued returns when the message was put: the time of its ID.
func (m Message) Enqueued() time.Time { return m.ID.Time() }

// Clone returns a deep copy of m, sharing no slice or map with it.
func (m Message) Clone() Message {
	if m.Payload != nil {
		m.Payload = append([]byte{}, m.Payload...)
	}
	if m.Headers != nil {
		m.Headers = maps.Clone(m.Headers)
	}
	return m
}

// Query selects messages for Store.List.
type Query struct {
	// Queue restricts the listing to one queue. If empty, all queues.
	Queue string
	// State restricts the listing to one state. If zero (StateAny), both.
	State State
	// After continues a listing: only messages whose ID sorts after it are
	// returned. Pass the last ID of the previous page. If zero, from the
	// oldest message.
	After ID
	// Limit is the most messages returned. If zero, 100.
	Limit int
}

// DefaultListLimit is the page size of a Query whose Limit is zero.
const DefaultListLimit = 100

// PurgeFilter selects messages for Store.Purge. Its zero value matches every
// message in every queue.
type PurgeFilter struct {
	// Queue restricts the purge to one queue. If empty, all queues.
	Queue string
	// State restricts the purge to one state. If zero (StateAny), both.
	State State
	// Before, if not zero, purges only messages put before it (whose
	// ID.Time is before it): purge by age is Before = now - age.
	Before time.Time
}

// ReplayFailure describes a failed replay for Store.Fail.
type ReplayFailure struct {
	// At is when the replay failed; it becomes LastFailure.
	At time.Time
	// Error is the handler's error text; it becomes LastError. Stores may
	// cut it to MaxErrorText bytes.
	Error string
	// NextReplay is when the message is due again.
	NextReplay time.Time
	// Park parks the message; otherwise it is left ready.
	Park bool
}

// MaxErrorText is the longest LastError a store must keep; Fail cuts longer
// texts so that records stay bounded whatever a handler returns.
const MaxErrorText = 4096

// QueueStats describes one queue's depth and age, as Store.Stats reports it.
type QueueStats struct {
	// Queue is the queue's name.
	Queue string
	// Ready and Parked count the messages in each state.
	Ready, Parked int64
	// Bytes is the stored size of the queue's messages, as the store
	// counts it against its limits (0 if the store does not count bytes).
	Bytes int64
	// OldestReady and OldestParked are the put times (ID.Time) of the
	// oldest message in each state; zero when the state is empty.
	OldestReady, OldestParked time.Time
}

// Depth returns Ready + Parked.
func (q QueueStats) Depth() int64 { return q.Ready + q.Parked }

// Oldest returns the put time of the oldest message in either state, or the
// zero time if the queue is empty.
func (q QueueStats) Oldest() time.Time {
	switch {
	case q.OldestReady.IsZero():
		return q.OldestParked
	case q.OldestParked.IsZero() || q.OldestReady.Before(q.OldestParked):
		return q.OldestReady
	}
	return q.OldestParked
}

// OldestAgeAt returns how long the oldest message has waited at now, or 0 if
// the queue is empty.
func (q QueueStats) OldestAgeAt(now time.Time) time.Duration {
	o := q.Oldest()
	if o.IsZero() {
		return 0
	}
	return max(now.Sub(o), 0)
}
