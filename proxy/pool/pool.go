package pool

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/breaker"
)

// ErrNoReplica is returned by PickAt when no replica can take a request:
// every one is ejected or down, or on trial with its trial slots taken.
var ErrNoReplica = errors.New("pool: no replica available")

// Outcome is the result of an attempt as the pool counts it.
type Outcome uint8

const (
	// Success is an answer from the replica that does not count against
	// it (2xx-4xx for HTTP).
	Success Outcome = iota
	// Failure counts against the replica: a 5xx answer, a refused or
	// reset connection, a timeout of the attempt.
	Failure
	// Ignored counts neither way: the caller gave up, or the attempt was
	// never sent. It only releases the replica.
	Ignored
)

// String returns "success", "failure" or "ignored", or "Outcome(n)" for a
// value that is not an Outcome.
func (o Outcome) String() string {
	if o > Ignored {
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
	return o.breaker().String()
}

func (o Outcome) breaker() breaker.Outcome {
	switch o {
	case Success:
		return breaker.Success
	case Failure:
		return breaker.Failure
	}
	return breaker.Ignored
}

// Pool is a set of replicas of one upstream with a load balancer, outlier
// ejection and (optionally) active health checks. Every decision takes the
// time as an argument. A Pool is safe for concurrent use: PickAt and
// Attempt.DoneAt take no lock that all callers share and allocate nothing.
type Pool struct {
	set      *settings
	replicas []*Replica
	seq      []uint16 // Weighted: the smooth weighted round-robin order

	_        [64]byte
	rr       atomic.Uint64 // RoundRobin and Weighted position
	_        [56]byte
	ejected  atomic.Int32 // replicas out of rotation (ejected or down)
	nextEval atomic.Int64 // unix ns of the next success-rate analysis
	_        [52]byte

	randMu sync.Mutex // guards set.cfg.Rand when given
	evalMu sync.Mutex // one analysis at a time
	rates  []rated    // the analysis's buffer, guarded by evalMu
}

// Replica is one member of a pool: its address, load and latency estimate,
// and its breaker, whose state is the replica's ejection state (closed: in
// rotation; open: ejected or down; half-open: on trial).
type Replica struct {
	_           [64]byte
	outstanding atomic.Int64
	ewma        atomic.Uint64 // float64 bits: peak-EWMA latency in ns, as of stamp
	stamp       atomic.Int64  // unix ns of the last latency sample; 0: none yet
	consecutive atomic.Int64  // failures in a row
	successes   atomic.Int64  // this analysis interval
	total       atomic.Int64  // this analysis interval, successes and failures
	out         atomic.Bool   // ejected or down: only trials may reach it
	trialAt     atomic.Int64  // unix ns from which an ejected replica takes trials
	reports     atomic.Bool   // the breaker sent reports not yet handled
	_           [64]byte

	pool    *Pool
	index   int
	addr    string
	weight  int
	weightF float64
	br      *breaker.Breaker
	link    *link

	mu         sync.Mutex   // guards the fields below; never held while calling br
	epoch      uint64       // the newest record handed to the breaker
	ejections  int          // drives the ejection time; forgiven one per clean interval
	wasOut     bool         // out of rotation at some time since the last analysis
	down       bool         // marked down by health checks
	trialOK    int          // trial successes of the current trial
	checkOK    int          // checks passed in a row
	checkFail  int          // checks failed in a row
	capped     int64        // ejections refused by MaxEjectionPercent
	ejectTotal int64        // ejections since New
	lastErr    error        // the latest failed check's error
	trip       breaker.Trip // the figures of the latest ejection
}

// New returns a pool configured by cfg, every replica in rotation, or an
// error naming each invalid field.
func New(cfg Config) (*Pool, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	p := &Pool{set: s, replicas: make([]*Replica, len(cfg.Replicas))}
	for i, e := range cfg.Replicas {
		r := &Replica{pool: p, index: i, addr: e.Addr, weight: max(e.Weight, 1)}
		r.weightF = float64(r.weight)
		r.ewma.Store(math.Float64bits(s.initial))
		r.trialAt.Store(math.MaxInt64)
		r.link = &link{r: r}
		r.br, err = breaker.New(s.breakerConfig(cfg.Name, e.Addr, r.link))
		if err != nil {
			p.Close()
			return nil, err
		}
		p.replicas[i] = r
	}
	if cfg.Balancer == Weighted {
		p.seq = smoothSequence(p.replicas)
	}
	p.nextEval.Store(math.MinInt64) // the first analysis starts the clock
	return p, nil
}

// breakerConfig returns a replica breaker's configuration. The breaker's
// own closed-state rules never trip (no consecutive-failure threshold, no
// failure-rate threshold, and a slow-call rule no call can meet): the pool
// judges, because only it knows the other replicas (MaxEjectionPercent,
// the success-rate analysis), and opens the breaker through its Shared
// link. The breaker runs the trial (its half-open rules) and counts,
// shows and reports the replica's calls.
func (s *settings) breakerConfig(pool, addr string, l *link) breaker.Config {
	name := addr
	if pool != "" {
		name = pool + "/" + addr
	}
	return breaker.Config{
		Name:                  name,
		SlowCallDuration:      math.MaxInt64,
		SlowCallRateThreshold: 1,
		OpenFor:               s.baseEject,
		HalfOpenCalls:         s.trialRequests,
		SuccessThreshold:      s.trialSuccesses,
		Clock:                 s.cfg.Clock,
		OnStateChange:         s.cfg.OnStateChange,
		Shared:                l,
	}
}

// Close stops the replica breakers' timers. The pool keeps working.
func (p *Pool) Close() error {
	var es []error
	for _, r := range p.replicas {
		if r != nil {
			es = append(es, r.br.Close())
		}
	}
	return errors.Join(es...)
}

// Replicas returns the pool's replicas in configuration order.
func (p *Pool) Replicas() []*Replica { return p.replicas }

// Balancer returns the configured balancer.
func (p *Pool) Balancer() Balancer { return p.set.cfg.Balancer }

// Addr returns the replica's configured address.
func (r *Replica) Addr() string { return r.addr }

// Index returns the replica's position in Config.Replicas.
func (r *Replica) Index() int { return r.index }

// Weight returns the replica's weight (1 if configured as 0).
func (r *Replica) Weight() int { return r.weight }

// Breaker returns the replica's breaker, for the health report, metrics
// and dashboard: its state is the replica's ejection state. Driving it by
// hand (ForceOpen, Reset) works as for any breaker, but the pool does not
// learn of it; prefer the pool's methods.
func (r *Replica) Breaker() *breaker.Breaker { return r.br }

// Outstanding returns the replica's requests picked and not yet done.
func (r *Replica) Outstanding() int64 { return r.outstanding.Load() }

// LatencyAt returns the replica's peak-EWMA latency estimate at now,
// decayed for the time since its last sample.
func (r *Replica) LatencyAt(now time.Time) time.Duration {
	return time.Duration(r.latencyAt(now.UnixNano()))
}

// Attempt is one request picked for a replica by PickAt. Report it exactly
// once with DoneAt. It is a small value; the zero Attempt ignores DoneAt.
type Attempt struct {
	r      *Replica
	permit breaker.Permit
}

// Replica returns the replica the attempt goes to.
func (a Attempt) Replica() *Replica { return a.r }

// Trial reports whether the attempt is a trial request of a replica whose
// ejection ended: its outcome decides whether the replica returns.
func (a Attempt) Trial() bool { return a.permit.Probe() }

// DoneAt reports the attempt's outcome at now, after latency (the time the
// replica took to answer, fed to the latency estimate; a failure never
// lowers the estimate, so that a replica failing fast does not attract
// traffic). A Failure may eject the replica; see Outlier.
func (a Attempt) DoneAt(now time.Time, latency time.Duration, o Outcome) {
	r := a.r
	if r == nil {
		return
	}
	if o > Ignored {
		o = Ignored // not an Outcome: release the replica, count nothing
	}
	ns := now.UnixNano()
	r.outstanding.Add(-1)
	if o != Ignored {
		r.observe(ns, float64(max(latency, 0)), o == Failure)
		r.total.Add(1)
	}
	a.permit.DoneAt(now, o.breaker(), 0)
	p := r.pool
	switch o {
	case Success:
		r.successes.Add(1)
		if r.consecutive.Load() != 0 {
			r.consecutive.Store(0)
		}
	case Failure:
		if n := r.consecutive.Add(1); n >= p.set.consecutive && !r.out.Load() {
			p.ejectAt(now, r, breaker.Trip{Reason: breaker.TripConsecutive, ConsecutiveFailures: int(n), Cause: consecutiveErr})
		}
	}
	if r.reports.Load() {
		r.settleAt(now)
	}
	if ns >= p.nextEval.Load() {
		p.SweepAt(now)
	}
}

var consecutiveErr = errors.New("pool: consecutive failures")

// PickAt chooses a replica for a request at now with the configured
// balancer, skipping ejected and down replicas (an ejected replica whose
// ejection has ended takes trial requests) and, when another replica can
// take the request, the replicas in exclude (those a retry or hedge already
// tried). It returns ErrNoReplica when no replica can take it.
func (p *Pool) PickAt(now time.Time, exclude ...*Replica) (Attempt, error) {
	if a, ok := p.pick(now, exclude); ok {
		return a, nil
	}
	if len(exclude) > 0 {
		if a, ok := p.pick(now, nil); ok {
			return a, nil
		}
	}
	return Attempt{}, ErrNoReplica
}

func (p *Pool) pick(now time.Time, ex []*Replica) (Attempt, bool) {
	ns := now.UnixNano()
	switch p.set.cfg.Balancer {
	case RoundRobin:
		return p.pickTurn(now, ns, ex, nil)
	case Weighted:
		return p.pickTurn(now, ns, ex, p.seq)
	}
	return p.pickP2C(now, ns, ex)
}

// Candidate kinds, from usable.
const (
	unusable = iota
	inRotation
	onTrial
)

// usable classifies r for a pick at ns.
func (r *Replica) usable(ns int64, ex []*Replica) int {
	for _, x := range ex {
		if x == r {
			return unusable
		}
	}
	if !r.out.Load() {
		return inRotation
	}
	if ns >= r.trialAt.Load() {
		return onTrial
	}
	return unusable
}

// admit asks r's breaker for the attempt.
func (r *Replica) admit(now time.Time) (Attempt, bool) {
	permit, err := r.br.AllowAt(now)
	if r.reports.Load() {
		r.settleAt(now)
	}
	if err != nil {
		return Attempt{}, false
	}
	r.outstanding.Add(1)
	return Attempt{r: r, permit: permit}, true
}

// pickP2C draws two replicas: a due trial wins, else the lower cost.
func (p *Pool) pickP2C(now time.Time, ns int64, ex []*Replica) (Attempt, bool) {
	n := len(p.replicas)
	if n == 1 {
		return p.scan(now, ns, ex)
	}
	i, j := p.two(n)
	a, b := p.replicas[i], p.replicas[j]
	ka, kb := a.usable(ns, ex), b.usable(ns, ex)
	if kb == onTrial && ka != onTrial {
		a, b, ka, kb = b, a, kb, ka
	}
	if ka == onTrial {
		if at, ok := a.admit(now); ok {
			return at, true
		}
		ka = unusable
	}
	if ka == inRotation && kb == inRotation && b.costAt(ns) < a.costAt(ns) {
		a, b, ka, kb = b, a, kb, ka
	}
	if ka == inRotation {
		if at, ok := a.admit(now); ok {
			return at, true
		}
	}
	if kb == inRotation {
		if at, ok := b.admit(now); ok {
			return at, true
		}
	}
	return p.scan(now, ns, ex)
}

// two returns two distinct random indices below n (n >= 2).
func (p *Pool) two(n int) (int, int) {
	var x uint64
	if r := p.set.cfg.Rand; r != nil {
		p.randMu.Lock()
		x = r.Uint64()
		p.randMu.Unlock()
	} else {
		x = rand.Uint64()
	}
	i := int((x & 0xffffffff) * uint64(n) >> 32)
	j := int((x >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}

// pickTurn takes the next replica in turn (seq's order when given, else
// index order). A skipped turn is consumed, so that the others keep equal
// shares while a replica is out.
func (p *Pool) pickTurn(now time.Time, ns int64, ex []*Replica, seq []uint16) (Attempt, bool) {
	n := len(p.replicas)
	for range 2 * n {
		k := p.rr.Add(1) - 1
		var r *Replica
		if seq != nil {
			r = p.replicas[seq[k%uint64(len(seq))]]
		} else {
			r = p.replicas[k%uint64(n)]
		}
		if r.usable(ns, ex) != unusable {
			if a, ok := r.admit(now); ok {
				return a, true
			}
		}
	}
	return p.scan(now, ns, ex)
}

// scan is the slow path: every replica, trials first, then the cheapest in
// rotation.
func (p *Pool) scan(now time.Time, ns int64, ex []*Replica) (Attempt, bool) {
	var best *Replica
	bestCost := math.Inf(1)
	for _, r := range p.replicas {
		switch r.usable(ns, ex) {
		case onTrial:
			if a, ok := r.admit(now); ok {
				return a, true
			}
		case inRotation:
			if c := r.costAt(ns); c < bestCost {
				best, bestCost = r, c
			}
		}
	}
	if best != nil {
		if a, ok := best.admit(now); ok {
			return a, true
		}
	}
	for _, r := range p.replicas { // best was refused: a concurrent change
		if r != best && r.usable(ns, ex) == inRotation {
			if a, ok := r.admit(now); ok {
				return a, true
			}
		}
	}
	return Attempt{}, false
}
