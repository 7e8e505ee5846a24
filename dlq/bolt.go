package dlq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sluice-go/sluice"
)

// Options configures OpenBolt. The zero value is valid: durable group commit,
// 1 MiB messages, queues of up to a million messages or 1 GiB.
type Options struct {
	// Clock stamps IDs and the default times of Put. If nil, the system
	// clock.
	Clock sluice.Clock

	// LockTimeout is how long OpenBolt waits for a file that another
	// process holds before failing with ErrInUse. If zero, 1s.
	LockTimeout time.Duration

	// MaxMessageBytes is the largest stored size of one message (payload,
	// headers, queue name and error text, plus a few bytes of framing);
	// Put fails with ErrTooLarge above it. If zero, 1 MiB. At most 1 GiB.
	MaxMessageBytes int

	// MaxQueueMessages is the most messages one queue holds; Put fails
	// with ErrQueueFull at it. If zero, 1,000,000. If negative, no limit.
	MaxQueueMessages int64

	// MaxQueueBytes is the most stored bytes one queue holds; Put fails
	// with ErrQueueFull when a message would go past it. If zero, 1 GiB.
	// If negative, no limit.
	MaxQueueBytes int64

	// MaxBatchSize is the most writes committed together in one
	// transaction and fsync (group commit). If zero, 256. 1 turns group
	// commit off: one transaction and fsync per write.
	MaxBatchSize int

	// MaxBatchDelay is how long the writer waits for more writes to join
	// a batch that is not full. If zero, it does not wait: a batch is
	// whatever arrived while the previous one was being committed, which
	// keeps a lone producer's latency at one commit.
	MaxBatchDelay time.Duration

	// FileMode is the permission of a new file. If zero, 0600.
	FileMode fs.FileMode
}

const (
	defaultMaxMessageBytes  = 1 << 20
	maxMaxMessageBytes      = 1 << 30
	defaultMaxQueueMessages = 1_000_000
	defaultMaxQueueBytes    = 1 << 30
	defaultMaxBatchSize     = 256
	defaultLockTimeout      = time.Second
	purgeChunk              = 1000
	maxLinger               = time.Millisecond
)

func (o Options) resolve() (Options, error) {
	switch {
	case o.LockTimeout < 0:
		return o, fmt.Errorf("dlq: Options.LockTimeout must be >= 0, got %v", o.LockTimeout)
	case o.MaxMessageBytes < 0 || o.MaxMessageBytes > maxMaxMessageBytes:
		return o, fmt.Errorf("dlq: Options.MaxMessageBytes must be between 0 and %d, got %d", maxMaxMessageBytes, o.MaxMessageBytes)
	case o.MaxBatchSize < 0:
		return o, fmt.Errorf("dlq: Options.MaxBatchSize must be >= 0, got %d", o.MaxBatchSize)
	case o.MaxBatchDelay < 0:
		return o, fmt.Errorf("dlq: Options.MaxBatchDelay must be >= 0, got %v", o.MaxBatchDelay)
	}
	o.Clock = sluice.ClockOr(o.Clock)
	if o.LockTimeout == 0 {
		o.LockTimeout = defaultLockTimeout
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.MaxQueueMessages == 0 {
		o.MaxQueueMessages = defaultMaxQueueMessages
	}
	if o.MaxQueueBytes == 0 {
		o.MaxQueueBytes = defaultMaxQueueBytes
	}
	if o.MaxBatchSize == 0 {
		o.MaxBatchSize = defaultMaxBatchSize
	}
	if o.FileMode == 0 {
		o.FileMode = 0o600
	}
	return o, nil
}

// Bolt is the embedded Store: one bbolt file, written by one goroutine that
// commits concurrent writes together (group commit), each batch in one
// transaction and one fsync. A write returns only after its batch is on
// disk. Open it with OpenBolt; it is safe for concurrent use.
type Bolt struct {
	path  string
	db    *bolt.DB
	opt   Options
	clock sluice.Clock
	ids   IDGenerator

	mu     sync.RWMutex // guards closed; held shared while submitting or reading
	closed bool
	ops    chan *op
	done   chan struct{} // closed when the writer has drained and exited

	broken atomic.Pointer[error] // set once a damaged page was met
}

var _ Store = (*Bolt)(nil)

// Bucket names; the file layout is described in docs/dlq.md.
var (
	bucketMeta  = []byte("meta")
	bucketMsg   = []byte("msg")
	bucketState = []byte("state")
	bucketDue   = []byte("due")
	bucketQueue = []byte("queue")
	keyFormat   = []byte("format")
	formatValue = []byte("sluice-dlq 1")
)

// OpenBolt opens or creates the store file at path. It fails with ErrInUse
// (naming the file) if another process holds the file for longer than
// opt.LockTimeout, and with ErrCorrupt (naming the file) if the file is not
// a readable DLQ file; it never panics on a damaged file.
func OpenBolt(path string, opt Options) (*Bolt, error) {
	o, err := opt.resolve()
	if err != nil {
		return nil, err
	}
	if err := createFile(path, o); err != nil {
		return nil, err
	}
	db, err := openBoltFile(path, o)
	if err != nil {
		return nil, err
	}
	s := &Bolt{
		path:  path,
		db:    db,
		opt:   o,
		clock: o.Clock,
		ops:   make(chan *op, o.MaxBatchSize),
		done:  make(chan struct{}),
	}
	go s.writer()
	return s, nil
}

// createFile makes a new store file whole or not at all: it builds the file
// under a temporary name, syncs it, and links it into place, so a crash
// while creating never leaves a half-made file at path. Linking (unlike
// renaming) fails if another process created path meanwhile; its file is
// then used. Because a store is never created empty, an existing 0-byte
// file is damage (a failed copy or restore, a full disk) and is refused
// rather than initialised as a new queue.
func createFile(path string, o Options) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return refuseEmpty(path) // exists (or cannot be checked: the open reports it)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("dlq: creating %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	err = tmp.Chmod(o.FileMode)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dlq: creating %s: %w", path, err)
	}
	db, err := openBoltFile(name, o) // initialises and syncs the empty file
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("dlq: creating %s: %w", path, err)
	}
	if err := os.Link(name, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("dlq: creating %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// refuseEmpty returns ErrCorrupt for an existing regular file of 0 bytes,
// which bbolt would otherwise initialise as a new, empty store.
func refuseEmpty(path string) error {
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() || info.Size() != 0 {
		return nil // the open reports what is wrong, if anything
	}
	return fmt.Errorf("%w: %s is empty (0 bytes): sluice never writes an empty queue file, so it was damaged; move it away to start a new queue", ErrCorrupt, path)
}

// openBoltFile opens the bbolt file, checks that it is whole and ours, and
// creates the buckets of a new file. A panic inside bbolt on a damaged file
// (including a fault on a truncated memory map) becomes ErrCorrupt.
func openBoltFile(path string, o Options) (db *bolt.DB, err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				_ = closeQuietly(db)
			} else if file != nil {
				_ = file.Close() // also drops the lock
			}
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
		}
	}()
	db, err = bolt.Open(path, o.FileMode, &bolt.Options{
		Timeout:      o.LockTimeout,
		FreelistType: bolt.FreelistMapType,
		// NoFreelistSync would save a page per commit, but bbolt then
		// rebuilds the free list at open in a goroutine of its own, where
		// a damaged page panics out of reach of our recover.
		NoFreelistSync: false,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s is locked by another process or handle (waited %v)", ErrInUse, path, o.LockTimeout)
		case errors.As(err, &pe) && file == nil:
			return nil, fmt.Errorf("dlq: open %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if err := checkFile(db, path); err != nil {
		_ = closeQuietly(db)
		return nil, err
	}
	return db, nil
}

func closeQuietly(db *bolt.DB) (err error) {
	defer func() {
		if recover() != nil {
			err = ErrCorrupt
		}
	}()
	return db.Close()
}

// checkFile refuses a file whose meta page claims more pages than the file
// has (a truncated file, which would fault when read), or that holds
// buckets but not ours; it creates the buckets of an empty file.
func checkFile(db *bolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("dlq: %s: %w", path, err)
	}
	fresh := false
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: %s: file is %d bytes but its header describes %d (truncated?)", ErrCorrupt, path, info.Size(), tx.Size())
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			others := 0
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { others++; return nil })
			if others > 0 {
				return fmt.Errorf("%w: %s: a bbolt file but not a sluice DLQ file", ErrCorrupt, path)
			}
			fresh = true
			return nil
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, formatValue) {
			return fmt.Errorf("%w: %s: unknown format %q (want %q)", ErrCorrupt, path, f, formatValue)
		}
		for _, name := range [][]byte{bucketMsg, bucketState, bucketDue, bucketQueue} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: %s: bucket %q missing", ErrCorrupt, path, name)
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketMsg, bucketState, bucketDue, bucketQueue} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, formatValue)
	})
	if err != nil {
		return fmt.Errorf("dlq: %s: initialising: %w", path, err)
	}
	return nil
}

// Path returns the file the store was opened on.
func (s *Bolt) Path() string { return s.path }

// --- the writer: group commit ---

// op is one write waiting for the writer. apply runs inside the batch's
// transaction; it returns a *refusal (and must then have changed nothing)
// for an outcome that concerns only its caller (not found, queue full), and
// any other error to abort the whole transaction. apply may run twice (once
// in a batch that another op aborted, then alone), so it resets its outputs.
type op struct {
	apply func(tx *bolt.Tx) (changed bool, err error)
	done  chan error
}

// refusal is an op's answer to its caller that leaves the transaction
// untouched, so the rest of the batch still commits.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }

func refuse(err error) error { return &refusal{err} }

var errNothingChanged = errors.New("nothing changed")

func (s *Bolt) writer() {
	defer close(s.done)
	debug.SetPanicOnFault(true) // this goroutine only: a fault in the map becomes ErrCorrupt
	batch := make([]*op, 0, s.opt.MaxBatchSize)
	var timer *time.Timer        // one per writer, reset per batch
	var lastN int                // size of the last batch
	var lastCommit time.Duration // how long it took to commit
	for {
		first, ok := <-s.ops
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		// How long to wait for a batch that is not full: MaxBatchDelay if
		// set. If not, linger briefly (a quarter of the last commit, at
		// most maxLinger) while fewer writes have come than the last batch
		// held: the producers that the last commit released are about to
		// submit again, and joining this batch beats waiting out another
		// commit. Without it, batches settle into alternating between
		// nearly all producers and a handful. A lone producer (last batch
		// of one) never waits.
		wait, want := s.opt.MaxBatchDelay, s.opt.MaxBatchSize
		if wait <= 0 {
			wait, want = min(lastCommit/4, maxLinger), min(lastN, s.opt.MaxBatchSize)
		}
		open, waiting := true, false
	fill:
		for len(batch) < s.opt.MaxBatchSize {
			select {
			case o, ok := <-s.ops:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, o)
				continue
			default:
			}
			if wait <= 0 || len(batch) >= want {
				break
			}
			if !waiting { // the wait counts from the batch's first write
				waiting = true
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
			}
			select {
			case o, ok := <-s.ops:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, o)
			case <-timer.C:
				waiting = false
				break fill
			}
		}
		if waiting {
			timer.Stop()
		}
		start := time.Now()
		s.commit(batch)
		lastN, lastCommit = len(batch), time.Since(start)
		clear(batch)
		if !open {
			return
		}
	}
}

// commit runs a batch in one transaction. If one op aborts it, each op is
// run again in a transaction of its own, so one bad write cannot fail the
// others.
func (s *Bolt) commit(batch []*op) {
	if err := s.brokenErr(); err != nil {
		for _, o := range batch {
			o.done <- err
		}
		return
	}
	results := make([]error, len(batch))
	var applyErr error
	err := s.update(func(tx *bolt.Tx) error {
		changed := false
		for i, o := range batch {
			c, err := o.apply(tx)
			if r, ok := err.(*refusal); ok {
				results[i] = r.err
				continue
			}
			if err != nil {
				applyErr = err
				return err
			}
			results[i] = nil
			changed = changed || c
		}
		if !changed {
			return errNothingChanged // a rollback costs no fsync
		}
		return nil
	})
	switch {
	case err == nil || err == errNothingChanged:
		for i, o := range batch {
			o.done <- results[i]
		}
	case applyErr != nil && len(batch) > 1 && s.brokenErr() == nil:
		for _, o := range batch {
			s.commit([]*op{o})
		}
	default:
		for _, o := range batch {
			o.done <- err
		}
	}
}

// update runs fn in a write transaction, turning a panic or fault inside
// bbolt into ErrCorrupt and marking the store broken.
func (s *Bolt) update(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.markBroken(p)
		}
	}()
	err = s.db.Update(fn)
	if err != nil && err != errNothingChanged && !isOwnError(err) {
		err = fmt.Errorf("dlq: %s: %w", s.path, err)
	}
	return err
}

// view runs fn in a read transaction with the same protection as update.
func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.brokenErr(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = s.markBroken(p)
		}
	}()
	return s.db.View(fn)
}

// isOwnError reports whether err already carries the file or is a caller
// outcome, so update does not wrap it again.
func isOwnError(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrQueueFull)
}

func (s *Bolt) markBroken(p any) error {
	err := fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, p)
	s.broken.CompareAndSwap(nil, &err)
	return *s.broken.Load()
}

func (s *Bolt) brokenErr() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// do hands a write to the writer and waits for its batch to commit. Once
// handed over, it waits even if ctx is cancelled, so that its answer (stored
// or not) is never in doubt.
func (s *Bolt) do(ctx context.Context, apply func(tx *bolt.Tx) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	o := &op{apply: apply, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	return <-o.done
}

// Close completes the writes already submitted, stops the writer and closes
// the file. Later calls return nil.
func (s *Bolt) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	if err := closeQuietly(s.db); err != nil {
		return fmt.Errorf("dlq: closing %s: %w", s.path, err)
	}
	return nil
}

// --- keys and counters ---

// queuePrefix is the length-prefixed queue name that starts every index key
// of the queue, so one queue's keys never run into another's.
func queuePrefix(dst []byte, queue string) []byte {
	return append(append(dst, byte(len(queue))), queue...)
}

func stateKey(queue string, st State, id ID) []byte {
	k := queuePrefix(make([]byte, 0, 1+len(queue)+1+16), queue)
	k = append(k, byte(st))
	return append(k, id[:]...)
}

// dueKey orders by due time: Unix nanoseconds with the sign bit flipped, so
// that unsigned byte order is time order.
func dueKey(queue string, at time.Time, id ID) []byte {
	k := queuePrefix(make([]byte, 0, 1+len(queue)+8+16), queue)
	k = binary.BigEndian.AppendUint64(k, uint64(timeToNanos(at))^(1<<63))
	return append(k, id[:]...)
}

func dueTime(k []byte, prefixLen int) time.Time {
	return nanosToTime(int64(binary.BigEndian.Uint64(k[prefixLen:]) ^ (1 << 63)))
}

// counts is the value of a queue's key in the queue bucket.
type counts struct{ ready, parked, bytes int64 }

func readCounts(b *bolt.Bucket, queue string) counts {
	v := b.Get(queuePrefix(nil, queue))
	if len(v) != 24 {
		return counts{}
	}
	return counts{
		ready:  int64(binary.BigEndian.Uint64(v)),
		parked: int64(binary.BigEndian.Uint64(v[8:])),
		bytes:  int64(binary.BigEndian.Uint64(v[16:])),
	}
}

func writeCounts(b *bolt.Bucket, queue string, c counts) error {
	k := queuePrefix(nil, queue)
	if c == (counts{}) {
		return b.Delete(k)
	}
	v := make([]byte, 0, 24)
	v = binary.BigEndian.AppendUint64(v, uint64(c.ready))
	v = binary.BigEndian.AppendUint64(v, uint64(c.parked))
	v = binary.BigEndian.AppendUint64(v, uint64(c.bytes))
	return b.Put(k, v)
}

func (c *counts) add(st State, n, size int64) {
	if st == StateParked {
		c.parked += n
	} else {
		c.ready += n
	}
	c.bytes += n * size
}

// txn holds the buckets of one transaction.
type txn struct {
	s                       *Bolt
	msg, state, due, queues *bolt.Bucket
}

func (s *Bolt) txn(tx *bolt.Tx) *txn {
	t := &txn{s: s, msg: tx.Bucket(bucketMsg), state: tx.Bucket(bucketState), due: tx.Bucket(bucketDue), queues: tx.Bucket(bucketQueue)}
	// Keys are time-ordered, so inserts land at the right edge: split
	// full pages near their end rather than in half, for fewer and
	// fuller pages to write at each commit.
	t.msg.FillPercent, t.state.FillPercent, t.due.FillPercent = 0.9, 0.9, 0.9
	return t
}

// get reads and decodes a message; its second result is the stored size.
func (t *txn) get(id ID) (Message, int, error) {
	v := t.msg.Get(id[:])
	if v == nil {
		return Message{}, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	m, err := decodeRecord(id, v)
	if err != nil {
		return Message{}, 0, fmt.Errorf("%w: %s: message %s: %v", ErrCorrupt, t.s.path, id, err)
	}
	return m, len(v), nil
}

func (t *txn) addIndexes(m *Message) error {
	if err := t.state.Put(stateKey(m.Queue, m.State, m.ID), nil); err != nil {
		return err
	}
	if m.State == StateReady {
		return t.due.Put(dueKey(m.Queue, m.NextReplay, m.ID), nil)
	}
	return nil
}

func (t *txn) removeIndexes(m *Message) error {
	if err := t.state.Delete(stateKey(m.Queue, m.State, m.ID)); err != nil {
		return err
	}
	if m.State == StateReady {
		return t.due.Delete(dueKey(m.Queue, m.NextReplay, m.ID))
	}
	return nil
}

// insert stores a new message with its encoded record.
func (t *txn) insert(m *Message, rec []byte) error {
	if err := t.msg.Put(m.ID[:], rec); err != nil {
		return err
	}
	if err := t.addIndexes(m); err != nil {
		return err
	}
	c := readCounts(t.queues, m.Queue)
	c.add(m.State, 1, int64(len(rec)))
	return writeCounts(t.queues, m.Queue, c)
}

// remove deletes a stored message of the given size.
func (t *txn) remove(m *Message, size int) error {
	if err := t.msg.Delete(m.ID[:]); err != nil {
		return err
	}
	if err := t.removeIndexes(m); err != nil {
		return err
	}
	c := readCounts(t.queues, m.Queue)
	c.add(m.State, -1, int64(size))
	return writeCounts(t.queues, m.Queue, c)
}

// replace rewrites a stored message (same ID and queue) as upd.
func (t *txn) replace(old *Message, oldSize int, upd *Message) error {
	if err := t.remove(old, oldSize); err != nil {
		return err
	}
	return t.insert(upd, encodeRecord(make([]byte, 0, encodedSize(upd)), upd))
}

// --- Store methods ---

// Put stores m durably (fsync) before it returns; see Store.Put.
func (s *Bolt) Put(ctx context.Context, m Message) (ID, error) {
	if err := ValidateForPut(&m); err != nil {
		return ID{}, err
	}
	now := s.clock.Now()
	FillForPut(&m, s.ids.NewAt(now), now)
	size := encodedSize(&m)
	if size > s.opt.MaxMessageBytes {
		return ID{}, fmt.Errorf("%w: %d bytes for queue %q, over Options.MaxMessageBytes (%d)", ErrTooLarge, size, m.Queue, s.opt.MaxMessageBytes)
	}
	rec := encodeRecord(make([]byte, 0, size), &m)
	err := s.do(ctx, func(tx *bolt.Tx) (bool, error) {
		t := s.txn(tx)
		c := readCounts(t.queues, m.Queue)
		if lim := s.opt.MaxQueueMessages; lim > 0 && c.ready+c.parked >= lim {
			return false, refuse(fmt.Errorf("%w: queue %q holds %d messages, Options.MaxQueueMessages is %d", ErrQueueFull, m.Queue, c.ready+c.parked, lim))
		}
		if lim := s.opt.MaxQueueBytes; lim > 0 && c.bytes+int64(len(rec)) > lim {
			return false, refuse(fmt.Errorf("%w: queue %q holds %d bytes, a message of %d would pass Options.MaxQueueBytes (%d)", ErrQueueFull, m.Queue, c.bytes, len(rec), lim))
		}
		return true, t.insert(&m, rec)
	})
	if err != nil {
		return ID{}, err
	}
	return m.ID, nil
}

// Get returns the message with the given id; see Store.Get.
func (s *Bolt) Get(ctx context.Context, id ID) (Message, error) {
	var m Message
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		m, _, err = s.txn(tx).get(id)
		return err
	})
	return m, err
}

// List returns a page of messages, oldest first; see Store.List.
func (s *Bolt) List(ctx context.Context, q Query) ([]Message, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultListLimit
	}
	if len(q.Queue) > MaxQueueName {
		return nil, nil // no such queue can exist
	}
	var out []Message
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		t := s.txn(tx)
		if q.Queue == "" {
			return s.listAll(t, q, &out)
		}
		var curs []*stateCursor
		for _, st := range []State{StateReady, StateParked} {
			if q.State == StateAny || q.State == st {
				curs = append(curs, newStateCursor(t.state, q.Queue, st, q.After))
			}
		}
		for len(out) < q.Limit {
			// Merge the state cursors by ID: the oldest of their heads.
			var best *stateCursor
			for _, c := range curs {
				if c.ok() && (best == nil || bytes.Compare(c.id[:], best.id[:]) < 0) {
					best = c
				}
			}
			if best == nil {
				break
			}
			m, _, err := t.get(best.id)
			if err != nil {
				return err
			}
			out = append(out, m)
			best.next()
		}
		return nil
	})
	return out, err
}

// listAll scans every queue in ID order (no index covers it).
func (s *Bolt) listAll(t *txn, q Query, out *[]Message) error {
	c := t.msg.Cursor()
	k, v := c.Seek(q.After[:])
	if k != nil && bytes.Equal(k, q.After[:]) {
		k, v = c.Next()
	}
	for ; k != nil && len(*out) < q.Limit; k, v = c.Next() {
		if len(k) != 16 {
			return fmt.Errorf("%w: %s: bad message key %x", ErrCorrupt, s.path, k)
		}
		m, err := decodeRecord(ID(k), v)
		if err != nil {
			return fmt.Errorf("%w: %s: message %s: %v", ErrCorrupt, s.path, ID(k), err)
		}
		if q.State == StateAny || q.State == m.State {
			*out = append(*out, m)
		}
	}
	return nil
}

// stateCursor walks one queue's state index from after a given ID.
type stateCursor struct {
	c      *bolt.Cursor
	prefix []byte
	id     ID
	valid  bool
}

func newStateCursor(b *bolt.Bucket, queue string, st State, after ID) *stateCursor {
	sc := &stateCursor{c: b.Cursor(), prefix: append(queuePrefix(nil, queue), byte(st))}
	seek := append(slices.Clip(sc.prefix), after[:]...)
	k, _ := sc.c.Seek(seek)
	if k != nil && bytes.Equal(k, seek) {
		k, _ = sc.c.Next()
	}
	sc.set(k)
	return sc
}

func (sc *stateCursor) set(k []byte) {
	sc.valid = k != nil && len(k) == len(sc.prefix)+16 && bytes.HasPrefix(k, sc.prefix)
	if sc.valid {
		sc.id = ID(k[len(sc.prefix):])
	}
}

func (sc *stateCursor) ok() bool { return sc.valid }

func (sc *stateCursor) next() {
	k, _ := sc.c.Next()
	sc.set(k)
}

// Delete removes a message; see Store.Delete.
func (s *Bolt) Delete(ctx context.Context, id ID) error {
	return s.do(ctx, func(tx *bolt.Tx) (bool, error) {
		t := s.txn(tx)
		m, size, err := t.get(id)
		if err != nil {
			return false, refuseIfNotFound(err)
		}
		return true, t.remove(&m, size)
	})
}

// refuseIfNotFound makes a missing message the caller's outcome; anything
// else (a damaged record) aborts the transaction.
func refuseIfNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return refuse(err)
	}
	return err
}

// Park sets a message aside; see Store.Park.
func (s *Bolt) Park(ctx context.Context, id ID) error {
	return s.modify(ctx, id, func(m *Message) bool {
		if m.State == StateParked {
			return false
		}
		m.State = StateParked
		return true
	})
}

// Reschedule makes a message ready and due at at; see Store.Reschedule.
func (s *Bolt) Reschedule(ctx context.Context, id ID, at time.Time) error {
	return s.modify(ctx, id, func(m *Message) bool {
		m.State, m.NextReplay = StateReady, at
		return true
	})
}

// Fail records a failed replay; see Store.Fail.
func (s *Bolt) Fail(ctx context.Context, id ID, f ReplayFailure) error {
	return s.modify(ctx, id, func(m *Message) bool {
		ApplyFailure(m, f)
		return true
	})
}

// modify rewrites one message with change, which reports whether it changed
// anything.
func (s *Bolt) modify(ctx context.Context, id ID, change func(m *Message) bool) error {
	return s.do(ctx, func(tx *bolt.Tx) (bool, error) {
		t := s.txn(tx)
		old, size, err := t.get(id)
		if err != nil {
			return false, refuseIfNotFound(err)
		}
		upd := old.Clone()
		if !change(&upd) {
			return false, nil
		}
		return true, t.replace(&old, size, &upd)
	})
}

// ClaimAt takes due ready messages of a queue under a lease; see Store.ClaimAt.
func (s *Bolt) ClaimAt(ctx context.Context, queue string, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	if limit <= 0 || len(queue) > MaxQueueName {
		return nil, nil
	}
	var out []Message
	err := s.do(ctx, func(tx *bolt.Tx) (bool, error) {
		out = out[:0]
		t := s.txn(tx)
		prefix := queuePrefix(nil, queue)
		var due []ID
		c := t.due.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(due) < limit; k, _ = c.Next() {
			if len(k) != len(prefix)+8+16 {
				return false, fmt.Errorf("%w: %s: bad due key %x", ErrCorrupt, s.path, k)
			}
			if dueTime(k, len(prefix)).After(now) {
				break
			}
			due = append(due, ID(k[len(prefix)+8:]))
		}
		for _, id := range due {
			old, size, err := t.get(id)
			if err != nil {
				return false, err // the due index names a missing message: damage
			}
			upd := old.Clone()
			upd.NextReplay = now.Add(lease)
			if err := t.replace(&old, size, &upd); err != nil {
				return false, err
			}
			out = append(out, upd)
		}
		return len(due) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Purge deletes matching messages, in transactions of up to 1000; see
// Store.Purge. It is not atomic: a crash in the middle leaves part done.
func (s *Bolt) Purge(ctx context.Context, f PurgeFilter) (int, error) {
	if len(f.Queue) > MaxQueueName {
		return 0, nil
	}
	total := 0
	for {
		n := 0
		err := s.do(ctx, func(tx *bolt.Tx) (bool, error) {
			n = 0
			t := s.txn(tx)
			var queues []string
			if f.Queue != "" {
				queues = []string{f.Queue}
			} else {
				_ = t.queues.ForEach(func(k, _ []byte) error {
					if len(k) > 0 && int(k[0]) == len(k)-1 {
						queues = append(queues, string(k[1:]))
					}
					return nil
				})
			}
			var victims []ID
			for _, q := range queues {
				for _, st := range []State{StateReady, StateParked} {
					if f.State != StateAny && f.State != st {
						continue
					}
					sc := newStateCursor(t.state, q, st, ID{})
					for ; sc.ok() && len(victims) < purgeChunk; sc.next() {
						if !f.Before.IsZero() && !sc.id.Time().Before(f.Before) {
							break // IDs sort by time: the rest are newer
						}
						victims = append(victims, sc.id)
					}
				}
			}
			for _, id := range victims {
				m, size, err := t.get(id)
				if err != nil {
					return false, err
				}
				if err := t.remove(&m, size); err != nil {
					return false, err
				}
			}
			n = len(victims)
			return n > 0, nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < purgeChunk {
			return total, nil
		}
	}
}

// Stats returns every non-empty queue's depth and age; see Store.Stats.
func (s *Bolt) Stats(ctx context.Context) ([]QueueStats, error) {
	var out []QueueStats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		t := s.txn(tx)
		return t.queues.ForEach(func(k, _ []byte) error {
			if len(k) == 0 || int(k[0]) != len(k)-1 {
				return fmt.Errorf("%w: %s: bad queue key %x", ErrCorrupt, s.path, k)
			}
			q := string(k[1:])
			c := readCounts(t.queues, q)
			qs := QueueStats{Queue: q, Ready: c.ready, Parked: c.parked, Bytes: c.bytes}
			if sc := newStateCursor(t.state, q, StateReady, ID{}); sc.ok() {
				qs.OldestReady = sc.id.Time()
			}
			if sc := newStateCursor(t.state, q, StateParked, ID{}); sc.ok() {
				qs.OldestParked = sc.id.Time()
			}
			out = append(out, qs)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// Keys are length-prefixed, so bucket order is by length first.
	slices.SortFunc(out, func(a, b QueueStats) int { return compareStrings(a.Queue, b.Queue) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Verify reads the whole file: bbolt's own page check, then every record's
// checksum and every index and counter against the records. It returns nil
// or an error wrapping ErrCorrupt that names the file and the first problem.
// It takes a read transaction, so writes go on meanwhile; it is meant for
// operators and tests, not for every open.
func (s *Bolt) Verify(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		// Our walk first: it reads every page of every bucket in this
		// goroutine, where a fault is recovered; bbolt's check runs in a
		// goroutine of its own, where a fault would not be.
		if err := s.verifyIndexes(ctx, s.txn(tx)); err != nil {
			return err
		}
		var first error
		for err := range tx.Check() { // read to the end so the checker goroutine ends
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, first)
		}
		return nil
	})
}

func (s *Bolt) verifyIndexes(ctx context.Context, t *txn) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, s.path, fmt.Sprintf(format, args...))
	}
	want := map[string]counts{}
	stateKeys, dueKeys := 0, 0
	c := t.msg.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if len(k) != 16 {
			return bad("bad message key %x", k)
		}
		m, err := decodeRecord(ID(k), v)
		if err != nil {
			return bad("message %s: %v", ID(k), err)
		}
		if t.state.Get(stateKey(m.Queue, m.State, m.ID)) == nil {
			return bad("message %s missing from the state index", m.ID)
		}
		stateKeys++
		if m.State == StateReady {
			if t.due.Get(dueKey(m.Queue, m.NextReplay, m.ID)) == nil {
				return bad("message %s missing from the due index", m.ID)
			}
			dueKeys++
		}
		cnt := want[m.Queue]
		cnt.add(m.State, 1, int64(len(v)))
		want[m.Queue] = cnt
	}
	if n := t.state.Stats().KeyN; n != stateKeys {
		return bad("state index has %d keys for %d messages", n, stateKeys)
	}
	if n := t.due.Stats().KeyN; n != dueKeys {
		return bad("due index has %d keys for %d ready messages", n, dueKeys)
	}
	got := 0
	err := t.queues.ForEach(func(k, _ []byte) error {
		got++
		q := string(k[1:])
		if have := readCounts(t.queues, q); have != want[q] {
			return bad("queue %q counters say %+v, records say %+v", q, have, want[q])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if got != len(want) {
		return bad("%d queue counters for %d queues", got, len(want))
	}
	return nil
}
