package sluiceredis

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-go/sluice/dlq"
)

// importScript: ARGV as putScript's. 2 when the ID is stored already, 0
// when the queue is full.
var importScript = script(`
local id, q, st = ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', mkey(id)) == 1 then return 2 end
local max = tonumber(ARGV[14])
if max >= 0 and redis.call('ZCARD', P .. ':q:' .. q) >= max then return 0 end
redis.call('HSET', mkey(id), 'q', q, 'st', st, 'nr', ARGV[5], 'dk', ARGV[6], 'att', ARGV[7], 'rep', ARGV[8],
  'ff', ARGV[9], 'lf', ARGV[10], 'le', ARGV[11], 'p', ARGV[12], 'h', ARGV[13])
add(id, q, st, ARGV[6])
return 1
`)

var _ dlq.Importer = (*Store)(nil)

// Import implements dlq.Importer: it stores m with its own ID and fields
// (zero times and state filled as Put fills them), or does nothing if a
// message with that ID is stored already, so that a dlq.Failover moving
// local messages here never stores one twice.
func (s *Store) Import(ctx context.Context, m dlq.Message) error {
	if m.ID.IsZero() {
		return fmt.Errorf("%w: Import needs the message's ID", dlq.ErrInvalidMessage)
	}
	if err := dlq.ValidateForPut(&m); err != nil {
		return err
	}
	h := encodeHeaders(m.Headers)
	if size := len(m.Payload) + len(h) + len(m.Queue) + len(m.LastError); size > s.opt.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes for queue %q, over StoreOptions.MaxMessageBytes (%d)", dlq.ErrTooLarge, size, m.Queue, s.opt.MaxMessageBytes)
	}
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	dlq.FillForPut(&m, m.ID, s.opt.Clock.Now())
	id := m.ID.String()
	ok, err := importScript.Run(rctx, s.client, s.routeBy, s.p, id, m.Queue, stateArg(m.State),
		nanos(m.NextReplay), dueHex(m.NextReplay)+id, m.Attempts, m.Replays,
		nanos(m.FirstFailure), nanos(m.LastFailure), m.LastError, m.Payload, h, s.opt.MaxQueueMessages).Int()
	if err != nil {
		return wrap(ctx, err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: queue %q holds StoreOptions.MaxQueueMessages (%d)", dlq.ErrQueueFull, m.Queue, s.opt.MaxQueueMessages)
	}
	return nil
}

// Unavailable reports whether err says Redis could not be reached (it
// matches ErrUnavailable): the dlq.FailoverOptions.Unavailable for a Store
// primary, which NewFailover sets.
func Unavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// NewFailover returns a dlq.Failover that keeps dead letters in primary and,
// while Redis cannot be reached, in local (a dlq.Bolt, say), moving them to
// Redis once it answers again. opt's Primary, Local and (unless set)
// Unavailable are filled in. A put waits for Redis at most the shorter of
// opt.Timeout and primary's StoreOptions.Timeout before it goes to local.
func NewFailover(primary *Store, local dlq.Store, opt dlq.FailoverOptions) (*dlq.Failover, error) {
	if primary == nil {
		return nil, errors.New("sluiceredis: NewFailover needs a primary Store")
	}
	opt.Primary, opt.Local = primary, local
	if opt.Unavailable == nil {
		opt.Unavailable = Unavailable
	}
	return dlq.NewFailover(opt)
}
