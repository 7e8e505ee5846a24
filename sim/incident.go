package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// The model shared by the incident scenarios (all but backoff). Every
// number is per client, so that fewer clients make a smaller run with the
// same dynamics: the same load per policy instance, the same utilisation.
const (
	defaultClients   = 10
	perClientRate    = 50.0 // calls/s each client offers
	workersPerClient = 5    // upstream workers per client: 100 calls/s of capacity
	meanService      = 50 * time.Millisecond
	serviceSigma     = 0.5 // log-normal shape of the service time
	queueSeconds     = 5   // the upstream's FIFO queue holds this much work
	netMean          = time.Millisecond
	netSD            = 200 * time.Microsecond
	clientTimeout    = time.Second      // the client's own per-attempt timeout
	callDeadline     = 10 * time.Second // a caller gives up on a call after this
	hopDelay         = time.Millisecond // a middle service's own work per request
	usersPerClient   = 10               // closed loop: users per client
	warmup           = 60 * time.Second // healthy time before the incident
	drain            = callDeadline + time.Second
)

// Trigger kinds.
const (
	kindOutage   = "outage"   // every call fails at once with 503
	kindBrownout = "brownout" // a share of calls fail with 503
	kindLatency  = "latency"  // the network gets slow
	kindStall    = "stall"    // the server stops taking work from its queue
	kindSpike    = "spike"    // offered load jumps
)

// caseSpec is one incident run: a trigger in a timeline.
type caseSpec struct {
	name              string // "" when the scenario has one case
	kind              string
	start, end        time.Duration
	duration          time.Duration
	errRate           float64       // brownout
	extra, extraSD    time.Duration // latency: added to each network leg
	spikeCapacityMult float64       // spike: offered load as a multiple of capacity
	detail            string
}

func (c caseSpec) active(now int64) bool { return now >= int64(c.start) && now < int64(c.end) }

type scenarioDef struct {
	layered bool
	// recovery adds the recovery scenario's figures: health checks for
	// the policies that run them, and goodput lost after the incident at
	// fineStep resolution.
	recovery bool
	cases    []caseSpec
}

func incidentScenario(name string) scenarioDef {
	at := func(d time.Duration) time.Duration { return warmup + d }
	tail := 90 * time.Second
	switch name {
	case ScenarioOutage:
		return scenarioDef{cases: []caseSpec{{
			kind: kindOutage, start: warmup, end: at(45 * time.Second), duration: at(45*time.Second) + tail,
			detail: "the upstream answers every call with 503 at once",
		}}}
	case ScenarioBrownout:
		return scenarioDef{cases: []caseSpec{{
			kind: kindBrownout, start: warmup, end: at(60 * time.Second), duration: at(60*time.Second) + tail, errRate: 0.1,
			detail: "10% of calls fail with 503 after normal service, at random",
		}}}
	case ScenarioLatency:
		return scenarioDef{cases: []caseSpec{{
			kind: kindLatency, start: warmup, end: at(30 * time.Second), duration: at(30*time.Second) + tail,
			extra: 450 * time.Millisecond, extraSD: 100 * time.Millisecond,
			detail: "each network leg takes |N(450ms, 100ms)| more, so about a third of attempts pass the 1s client timeout",
		}}}
	case ScenarioMetastable:
		return scenarioDef{cases: []caseSpec{{
			name: "spike", kind: kindSpike, start: warmup, end: at(10 * time.Second), duration: at(10*time.Second) + tail,
			spikeCapacityMult: 2,
			detail:            "offered load at 2x the upstream's capacity for 10s; work that waited past its client's timeout is still done",
		}, {
			name: "outage", kind: kindStall, start: warmup, end: at(30 * time.Second), duration: at(30*time.Second) + tail,
			detail: "the upstream takes nothing from its queue for 30s (a hung dependency); queued work is done later, after its clients gave up",
		}}}
	case ScenarioLayers:
		return scenarioDef{layered: true, cases: []caseSpec{{
			kind: kindOutage, start: warmup, end: at(30 * time.Second), duration: at(30*time.Second) + tail,
			detail: "the bottom of three services answers every call with 503 at once; each layer runs the policy",
		}}}
	case ScenarioRecovery:
		end := recoveryWarmup + recoveryOutage
		return scenarioDef{recovery: true, cases: []caseSpec{{
			kind: kindOutage, start: recoveryWarmup, end: end, duration: end + recoveryTail,
			detail: "the upstream answers every call and every health check with 503 at once, then recovers at once",
		}}}
	}
	panic("sim: not an incident scenario: " + name)
}

// Random stream identifiers, so that each purpose draws from its own
// stream and the arrivals are the same whichever policy is simulated.
const (
	streamArrivals = iota + 1
	streamService
	streamNet
	streamFailures
	streamJitter
)

func describe(sd scenarioDef, n int, closed bool) string {
	capacity := n * workersPerClient * int(time.Second/meanService)
	clients := "clients"
	if n == 1 {
		clients = "client"
	}
	load := fmt.Sprintf("%d %s x %g calls/s (Poisson)", n, clients, perClientRate)
	if closed {
		load = fmt.Sprintf("%d %s x %d closed-loop users (about %g calls/s each client)", n, clients, usersPerClient, perClientRate)
	}
	where := "an upstream"
	if sd.layered {
		where = "a chain of 3 services whose bottom is"
	}
	return fmt.Sprintf("%s, each with its own policy instance, against %s of %d workers (%d calls/s), %v log-normal service, a FIFO queue of %ds of work; %v client timeout per attempt, %v deadline per call",
		load, where, n*workersPerClient, capacity, meanService, queueSeconds, clientTimeout, callDeadline)
}

func runIncident(ctx context.Context, opts Options, specs []*spec, p *progress) (*Report, error) {
	n := opts.Clients
	if n == 0 {
		n = defaultClients
	}
	sd := incidentScenario(opts.Scenario)
	rep := &Report{
		Scenario:    opts.Scenario,
		Seed:        opts.Seed,
		Description: describe(sd, n, opts.ClosedLoop),
		Clients:     n,
		ClosedLoop:  opts.ClosedLoop,
		Results:     []Result{},
	}
	total, done := len(sd.cases)*len(specs), 0
	for ci, cs := range sd.cases {
		rep.Incidents = append(rep.Incidents, Incident{
			Case: cs.name, Kind: cs.kind, Detail: cs.detail,
			StartS: cs.start.Seconds(), EndS: cs.end.Seconds(), DurationS: cs.duration.Seconds(),
		})
		for _, sp := range specs {
			what := sp.name
			if cs.name != "" {
				what = cs.name + "/" + sp.name
			}
			p.update(done, total, what)
			r := &run{seed: opts.Seed, caseIndex: uint64(ci), cs: cs, sp: sp, n: n, closed: opts.ClosedLoop, layered: sd.layered, recovery: sd.recovery}
			res, err := r.simulate(ctx)
			if err != nil {
				return nil, err
			}
			rep.Results = append(rep.Results, res)
			done++
		}
	}
	p.update(done, total, "done")
	return rep, nil
}

// run is one policy in one case.
type run struct {
	seed      uint64
	caseIndex uint64
	cs        caseSpec
	sp        *spec
	n         int
	closed    bool
	layered   bool
	recovery  bool

	w   *world
	rec *recorder
}

func (r *run) rand(path ...uint64) *rand.Rand {
	return newRand(r.seed, append([]uint64{r.caseIndex}, path...)...)
}

func (r *run) simulate(ctx context.Context) (Result, error) {
	w := newWorld()
	r.w = w
	cs := r.cs
	nLayers := 1
	if r.layered {
		nLayers = 3
	}
	r.rec = newRecorder(int64(cs.duration), int64(cs.start), int64(cs.end), nLayers)
	if r.recovery {
		r.rec.fine = newFine(int64(cs.duration), r.n)
	}

	netRand := r.rand(streamNet)
	netDelay := func() time.Duration {
		d := absNormal(netRand, netMean, netSD)
		if cs.kind == kindLatency && cs.active(w.now) {
			d += absNormal(netRand, cs.extra, cs.extraSD)
		}
		return time.Duration(d)
	}

	layers := make([]*layer, nLayers)
	gaveUp := gaveUpContext()
	ans := answers{}
	insts := make([][]*inst, nLayers)
	for k := range layers {
		layers[k] = &layer{w: w, rec: r.rec, index: k, attemptTimeout: clientTimeout, bottom: k == nLayers-1, timeouts: w.newLane(), gaveUp: gaveUp}
		insts[k] = make([]*inst, r.n)
		for i := range r.n {
			insts[k][i] = newInst(r.sp, w, i, r.rand(streamJitter, uint64(k), uint64(i)))
		}
	}
	srv := &server{
		w: w, l: layers[nLayers-1], cs: cs, net: netDelay,
		workers:  r.n * workersPerClient,
		maxQueue: r.n * workersPerClient * queueSeconds * int(time.Second/meanService),
		svc:      r.rand(streamService),
		fail:     r.rand(streamFailures),
	}
	layers[nLayers-1].send = srv.send
	for k := 0; k < nLayers-1; k++ {
		lk, below, inner := layers[k], layers[k+1], insts[k+1]
		lk.send = func(t *try) {
			w.after(netDelay()+hopDelay, func() {
				// The next service runs its own policy for the request,
				// within the deadline of the attempt that carries it.
				below.start(inner[t.c.in.chain], t.timeoutAt, func(c *call, err error) {
					a := ans.plain(err)
					if r.sp.sidecar {
						a = ans.sidecar(c, err)
					}
					w.after(netDelay(), func() { lk.reply(t, a) })
				})
			})
		}
	}
	if cs.kind == kindStall {
		w.at(int64(cs.start), func() { srv.stalled = true })
		w.at(int64(cs.end), func() { srv.stalled = false; srv.next() })
	}

	for i, in := range insts[nLayers-1] {
		r.startChecks(in, i, srv)
	}
	top := layers[0]
	for i := range r.n {
		if r.closed {
			r.closedLoop(top, insts[0][i], i)
		} else {
			r.openLoop(top, insts[0][i], i)
		}
	}
	if !w.run(int64(cs.duration+drain), func() bool { return ctx.Err() == nil }) {
		return Result{}, ctx.Err()
	}
	return r.rec.result(r.sp.name, cs.name, int64(cs.duration)), nil
}

// issue starts a logical call from client in at the current time; then, if
// not nil, runs after.
func (r *run) issue(top *layer, in *inst, after func()) {
	w, rec := r.w, r.rec
	arrive := w.now
	rec.arrived(arrive)
	top.start(in, arrive+int64(callDeadline), func(_ *call, err error) {
		rec.completed(arrive, w.now, err)
		if rec.fine != nil {
			rec.fine.completed(arrive, err)
		}
		if after != nil {
			after()
		}
	})
}

// rateAt is the per-client arrival rate at t, and the time it next changes.
func (r *run) rateAt(t int64) (float64, int64) {
	cs := r.cs
	if cs.kind != kindSpike {
		return perClientRate, int64(cs.duration)
	}
	switch {
	case t < int64(cs.start):
		return perClientRate, int64(cs.start)
	case t < int64(cs.end):
		capacity := float64(workersPerClient) * float64(time.Second/meanService)
		return cs.spikeCapacityMult * capacity, int64(cs.end)
	}
	return perClientRate, int64(cs.duration)
}

// openLoop schedules client i's Poisson arrivals until the end of the run.
func (r *run) openLoop(top *layer, in *inst, i int) {
	rng := r.rand(streamArrivals, uint64(i))
	end := int64(r.cs.duration)
	next := func(now int64) int64 {
		for now < end {
			rate, change := r.rateAt(now)
			t := now + int64(rng.ExpFloat64()/rate*1e9)
			if t < change {
				return t
			}
			now = change // memoryless: draw again from the change
		}
		return end
	}
	var arrive func()
	arrive = func() {
		r.issue(top, in, nil)
		if t := next(r.w.now); t < end {
			r.w.at(t, arrive)
		}
	}
	if t := next(0); t < end {
		r.w.at(t, arrive)
	}
}

// closedLoop starts client i's users: each issues a call, waits for its
// answer, thinks for an exponential time, and goes again. The think time is
// set so that a healthy client offers perClientRate calls/s. A spike adds
// users for its duration.
func (r *run) closedLoop(top *layer, in *inst, i int) {
	rng := r.rand(streamArrivals, uint64(i))
	healthy := 2*netMean + meanService
	think := time.Duration(float64(usersPerClient)/perClientRate*float64(time.Second)) - healthy
	end := int64(r.cs.duration)
	user := func(from, until int64) {
		var loop func()
		loop = func() {
			if r.w.now >= until {
				return
			}
			r.issue(top, in, func() { r.w.after(time.Duration(expDur(rng, think)), loop) })
		}
		r.w.at(from+expDur(rng, think), loop)
	}
	for range usersPerClient {
		user(0, end)
	}
	if r.cs.kind == kindSpike {
		capacity := float64(workersPerClient) * float64(time.Second/meanService)
		extra := int(float64(usersPerClient)*(r.cs.spikeCapacityMult*capacity/perClientRate) + 0.5)
		for range extra - usersPerClient {
			user(int64(r.cs.start), int64(r.cs.end))
		}
	}
}

// server is the upstream: workers taking requests from a FIFO queue, each
// served for a log-normal time. It never learns that a client gave up, so
// work queued past a client's timeout is still done, and wasted.
type server struct {
	w        *world
	l        *layer // the layer whose attempts it serves
	cs       caseSpec
	net      func() time.Duration
	workers  int
	busy     int
	maxQueue int
	queue    []*try
	stalled  bool
	svc      *rand.Rand
	fail     *rand.Rand
}

func (s *server) send(t *try) {
	s.w.after(s.net(), func() { s.arrive(t) })
}

func (s *server) arrive(t *try) {
	switch {
	case s.cs.kind == kindOutage && s.cs.active(s.w.now):
		s.respond(t, errUnavailable)
	case s.busy < s.workers && !s.stalled && len(s.queue) == 0:
		s.start(t)
	case len(s.queue) < s.maxQueue:
		s.queue = append(s.queue, t)
	default:
		s.respond(t, errUnavailable) // overloaded: shed at once
	}
}

func (s *server) start(t *try) {
	s.busy++
	d := logNormal(s.svc, meanService, serviceSigma)
	var err error
	if s.cs.kind == kindBrownout && s.cs.active(s.w.now) && s.fail.Float64() < s.cs.errRate {
		err = errUnavailable
	}
	s.w.at(s.w.now+d, func() {
		s.busy--
		s.respond(t, err)
		s.next()
	})
}

// next starts queued work while workers are free.
func (s *server) next() {
	for s.busy < s.workers && !s.stalled && len(s.queue) > 0 {
		t := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.start(t)
	}
	if len(s.queue) == 0 {
		s.queue = s.queue[:0:0] // let the old backing array go
	}
}

func (s *server) respond(t *try, err error) {
	s.w.after(s.net(), func() { s.l.reply(t, err) })
}
