package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store keeps dead-letter messages. The embedded implementation is Bolt (a
// bbolt file); a Redis Streams implementation shares this interface, and
// every implementation must pass dlqtest.RunConformance.
//
// Every method is safe for concurrent use. A method that writes returns only
// once the write is durable. Methods return ErrClosed after Close, and the
// context's error, without writing, if ctx is done before the call starts.
type Store interface {
	// Put stores a copy of m and returns the ID it was given (m.ID is
	// ignored). Zero times and state are filled as documented on Message.
	// It fails with ErrInvalidMessage (bad queue name or state),
	// ErrTooLarge or ErrQueueFull, storing nothing.
	Put(ctx context.Context, m Message) (ID, error)

	// Get returns the message with the given ID, or ErrNotFound.
	Get(ctx context.Context, id ID) (Message, error)

	// List returns up to q.Limit messages matching q, oldest (smallest ID)
	// first. An empty result means the listing is complete.
	List(ctx context.Context, q Query) ([]Message, error)

	// Delete removes a message: the acknowledgement of a successful replay,
	// or an operator's discard. It returns ErrNotFound if there is none.
	Delete(ctx context.Context, id ID) error

	// Park sets a message aside (StateParked) so that ClaimAt no longer
	// returns it. Parking a parked message does nothing.
	Park(ctx context.Context, id ID) error

	// Reschedule makes a message ready and due at the given time, whatever
	// its state: it unparks a message, or hands back a claim early.
	Reschedule(ctx context.Context, id ID, at time.Time) error

	// ClaimAt takes up to limit ready messages of queue that are due at now
	// (NextReplay <= now), earliest due first (then by ID), and moves their
	// NextReplay to now+lease so that no other ClaimAt returns them until the
	// lease ends: the lease is how a message whose replayer died comes back.
	// It returns the messages as updated.
	ClaimAt(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]Message, error)

	// Fail records a failed replay: Attempts and Replays grow by one,
	// LastFailure, LastError and NextReplay come from f, and the state
	// becomes parked if f.Park, else ready. It returns ErrNotFound if the
	// message is gone.
	Fail(ctx context.Context, id ID, f ReplayFailure) error

	// Purge deletes every message matching f and returns how many it
	// deleted.
	Purge(ctx context.Context, f PurgeFilter) (int, error)

	// Stats returns the depth and age of every non-empty queue, sorted by
	// queue name.
	Stats(ctx context.Context) ([]QueueStats, error)

	// Close releases the store. Writes accepted before Close are completed
	// first. Calling Close again does nothing.
	Close() error
}

// Errors returned by stores and the Replayer. Test for them with errors.Is;
// the returned errors wrap them with details (file, queue, sizes).
var (
	// ErrNotFound is returned for an ID that is not (or no longer) stored.
	ErrNotFound = errors.New("dlq: message not found")

	// ErrInvalidMessage is returned by Put for a message it cannot store:
	// an empty or over-long queue name, or an unknown state.
	ErrInvalidMessage = errors.New("dlq: invalid message")

	// ErrTooLarge is returned by Put when a message's stored size exceeds
	// the per-message limit.
	ErrTooLarge = errors.New("dlq: message too large")

	// ErrQueueFull is returned by Put when the queue already holds its
	// limit of messages or bytes. Nothing was stored; an operator has to
	// replay, purge or raise the limit.
	ErrQueueFull = errors.New("dlq: queue full")

	// ErrClosed is returned by every method of a closed store.
	ErrClosed = errors.New("dlq: store closed")

	// ErrCorrupt is returned when a store file is not a readable DLQ file,
	// at open or when a damaged page or record is met later; the error
	// names the file. A store that met a damaged page refuses further work.
	ErrCorrupt = errors.New("dlq: store file corrupt or unreadable")

	// ErrInUse is returned by OpenBolt when another process (or another
	// open in this one) holds the file and did not let go within
	// Options.LockTimeout.
	ErrInUse = errors.New("dlq: store file in use")

	// ErrUnhealthy is returned by on-demand replays while the Replayer's
	// gate reports the target unhealthy.
	ErrUnhealthy = errors.New("dlq: target unhealthy, replay refused")

	// ErrBusy is returned by Replayer.ReplayOne when the message is being
	// replayed already.
	ErrBusy = errors.New("dlq: message is being replayed")
)

// MaxQueueName is the longest queue name, in bytes.
const MaxQueueName = 255

// ValidateForPut checks what every store checks in Put before storing m:
// the queue name and the state. Store implementations call it so that they
// reject the same messages with the same errors.
func ValidateForPut(m *Message) error {
	switch {
	case m.Queue == "":
		return errorf(ErrInvalidMessage, "queue name is empty")
	case len(m.Queue) > MaxQueueName:
		return errorf(ErrInvalidMessage, "queue name is %d bytes, more than %d", len(m.Queue), MaxQueueName)
	case m.State > StateParked:
		return errorf(ErrInvalidMessage, "unknown state %v", m.State)
	case m.Attempts < 0 || m.Replays < 0:
		return errorf(ErrInvalidMessage, "Attempts and Replays must be >= 0, got %d and %d", m.Attempts, m.Replays)
	}
	return nil
}

// FillForPut applies Put's defaults to m for a message put at now with the
// given id: zero times and state as documented on Message. Store
// implementations call it after ValidateForPut.
func FillForPut(m *Message, id ID, now time.Time) {
	m.ID = id
	if m.FirstFailure.IsZero() {
		m.FirstFailure = now
	}
	if m.LastFailure.IsZero() {
		m.LastFailure = m.FirstFailure
	}
	if m.NextReplay.IsZero() {
		m.NextReplay = now
	}
	if m.State == StateAny {
		m.State = StateReady
	}
}

// ApplyFailure applies a failed replay to m the way Store.Fail must, cutting
// the error text to MaxErrorText bytes.
func ApplyFailure(m *Message, f ReplayFailure) {
	m.Attempts++
	m.Replays++
	m.LastFailure = f.At
	m.LastError = truncate(f.Error, MaxErrorText)
	m.NextReplay = f.NextReplay
	m.State = StateReady
	if f.Park {
		m.State = StateParked
	}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 { // continuation byte
		i--
	}
	return s[:i]
}

// errorf wraps a sentinel with details: "dlq: invalid message: queue name is empty".
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
