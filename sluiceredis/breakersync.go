package sluiceredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
)

// SyncMode is when a BreakerSync opens the fleet's breaker.
type SyncMode int

const (
	// SyncShared opens the fleet as soon as any instance's breaker trips.
	SyncShared SyncMode = iota
	// SyncQuorum opens the fleet only when enough instances have tripped
	// within SyncConfig.QuorumWindow (SyncConfig.Quorum of them, or
	// SyncConfig.QuorumShare of the live ones). Until then an instance
	// that tripped rejects by itself and the others keep calling, so one
	// instance with a bad network path does not open the breaker for all.
	SyncQuorum
)

// String returns "shared" or "quorum".
func (m SyncMode) String() string {
	switch m {
	case SyncShared:
		return "shared"
	case SyncQuorum:
		return "quorum"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// BreakerKey is the Redis key of the shared record of the breaker of
// route; its other keys and its channel start with it. The route is the
// hash tag, so that all of them live on one Cluster slot.
func BreakerKey(route string) string { return "sluice:{" + route + "}:cb" }

// Defaults of SyncConfig.
const (
	DefaultCheckInterval = time.Second
	DefaultQuorumWindow  = time.Minute
	DefaultRecordTTL     = time.Hour
)

// SyncConfig configures a BreakerSync.
type SyncConfig struct {
	// Client is the Redis client; it must honour context deadlines (see
	// the package comment). BreakerSync does not close it. Required.
	Client redis.UniversalClient

	// Key is the shared record, usually BreakerKey(route). Every instance
	// whose breakers act as one uses the same Key, and the same breaker
	// Config. Required.
	Key string

	// Instance names this instance in the record (who opened it, whose
	// vote, whose probe slot). It must be unique in the fleet. If empty,
	// the host name, the process ID and a random suffix.
	Instance string

	// Mode is when the fleet opens; the zero value is SyncShared.
	Mode SyncMode

	// Quorum is, for SyncQuorum, the number of instances whose trips
	// within QuorumWindow open the fleet. If zero, 1 (QuorumShare alone
	// decides).
	Quorum int

	// QuorumShare is, for SyncQuorum, the share (0 < x <= 1) of the live
	// instances (those whose heartbeat is younger than three
	// CheckIntervals) whose trips open the fleet; with Quorum as well, the
	// larger of the two counts. If zero, Quorum alone decides.
	QuorumShare float64

	// QuorumWindow is how long a trip counts towards the quorum. If zero,
	// one minute.
	QuorumWindow time.Duration

	// Timeout bounds each round trip to Redis: no call waits on Redis
	// longer. If zero, 50ms.
	Timeout time.Duration

	// CheckInterval is how often the instance re-reads the record (and, in
	// SyncQuorum, sends its heartbeat), so that a change whose message it
	// missed reaches it within CheckInterval + 2 × Timeout; and how often
	// it tries Redis again after a failure. If zero, 1s.
	CheckInterval time.Duration

	// RecordTTL is how long the record outlives its last change (for an
	// open record, the end of its open period): a half-open fleet that no
	// instance probes for that long is forgotten, and its instances go on
	// by their local rules. If zero, one hour.
	RecordTTL time.Duration
}

// BreakerSync shares a breaker's state with the breakers of the same Key in
// other instances; it is the breaker.Shared that breaker.Config.Shared
// takes, one per breaker. The record is a Redis hash: its epoch, open or
// closed, the end of the open period (by the server's clock), the count of
// openings (for the backoff), the fleet's probe successes, and who opened
// it. Every change is one Lua script that also PUBLISHes the new record on
// the Key's channel; every instance subscribes to it, and re-reads the
// record every CheckInterval and whenever it (re)subscribes. Probe slots are
// members of a sorted set scored by the end of their lease.
//
// Nothing on a breaker's closed path touches Redis: the breaker learns the
// fleet's changes in the background, and only a trip, a probe and its
// outcome make a round trip. When Redis fails, the sync reports the
// failure (Degraded, LastError), the breaker goes on by its local rules,
// and the sync tries again every CheckInterval; when Redis answers, it
// reads the record and the breaker follows it again.
type BreakerSync struct {
	cfg     SyncConfig
	client  redis.UniversalClient
	keys    []string // record, probe slots, votes, members
	channel string
	quorum  int // 0 in SyncShared

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ps     *redis.PubSub
	link   atomic.Pointer[breaker.Link]
	once   sync.Once

	mu      sync.Mutex // guards queue, sending, held, seq, read
	queue   []queued
	sending queued // the report the worker took last, until it takes the next
	held    []heldSlot
	seq     uint64
	read    bool // a re-read of the record is due
	wake    chan struct{}

	applyMu  sync.Mutex // orders views
	maxEpoch uint64     // newest epoch seen, guarded by applyMu

	degraded atomic.Bool
	lastErr  atomic.Pointer[error]
	fleet    atomic.Pointer[breaker.Fleet] // the last record applied
}

type heldSlot struct {
	epoch  uint64
	member string
}

// queued is a report waiting for the worker, with the probe slot it frees.
type queued struct {
	r    breaker.Report
	slot string
}

var (
	_ breaker.Shared         = (*BreakerSync)(nil)
	_ sluice.SharedComponent = (*BreakerSync)(nil)
)

// maxQueued bounds the reports waiting for the worker; more are dropped
// (they come one per trip or probe, so this is never reached in practice).
const maxQueued = 256

// NewBreakerSync returns a BreakerSync for cfg, or an error naming the
// first field of cfg that is invalid. It does not contact Redis: the
// breaker it is given to (breaker.Config.Shared) attaches it, which reads
// the record and starts its two goroutines; Breaker.Close stops them.
func NewBreakerSync(cfg SyncConfig) (*BreakerSync, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.Timeout = orDur(cfg.Timeout, DefaultTimeout)
	cfg.CheckInterval = orDur(cfg.CheckInterval, DefaultCheckInterval)
	cfg.QuorumWindow = orDur(cfg.QuorumWindow, DefaultQuorumWindow)
	cfg.RecordTTL = orDur(cfg.RecordTTL, DefaultRecordTTL)
	if cfg.Instance == "" {
		cfg.Instance = defaultInstance()
	}
	s := &BreakerSync{
		cfg:     cfg,
		client:  cfg.Client,
		keys:    []string{cfg.Key, cfg.Key + ":p", cfg.Key + ":v", cfg.Key + ":m"},
		channel: cfg.Key + ":ev",
		wake:    make(chan struct{}, 1),
	}
	if cfg.Mode == SyncQuorum {
		s.quorum = max(cfg.Quorum, 1)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func (cfg SyncConfig) check() error {
	switch {
	case cfg.Client == nil:
		return errors.New("sluiceredis: SyncConfig.Client is required")
	case cfg.Key == "":
		return errors.New("sluiceredis: SyncConfig.Key is required")
	case cfg.Mode != SyncShared && cfg.Mode != SyncQuorum:
		return fmt.Errorf("sluiceredis: unknown SyncConfig.Mode %v", cfg.Mode)
	case cfg.Quorum < 0:
		return fmt.Errorf("sluiceredis: SyncConfig.Quorum must be >= 0, got %d", cfg.Quorum)
	case math.IsNaN(cfg.QuorumShare) || cfg.QuorumShare < 0 || cfg.QuorumShare > 1:
		return fmt.Errorf("sluiceredis: SyncConfig.QuorumShare must be in [0, 1], got %v", cfg.QuorumShare)
	case cfg.Mode == SyncShared && (cfg.Quorum != 0 || cfg.QuorumShare != 0):
		return errors.New("sluiceredis: SyncConfig.Quorum and QuorumShare need Mode SyncQuorum")
	case cfg.Mode == SyncQuorum && cfg.Quorum == 0 && cfg.QuorumShare == 0:
		return errors.New("sluiceredis: SyncConfig.Mode SyncQuorum needs Quorum or QuorumShare")
	case cfg.Timeout < 0:
		return fmt.Errorf("sluiceredis: SyncConfig.Timeout must be >= 0, got %v", cfg.Timeout)
	case cfg.CheckInterval < 0:
		return fmt.Errorf("sluiceredis: SyncConfig.CheckInterval must be >= 0, got %v", cfg.CheckInterval)
	case cfg.QuorumWindow < 0:
		return fmt.Errorf("sluiceredis: SyncConfig.QuorumWindow must be >= 0, got %v", cfg.QuorumWindow)
	case cfg.RecordTTL < 0:
		return fmt.Errorf("sluiceredis: SyncConfig.RecordTTL must be >= 0, got %v", cfg.RecordTTL)
	}
	return nil
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// defaultInstance is host-pid-random, unique enough for a fleet.
func defaultInstance() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Config returns the configuration in force, with defaults applied.
func (s *BreakerSync) Config() SyncConfig { return s.cfg }

// Degraded reports whether the last round trip to Redis failed: the
// breaker is going by its local rules until Redis answers again.
func (s *BreakerSync) Degraded() bool { return s.degraded.Load() }

// LastError returns the last Redis failure, matching ErrUnavailable, or nil
// if there has been none.
func (s *BreakerSync) LastError() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Fleet returns the last record the sync handed to its breaker (its
// Trip.Cause a *RemoteTripError naming who opened it), and false before it
// read any: what the fleet holds, for an operator to see beside the
// breaker's own state.
func (s *BreakerSync) Fleet() (breaker.Fleet, bool) {
	if f := s.fleet.Load(); f != nil {
		return *f, true
	}
	return breaker.Fleet{}, false
}

// Attach connects the sync to its breaker (breaker.Shared): it reads the
// record, so that a breaker created while the fleet is open starts open,
// and starts the subscriber and the worker. A failed read leaves the sync
// degraded, not the breaker unbuilt.
func (s *BreakerSync) Attach(l *breaker.Link) error {
	if !s.link.CompareAndSwap(nil, l) {
		return fmt.Errorf("sluiceredis: the BreakerSync of %s is already attached to a breaker", s.cfg.Key)
	}
	s.readRecord()
	s.ps = s.client.Subscribe(s.ctx, s.channel)
	s.wg.Add(2)
	go s.listen()
	go s.work()
	return nil
}

// Close stops the subscriber and the worker and waits for them; in
// SyncQuorum it also takes the instance off the live members (one round
// trip, bounded by Timeout), so that the share counts it no more. It does
// not close the client. Breaker.Close calls it; calling it again does
// nothing.
func (s *BreakerSync) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		if s.ps != nil {
			err = s.ps.Close()
		}
		s.wg.Wait()
		if s.quorum > 0 && s.link.Load() != nil && !s.degraded.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
			_ = s.client.ZRem(ctx, s.keys[3], s.cfg.Instance).Err()
			cancel()
		}
	})
	return err
}

// Report queues r for the worker (breaker.Shared). While degraded it drops
// r: the breaker is on its own then.
func (s *BreakerSync) Report(r breaker.Report) {
	if s.degraded.Load() {
		return
	}
	s.mu.Lock()
	if len(s.queue) < maxQueued {
		q := queued{r: r}
		if r.Kind == breaker.ReportProbeSuccess || r.Kind == breaker.ReportProbeFreed {
			q.slot = s.releaseLocked(r.Epoch)
		}
		s.queue = append(s.queue, q)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *BreakerSync) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// requestRead makes the worker re-read the record.
func (s *BreakerSync) requestRead() {
	s.mu.Lock()
	s.read = true
	s.mu.Unlock()
	s.poke()
}

// AcquireProbe asks the record for a probe slot of the half-open period of
// epoch (breaker.Shared), in one script bounded by Timeout. The script
// first frees the slots of this instance's probes that have ended but
// whose reports have not reached Redis yet (queued, or being sent by the
// worker), so that an instance probing one call after another is not
// refused its own slot. Freeing a slot that the report's own script frees
// as well does no harm: members are never reused. A sync that is degraded
// answers with its last error at once.
func (s *BreakerSync) AcquireProbe(epoch uint64, slots int, lease time.Duration) (bool, time.Duration, error) {
	if s.degraded.Load() {
		return false, 0, s.LastError()
	}
	s.mu.Lock()
	s.seq++
	member := s.cfg.Instance + ":" + strconv.FormatUint(s.seq, 10)
	args := []any{strconv.FormatUint(epoch, 10), slots, us(lease), member, us(s.cfg.RecordTTL)}
	for _, q := range append([]queued{s.sending}, s.queue...) {
		if q.slot != "" && q.r.Epoch == epoch {
			args = append(args, q.slot)
		}
	}
	s.mu.Unlock()
	res, err := s.run(acquireScript, args...)
	if err != nil {
		return false, 0, err
	}
	retry := s.cfg.CheckInterval
	if len(res) > 1 {
		if d, err := strconv.ParseInt(res[1], 10, 64); err == nil && d >= 0 {
			retry = min(retry, time.Duration(d)*time.Microsecond)
		}
	}
	switch res[0] {
	case "ok":
		s.mu.Lock()
		s.held = append(s.held, heldSlot{epoch, member})
		s.mu.Unlock()
		return true, 0, nil
	case "stale":
		s.apply(res[2:])
	}
	return false, retry, nil
}

// run runs a script on the record's keys, bounded by Timeout, and returns
// its reply as strings. A failure makes the sync degraded.
func (s *BreakerSync) run(sc *redis.Script, args ...any) ([]string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	res, err := sc.Run(ctx, s.client, s.keys, args...).StringSlice()
	cancel()
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, err // closing
		}
		return nil, s.fail(err)
	}
	if s.degraded.CompareAndSwap(true, false) {
		s.requestRead() // back in touch: the worker reads the record and binds the breaker again
	}
	return res, nil
}

// fail records a Redis failure and, on the way into degraded mode, tells
// the breaker.
func (s *BreakerSync) fail(err error) error {
	err = fmt.Errorf("%w: breaker %s: %w", ErrUnavailable, s.cfg.Key, err)
	s.lastErr.Store(&err)
	if !s.degraded.Swap(true) {
		s.mu.Lock()
		s.queue, s.sending, s.held = nil, queued{}, nil
		s.mu.Unlock()
		if l := s.link.Load(); l != nil {
			l.LostAt(l.Now())
		}
	}
	return err
}

// us is d in whole microseconds, as the scripts take times.
func us(d time.Duration) int64 { return d.Microseconds() }

// listen receives the record's changes. go-redis reconnects and
// subscribes again after a failure; each (re)subscription makes the worker
// re-read the record, for the messages missed meanwhile.
func (s *BreakerSync) listen() {
	defer s.wg.Done()
	for {
		msg, err := s.ps.Receive(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !s.pause(s.cfg.CheckInterval) {
				return
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			s.requestRead()
		case *redis.Message:
			s.apply(strings.SplitN(m.Payload, " ", viewFields))
		}
	}
}

// pause waits d, or less if the sync is closed; it reports whether it is
// still open.
func (s *BreakerSync) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// work sends the queued reports and re-reads the record every
// CheckInterval (with the heartbeat, in SyncQuorum) or when asked.
func (s *BreakerSync) work() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			s.requestRead()
		case <-s.wake:
		}
		for {
			q, ok := s.next()
			if !ok {
				break
			}
			s.send(q)
		}
		s.mu.Lock()
		read := s.read
		s.read = false
		s.mu.Unlock()
		if read {
			s.readRecord()
		}
	}
}

// next takes the first queued report and keeps it as s.sending until the
// following call, so that AcquireProbe still sees the slot it frees while
// its script is on its way; the worker calls next again once the send has
// returned.
func (s *BreakerSync) next() (queued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		s.sending = queued{}
		return queued{}, false
	}
	s.sending = s.queue[0]
	s.queue = s.queue[1:]
	return s.sending, true
}

// send runs the script of one report and applies the record it answers.
func (s *BreakerSync) send(q queued) {
	if s.degraded.Load() {
		return
	}
	r := q.r
	var res []string
	var err error
	ttl := us(s.cfg.RecordTTL)
	reason := strconv.Itoa(int(r.Trip.Reason))
	switch r.Kind {
	case breaker.ReportTrip:
		res, err = s.run(tripScript, s.channel, s.cfg.Instance, us(r.OpenFor), reason, ttl,
			s.quorum, s.cfg.QuorumShare, us(s.cfg.QuorumWindow), us(s.liveFor()))
	case breaker.ReportReopen:
		res, err = s.run(reopenScript, s.channel, s.cfg.Instance, us(r.OpenFor), reason, ttl,
			strconv.FormatUint(r.Epoch, 10))
	case breaker.ReportProbeSuccess, breaker.ReportProbeFreed:
		ok := "0"
		if r.Kind == breaker.ReportProbeSuccess {
			ok = "1"
		}
		res, err = s.run(doneScript, s.channel, strconv.FormatUint(r.Epoch, 10), q.slot, ok, r.Successes, ttl)
	default:
		return
	}
	if err == nil {
		s.apply(res)
	}
}

// releaseLocked returns the member of a probe slot this instance holds in
// the half-open period of epoch, forgetting it ("" if none).
func (s *BreakerSync) releaseLocked(epoch uint64) string {
	for i, h := range s.held {
		if h.epoch == epoch {
			s.held = append(s.held[:i], s.held[i+1:]...)
			return h.member
		}
	}
	return ""
}

// forgetSlots drops the probe slots held in records older than epoch: a
// new record starts with no slots, and a probe whose breaker moved on
// reports nothing.
func (s *BreakerSync) forgetSlots(epoch uint64) {
	s.mu.Lock()
	s.held = slices.DeleteFunc(s.held, func(h heldSlot) bool { return h.epoch < epoch })
	s.mu.Unlock()
}

// liveFor is how long a heartbeat keeps an instance live.
func (s *BreakerSync) liveFor() time.Duration { return 3 * s.cfg.CheckInterval }

// readRecord reads the record (sending the heartbeat in SyncQuorum) and
// applies it.
func (s *BreakerSync) readRecord() {
	beat := "0"
	if s.quorum > 0 {
		beat = "1"
	}
	res, err := s.run(readScript, s.cfg.Instance, beat, us(s.liveFor()))
	if err == nil {
		s.apply(res)
	}
}

// viewFields is the length of a record as the scripts reply and publish
// it: epoch, open ("1"/"0"), µs left of the open period (by the server's
// clock; negative once half-open), openings, trip reason, the server's
// time in µs, and the instance that opened it (last, as it may hold
// spaces).
const viewFields = 7

// apply hands a record to the breaker. A record that says there is none,
// read before the newest epoch seen was made, is stale and dropped (a
// record's epoch is never less than the server's time in µs when it was
// made).
func (s *BreakerSync) apply(v []string) {
	l := s.link.Load()
	if l == nil || len(v) < viewFields {
		return
	}
	epoch, _ := strconv.ParseUint(v[0], 10, 64)
	left, _ := strconv.ParseInt(v[2], 10, 64)
	opens, _ := strconv.Atoi(v[3])
	reason, _ := strconv.Atoi(v[4])
	at, _ := strconv.ParseUint(v[5], 10, 64)
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if epoch == 0 && at <= s.maxEpoch {
		return
	}
	if epoch > s.maxEpoch {
		s.maxEpoch = epoch
		s.forgetSlots(epoch)
	}
	now := l.Now()
	f := breaker.Fleet{Epoch: epoch, Open: v[1] == "1", Opens: opens}
	if f.Open {
		f.ProbeAt = now.Add(time.Duration(left) * time.Microsecond)
		f.Trip = breaker.Trip{
			Reason: breaker.TripReason(reason),
			Cause:  &RemoteTripError{Key: s.cfg.Key, Instance: v[6], Reason: breaker.TripReason(reason)},
		}
	}
	s.fleet.Store(&f)
	l.ApplyAt(now, f)
}

// RemoteTripError is the cause a breaker opened by the fleet's record
// carries (breaker.Trip.Cause, wrapped by its rejections): which instance
// opened the record, and by what rule.
type RemoteTripError struct {
	// Key is the record's key (SyncConfig.Key).
	Key string
	// Instance is the SyncConfig.Instance of the instance that opened it.
	Instance string
	// Reason is the rule that tripped there.
	Reason breaker.TripReason
}

// Error names the record, the instance and the rule.
func (e *RemoteTripError) Error() string {
	return fmt.Sprintf("sluiceredis: breaker %s opened by instance %s (%v)", e.Key, e.Instance, e.Reason)
}
