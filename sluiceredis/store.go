package sluiceredis

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
)

// StoreOptions configures a Store. Only Client is required.
type StoreOptions struct {
	// Client is the Redis client; it must honour context deadlines (see
	// the package comment). The Store does not close it.
	Client redis.UniversalClient

	// Prefix starts every key of the store. It must hold a hash tag
	// ("{…}") so that all of the store's keys live on one Cluster slot,
	// since every operation is one atomic script over several of them.
	// Stores with different prefixes are independent. If empty,
	// "sluice:{dlq}".
	Prefix string

	// Clock stamps IDs and the default times of Put. If nil, the system
	// clock. ClaimAt and the Replayer pass their own now.
	Clock sluice.Clock

	// Timeout bounds each round trip to Redis. If zero, 2s.
	Timeout time.Duration

	// MaxMessageBytes is the largest message (payload, headers, queue name
	// and error text); Put fails with dlq.ErrTooLarge above it. If zero,
	// 1 MiB.
	MaxMessageBytes int

	// MaxQueueMessages is the most messages one queue holds; Put fails
	// with dlq.ErrQueueFull at it. If zero, 1,000,000; if negative, no
	// limit.
	MaxQueueMessages int64
}

// DefaultPrefix is the key prefix of a Store whose options name none.
const DefaultPrefix = "sluice:{dlq}"

// Store is a dlq.Store on Redis, shared by every instance that uses the same
// client target and prefix: any of them can put, list, replay or purge, and
// ClaimAt's lease hands each due message to exactly one claimer at a time, so
// a fleet of Replayers replays each message once (at least once if one dies
// mid-replay: the message comes back when the lease ends).
//
// Each message is a hash; sorted sets index it by ID (all, per state, per
// queue, per queue and state) and, while it is ready, by due time and ID in
// a per-queue due set, whose first members are what ClaimAt takes. Every
// method is one Lua script or command, atomic on the server, so concurrent
// instances never see half an update; a write returns once Redis has
// answered, which is durable as far as the server's appendfsync setting
// makes it (docs/redis.md).
type Store struct {
	client  redis.UniversalClient
	opt     StoreOptions
	p       string // prefix
	routeBy []string
	ids     dlq.IDGenerator

	mu     sync.RWMutex // held shared by every call, exclusively by Close
	closed bool
}

var _ dlq.Store = (*Store)(nil)

// NewStore returns a Store for opt. It does not contact Redis.
func NewStore(opt StoreOptions) (*Store, error) {
	switch {
	case opt.Client == nil:
		return nil, errors.New("sluiceredis: StoreOptions.Client is required")
	case opt.Timeout < 0:
		return nil, fmt.Errorf("sluiceredis: StoreOptions.Timeout must be >= 0, got %v", opt.Timeout)
	case opt.MaxMessageBytes < 0:
		return nil, fmt.Errorf("sluiceredis: StoreOptions.MaxMessageBytes must be >= 0, got %d", opt.MaxMessageBytes)
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Second
	}
	if opt.MaxMessageBytes == 0 {
		opt.MaxMessageBytes = 1 << 20
	}
	if opt.MaxQueueMessages == 0 {
		opt.MaxQueueMessages = 1_000_000
	}
	opt.Clock = sluice.ClockOr(opt.Clock)
	// Every script names the store's "all" key first, so that a Cluster
	// client sends it to the slot of the prefix's hash tag.
	return &Store{client: opt.Client, opt: opt, p: opt.Prefix, routeBy: []string{opt.Prefix + ":all"}}, nil
}

// Options returns the options in force, with defaults applied.
func (s *Store) Options() StoreOptions { return s.opt }

// begin starts a call: it fails with ErrClosed or the context's error, and
// otherwise returns a context bounded by Timeout and the function that ends
// the call.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, context.Cause(ctx)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, dlq.ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	return rctx, func() { cancel(); s.mu.RUnlock() }, nil
}

// wrap turns a Redis failure into an error matching ErrUnavailable, keeping
// the caller's own context error as it is.
func wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
	}
	return fmt.Errorf("%w: dlq: %w", ErrUnavailable, err)
}

// Close stops the store after the calls in progress have finished. It does
// not close the client.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// The fields of a message's hash, in the order the scripts return them
// after the ID.
var fields = []string{"q", "st", "nr", "att", "rep", "ff", "lf", "le", "p", "h"}

// prelude defines what the scripts share: P (the prefix, ARGV[1]) and the
// index upkeep. A message's due member, kept in its "dk" field, is its due
// time (16 hex digits, sortable) followed by its ID.
const prelude = `
local P = ARGV[1]
local function mkey(id) return P .. ':m:' .. id end
local function add(id, q, st, dk)
  redis.call('ZADD', P .. ':all', 0, id)
  redis.call('ZADD', P .. ':q:' .. q, 0, id)
  redis.call('ZADD', P .. ':s:' .. st, 0, id)
  redis.call('ZADD', P .. ':qs:' .. q .. ':' .. st, 0, id)
  if st == '1' then redis.call('ZADD', P .. ':due:' .. q, 0, dk) end
  redis.call('SADD', P .. ':queues', q)
end
local function remove(id, q, st, dk)
  redis.call('ZREM', P .. ':all', id)
  redis.call('ZREM', P .. ':q:' .. q, id)
  redis.call('ZREM', P .. ':s:' .. st, id)
  redis.call('ZREM', P .. ':qs:' .. q .. ':' .. st, id)
  if st == '1' then redis.call('ZREM', P .. ':due:' .. q, dk) end
  if redis.call('ZCARD', P .. ':q:' .. q) == 0 then redis.call('SREM', P .. ':queues', q) end
end
local function move(id, q, st, dk, nst, ndk)
  redis.call('ZREM', P .. ':s:' .. st, id)
  redis.call('ZREM', P .. ':qs:' .. q .. ':' .. st, id)
  if st == '1' then redis.call('ZREM', P .. ':due:' .. q, dk) end
  redis.call('ZADD', P .. ':s:' .. nst, 0, id)
  redis.call('ZADD', P .. ':qs:' .. q .. ':' .. nst, 0, id)
  if nst == '1' then redis.call('ZADD', P .. ':due:' .. q, 0, ndk) end
end
local function record(out, id)
  out[#out + 1] = id
  local f = redis.call('HMGET', mkey(id), 'q', 'st', 'nr', 'att', 'rep', 'ff', 'lf', 'le', 'p', 'h')
  for i = 1, #f do out[#out + 1] = f[i] end
end
`

func script(body string) *redis.Script { return redis.NewScript(prelude + body) }

// putScript: ARGV id q st nr dk att rep ff lf le p h max. 0 when the queue
// is full.
var putScript = script(`
local id, q, st = ARGV[2], ARGV[3], ARGV[4]
local max = tonumber(ARGV[14])
if max >= 0 and redis.call('ZCARD', P .. ':q:' .. q) >= max then return 0 end
redis.call('HSET', mkey(id), 'q', q, 'st', st, 'nr', ARGV[5], 'dk', ARGV[6], 'att', ARGV[7], 'rep', ARGV[8],
  'ff', ARGV[9], 'lf', ARGV[10], 'le', ARGV[11], 'p', ARGV[12], 'h', ARGV[13])
add(id, q, st, ARGV[6])
return 1
`)

// deleteScript: ARGV id. 0 when there is no such message.
var deleteScript = script(`
local id = ARGV[2]
local m = redis.call('HMGET', mkey(id), 'q', 'st', 'dk')
if not m[1] then return 0 end
redis.call('DEL', mkey(id))
remove(id, m[1], m[2], m[3])
return 1
`)

// setStateScript: ARGV id mode nr duehex [lf le]. mode "park" parks
// (NextReplay kept), "ready" makes it ready and due at nr, "fail" records
// a failed replay (ARGV[7] "1" to park). 0 when there is no such message.
var setStateScript = script(`
local id, mode = ARGV[2], ARGV[3]
local k = mkey(id)
local m = redis.call('HMGET', k, 'q', 'st', 'dk')
if not m[1] then return 0 end
local nst = '1'
if mode == 'park' or (mode == 'fail' and ARGV[8] == '1') then nst = '2' end
if mode == 'park' and m[2] == '2' then return 1 end
local ndk = ARGV[5] .. id
move(id, m[1], m[2], m[3], nst, ndk)
redis.call('HSET', k, 'st', nst)
if mode ~= 'park' then redis.call('HSET', k, 'nr', ARGV[4], 'dk', ndk) end
if mode == 'fail' then
  redis.call('HINCRBY', k, 'att', 1)
  redis.call('HINCRBY', k, 'rep', 1)
  redis.call('HSET', k, 'lf', ARGV[6], 'le', ARGV[7])
end
return 1
`)

// claimScript: ARGV queue bound limit leasehex leasenr. It takes the due
// members up to bound, moves them to the lease's end and returns the
// messages.
var claimScript = script(`
local q = ARGV[2]
local due = P .. ':due:' .. q
local members = redis.call('ZRANGEBYLEX', due, '-', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, mem in ipairs(members) do
  local id = string.sub(mem, 17)
  local ndk = ARGV[5] .. id
  redis.call('ZREM', due, mem)
  redis.call('ZADD', due, 0, ndk)
  redis.call('HSET', mkey(id), 'nr', ARGV[6], 'dk', ndk)
  record(out, id)
end
return out
`)

// listScript: ARGV index after limit. The messages of the index after the
// given ID, by ID.
var listScript = script(`
local ids = redis.call('ZRANGEBYLEX', ARGV[2], ARGV[3], '+', 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do record(out, id) end
return out
`)

// purgeScript: ARGV index max. Deletes up to 1000 messages of the index
// whose IDs sort before max and returns how many.
var purgeScript = script(`
local ids = redis.call('ZRANGEBYLEX', ARGV[2], '-', ARGV[3], 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  local m = redis.call('HMGET', mkey(id), 'q', 'st', 'dk')
  redis.call('DEL', mkey(id))
  remove(id, m[1], m[2], m[3])
end
return #ids
`)

// statsScript: for every queue, its name, ready and parked counts, and the
// first ID of each state (an empty string when there is none).
var statsScript = script(`
local out = {}
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  out[#out + 1] = q
  for _, st in ipairs({'1', '2'}) do
    local key = P .. ':qs:' .. q .. ':' .. st
    out[#out + 1] = redis.call('ZCARD', key)
    local first = redis.call('ZRANGE', key, 0, 0)
    out[#out + 1] = first[1] or ''
  end
end
return out
`)

// nanos is a time as the hash keeps it: Unix nanoseconds, 0 for the zero
// time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// dueHex is the sortable form of a due time: 16 hex digits of the Unix
// nanoseconds with the sign bit flipped.
func dueHex(t time.Time) string {
	return fmt.Sprintf("%016x", uint64(nanos(t))^(1<<63))
}

// encodeHeaders packs headers as length-prefixed keys and values, sorted.
func encodeHeaders(h map[string]string) []byte {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(h)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(h[k])))
		b = append(b, h[k]...)
	}
	return b
}

func decodeHeaders(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	h := map[string]string{}
	next := func() (string, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", errors.New("bad headers")
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, nil
	}
	for len(b) > 0 {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		h[k] = v
	}
	return h, nil
}

// stateArg is the state as the scripts keep it.
func stateArg(st dlq.State) string { return strconv.Itoa(int(st)) }

// Put implements dlq.Store.
func (s *Store) Put(ctx context.Context, m dlq.Message) (dlq.ID, error) {
	if err := dlq.ValidateForPut(&m); err != nil {
		return dlq.ID{}, err
	}
	h := encodeHeaders(m.Headers)
	if size := len(m.Payload) + len(h) + len(m.Queue) + len(m.LastError); size > s.opt.MaxMessageBytes {
		return dlq.ID{}, fmt.Errorf("%w: %d bytes for queue %q, over StoreOptions.MaxMessageBytes (%d)", dlq.ErrTooLarge, size, m.Queue, s.opt.MaxMessageBytes)
	}
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return dlq.ID{}, err
	}
	defer end()
	now := s.opt.Clock.Now()
	dlq.FillForPut(&m, s.ids.NewAt(now), now)
	id := m.ID.String()
	ok, err := putScript.Run(rctx, s.client, s.routeBy, s.p, id, m.Queue, stateArg(m.State),
		nanos(m.NextReplay), dueHex(m.NextReplay)+id, m.Attempts, m.Replays,
		nanos(m.FirstFailure), nanos(m.LastFailure), m.LastError, m.Payload, h, s.opt.MaxQueueMessages).Int()
	if err != nil {
		return dlq.ID{}, wrap(ctx, err)
	}
	if ok == 0 {
		return dlq.ID{}, fmt.Errorf("%w: queue %q holds StoreOptions.MaxQueueMessages (%d)", dlq.ErrQueueFull, m.Queue, s.opt.MaxQueueMessages)
	}
	return m.ID, nil
}

// Get implements dlq.Store.
func (s *Store) Get(ctx context.Context, id dlq.ID) (dlq.Message, error) {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return dlq.Message{}, err
	}
	defer end()
	vals, err := s.client.HMGet(rctx, s.p+":m:"+id.String(), fields...).Result()
	if err != nil {
		return dlq.Message{}, wrap(ctx, err)
	}
	if vals[0] == nil {
		return dlq.Message{}, fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	return decodeMessage(append([]any{id.String()}, vals...))
}

// decodeMessage reads one message as the scripts return it: the ID and
// then the fields.
func decodeMessage(v []any) (dlq.Message, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	id, err := dlq.ParseID(str(0))
	if err != nil {
		return dlq.Message{}, fmt.Errorf("%w: %w", dlq.ErrCorrupt, err)
	}
	h, err := decodeHeaders([]byte(str(10)))
	if err != nil {
		return dlq.Message{}, fmt.Errorf("%w: message %s: %w", dlq.ErrCorrupt, id, err)
	}
	m := dlq.Message{
		ID:           id,
		Queue:        str(1),
		State:        dlq.State(num(2)),
		NextReplay:   fromNanos(num(3)),
		Attempts:     int(num(4)),
		Replays:      int(num(5)),
		FirstFailure: fromNanos(num(6)),
		LastFailure:  fromNanos(num(7)),
		LastError:    str(8),
		Headers:      h,
	}
	if p := str(9); p != "" {
		m.Payload = []byte(p)
	}
	return m, nil
}

// decodeMessages reads the flat reply of a script that returns messages.
func decodeMessages(v []any) ([]dlq.Message, error) {
	n := len(fields) + 1
	out := make([]dlq.Message, 0, len(v)/n)
	for i := 0; i+n <= len(v); i += n {
		m, err := decodeMessage(v[i : i+n])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// index is the key of the sorted set listing the messages of queue (all if
// empty) in state st (both if StateAny).
func (s *Store) index(queue string, st dlq.State) string {
	switch {
	case queue == "" && st == dlq.StateAny:
		return s.p + ":all"
	case queue == "":
		return s.p + ":s:" + stateArg(st)
	case st == dlq.StateAny:
		return s.p + ":q:" + queue
	}
	return s.p + ":qs:" + queue + ":" + stateArg(st)
}

// List implements dlq.Store.
func (s *Store) List(ctx context.Context, q dlq.Query) ([]dlq.Message, error) {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if q.Limit <= 0 {
		q.Limit = dlq.DefaultListLimit
	}
	after := "-"
	if !q.After.IsZero() {
		after = "(" + q.After.String()
	}
	v, err := listScript.Run(rctx, s.client, s.routeBy, s.p, s.index(q.Queue, q.State), after, q.Limit).Slice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	return decodeMessages(v)
}

// change runs setStateScript and maps its 0 to ErrNotFound.
func (s *Store) change(ctx context.Context, id dlq.ID, args ...any) error {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	ok, err := setStateScript.Run(rctx, s.client, s.routeBy, append([]any{s.p, id.String()}, args...)...).Int()
	if err != nil {
		return wrap(ctx, err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	return nil
}

// Delete implements dlq.Store.
func (s *Store) Delete(ctx context.Context, id dlq.ID) error {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	ok, err := deleteScript.Run(rctx, s.client, s.routeBy, s.p, id.String()).Int()
	if err != nil {
		return wrap(ctx, err)
	}
	if ok == 0 {
		return fmt.Errorf("%w: %s", dlq.ErrNotFound, id)
	}
	return nil
}

// Park implements dlq.Store.
func (s *Store) Park(ctx context.Context, id dlq.ID) error {
	return s.change(ctx, id, "park", "", "")
}

// Reschedule implements dlq.Store.
func (s *Store) Reschedule(ctx context.Context, id dlq.ID, at time.Time) error {
	return s.change(ctx, id, "ready", nanos(at), dueHex(at))
}

// Fail implements dlq.Store.
func (s *Store) Fail(ctx context.Context, id dlq.ID, f dlq.ReplayFailure) error {
	var applied dlq.Message // ApplyFailure cuts the error text as every store must
	dlq.ApplyFailure(&applied, f)
	park := "0"
	if f.Park {
		park = "1"
	}
	return s.change(ctx, id, "fail", nanos(f.NextReplay), dueHex(f.NextReplay), nanos(f.At), applied.LastError, park)
}

// ClaimAt implements dlq.Store: the due set's first members up to now are
// moved to now+lease in one script, so concurrent claimers on any instance
// never get the same message within its lease.
func (s *Store) ClaimAt(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]dlq.Message, error) {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if limit <= 0 || queue == "" || len(queue) > dlq.MaxQueueName {
		return nil, nil
	}
	until := now.Add(lease)
	// Every member due at now sorts before now's digits followed by '~',
	// which is above every character of an ID.
	v, err := claimScript.Run(rctx, s.client, s.routeBy, s.p, queue, "["+dueHex(now)+"~", limit, dueHex(until), nanos(until)).Slice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	return decodeMessages(v)
}

// Purge implements dlq.Store. It deletes in scripts of up to 1000 messages,
// so a purge of a large queue is not atomic as a whole.
func (s *Store) Purge(ctx context.Context, f dlq.PurgeFilter) (int, error) {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	if len(f.Queue) > dlq.MaxQueueName {
		return 0, nil
	}
	bound := "+"
	if !f.Before.IsZero() {
		// id.Time() < Before exactly when the ID sorts before the first ID
		// of Before's millisecond rounded up.
		ms := f.Before.UnixMilli()
		if f.Before.After(time.UnixMilli(ms)) {
			ms++
		}
		var first dlq.ID
		binary.BigEndian.PutUint64(first[:8], uint64(max(ms, 0))<<16)
		bound = "(" + first.String()
	}
	total := 0
	for {
		n, err := purgeScript.Run(rctx, s.client, s.routeBy, s.p, s.index(f.Queue, f.State), bound).Int()
		if err != nil {
			return total, wrap(ctx, err)
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}

// Stats implements dlq.Store. Bytes is 0: the store does not count bytes.
func (s *Store) Stats(ctx context.Context) ([]dlq.QueueStats, error) {
	rctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	v, err := statsScript.Run(rctx, s.client, s.routeBy, s.p).Slice()
	if err != nil {
		return nil, wrap(ctx, err)
	}
	oldest := func(x any) time.Time {
		id, err := dlq.ParseID(fmt.Sprint(x))
		if err != nil {
			return time.Time{}
		}
		return id.Time()
	}
	var out []dlq.QueueStats
	for i := 0; i+5 <= len(v); i += 5 {
		q := dlq.QueueStats{Queue: fmt.Sprint(v[i])}
		q.Ready, _ = v[i+1].(int64)
		q.Parked, _ = v[i+3].(int64)
		if q.Ready > 0 {
			q.OldestReady = oldest(v[i+2])
		}
		if q.Parked > 0 {
			q.OldestParked = oldest(v[i+4])
		}
		if q.Depth() > 0 {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b dlq.QueueStats) int { return cmp.Compare(a.Queue, b.Queue) })
	return out, nil
}
