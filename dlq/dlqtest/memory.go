package dlqtest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
)

// Memory is a dlq.Store held in memory: the reference model the conformance
// suite compares other stores against, and a fast store for tests of code
// that uses a DLQ. Nothing survives the process. It is safe for concurrent
// use; every operation is O(n), which tests do not mind.
type Memory struct {
	clock sluice.Clock
	ids   dlq.IDGenerator

	mu     sync.Mutex
	msgs   map[dlq.ID]dlq.Message
	closed bool
}

var _ dlq.Store = (*Memory)(nil)

// NewMemory returns an empty Memory store that stamps IDs and the default
// times of Put with clock (nil means the system clock).
func NewMemory(clock sluice.Clock) *Memory {
	return &Memory{clock: sluice.ClockOr(clock), msgs: map[dlq.ID]dlq.Message{}}
}

// lock takes the mutex unless the store is closed or ctx is done.
func (s *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return dlq.ErrClosed
	}
	return nil
}

// Put implements dlq.Store.
func (s *Memory) Put(ctx context.Context, m dlq.Message) (dlq.ID, error) {
	if err := dlq.ValidateForPut(&m); err != nil {
		return dlq.ID{}, err
	}
	if err := s.lock(ctx); err != nil {
		return dlq.ID{}, err
	}
	defer s.mu.Unlock()
	now := s.clock.Now()
	dlq.FillForPut(&m, s.ids.NewAt(now), now)
	s.msgs[m.ID] = normalize(m.Clone())
	return m.ID, nil
}

// normalize gives a stored message the form a persistent store returns:
// UTC times without monotonic readings, nil for empty payload and headers.
func normalize(m dlq.Message) dlq.Message {
	for _, t := range []*time.Time{&m.FirstFailure, &m.LastFailure, &m.NextReplay} {
		if !t.IsZero() {
			*t = t.Round(0).UTC()
		}
	}
	if len(m.Payload) == 0 {
		m.Payload = nil
	}
	if len(m.Headers) == 0 {
		m.Headers = nil
	}
	return m
}

// Get implements dlq.Store.
func (s *Memory) Get(ctx context.Context, id dlq.ID) (dlq.Message, error) {
	if err := s.lock(ctx); err != nil {
		return dlq.Message{}, err
	}
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return dlq.Message{}, fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	return m.Clone(), nil
}

// sorted returns the messages matching keep, by ID. The caller holds mu.
func (s *Memory) sorted(keep func(m *dlq.Message) bool) []dlq.Message {
	var out []dlq.Message
	for _, m := range s.msgs {
		if keep(&m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b dlq.Message) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

func matches(m *dlq.Message, queue string, st dlq.State) bool {
	return (queue == "" || m.Queue == queue) && (st == dlq.StateAny || m.State == st)
}

// List implements dlq.Store.
func (s *Memory) List(ctx context.Context, q dlq.Query) ([]dlq.Message, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if q.Limit <= 0 {
		q.Limit = dlq.DefaultListLimit
	}
	all := s.sorted(func(m *dlq.Message) bool {
		return matches(m, q.Queue, q.State) && bytes.Compare(m.ID[:], q.After[:]) > 0
	})
	out := all[:min(q.Limit, len(all))]
	for i := range out {
		out[i] = out[i].Clone()
	}
	return out, nil
}

// update applies change to a stored message. The caller holds mu.
func (s *Memory) update(id dlq.ID, change func(m *dlq.Message)) error {
	m, ok := s.msgs[id]
	if !ok {
		return fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	change(&m)
	s.msgs[id] = normalize(m)
	return nil
}

// Delete implements dlq.Store.
func (s *Memory) Delete(ctx context.Context, id dlq.ID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.msgs[id]; !ok {
		return fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	delete(s.msgs, id)
	return nil
}

// Park implements dlq.Store.
func (s *Memory) Park(ctx context.Context, id dlq.ID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.update(id, func(m *dlq.Message) { m.State = dlq.StateParked })
}

// Reschedule implements dlq.Store.
func (s *Memory) Reschedule(ctx context.Context, id dlq.ID, at time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.update(id, func(m *dlq.Message) { m.State, m.NextReplay = dlq.StateReady, at })
}

// ClaimAt implements dlq.Store.
func (s *Memory) ClaimAt(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]dlq.Message, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	due := s.sorted(func(m *dlq.Message) bool {
		return m.Queue == queue && m.State == dlq.StateReady && !m.NextReplay.After(now)
	})
	slices.SortStableFunc(due, func(a, b dlq.Message) int { return a.NextReplay.Compare(b.NextReplay) })
	due = due[:min(max(limit, 0), len(due))]
	for i := range due {
		due[i].NextReplay = now.Add(lease)
		due[i] = normalize(due[i])
		s.msgs[due[i].ID] = due[i]
		due[i] = due[i].Clone()
	}
	return due, nil
}

// Fail implements dlq.Store.
func (s *Memory) Fail(ctx context.Context, id dlq.ID, f dlq.ReplayFailure) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.update(id, func(m *dlq.Message) { dlq.ApplyFailure(m, f) })
}

// Purge implements dlq.Store.
func (s *Memory) Purge(ctx context.Context, f dlq.PurgeFilter) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for id, m := range s.msgs {
		if matches(&m, f.Queue, f.State) && (f.Before.IsZero() || id.Time().Before(f.Before)) {
			delete(s.msgs, id)
			n++
		}
	}
	return n, nil
}

// Stats implements dlq.Store. Bytes is always 0: Memory has no limits.
func (s *Memory) Stats(ctx context.Context) ([]dlq.QueueStats, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	byQueue := map[string]*dlq.QueueStats{}
	for _, m := range s.sorted(func(*dlq.Message) bool { return true }) {
		qs := byQueue[m.Queue]
		if qs == nil {
			qs = &dlq.QueueStats{Queue: m.Queue}
			byQueue[m.Queue] = qs
		}
		if m.State == dlq.StateParked {
			if qs.Parked == 0 {
				qs.OldestParked = m.ID.Time()
			}
			qs.Parked++
		} else {
			if qs.Ready == 0 {
				qs.OldestReady = m.ID.Time()
			}
			qs.Ready++
		}
	}
	out := make([]dlq.QueueStats, 0, len(byQueue))
	for _, qs := range byQueue {
		out = append(out, *qs)
	}
	slices.SortFunc(out, func(a, b dlq.QueueStats) int { return cmp.Compare(a.Queue, b.Queue) })
	return out, nil
}

// Close implements dlq.Store.
func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
