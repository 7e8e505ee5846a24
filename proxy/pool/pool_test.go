package pool

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/sluicetest"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no replicas", Config{}, "Config.Replicas must name at least one replica"},
		{"empty addr", Config{Replicas: []Endpoint{{}}}, "Config.Replicas[0].Addr must be set"},
		{"duplicate", Config{Replicas: []Endpoint{{Addr: "a"}, {Addr: "a"}}}, "Config.Replicas[1].Addr must differ from Replicas[0].Addr"},
		{"weight", Config{Replicas: []Endpoint{{Addr: "a", Weight: -1}}}, "Config.Replicas[0].Weight must be between 0 and 10000"},
		{"total weight", Config{Balancer: Weighted, Replicas: []Endpoint{{Addr: "a", Weight: 10000}, {Addr: "b", Weight: 10000}, {Addr: "c", Weight: 10000}, {Addr: "d", Weight: 10000}, {Addr: "e", Weight: 10000}, {Addr: "f", Weight: 10000}, {Addr: "g", Weight: 10000}}}, "weights summing to at most 65536"},
		{"balancer", Config{Replicas: endpoints(1), Balancer: 9}, "Config.Balancer must be P2C, RoundRobin or Weighted"},
		{"percent", Config{Replicas: endpoints(1), Outlier: Outlier{MaxEjectionPercent: 101}}, "Config.Outlier.MaxEjectionPercent must be between 0 and 100"},
		{"stdev", Config{Replicas: endpoints(1), Outlier: Outlier{SuccessRate: SuccessRate{StdevFactor: -1}}}, "Config.Outlier.SuccessRate.StdevFactor must be a finite number >= 0"},
		{"interval", Config{Replicas: endpoints(1), Health: Health{Interval: -time.Second}}, "Config.Health.Interval must be >= 0"},
		{"base", Config{Replicas: endpoints(1), Outlier: Outlier{BaseEjectionTime: -1}}, "Config.Outlier.BaseEjectionTime must be >= 0"},
		{"max below base", Config{Replicas: endpoints(1), Outlier: Outlier{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second}}, "Config.Outlier.MaxEjectionTime must be >= BaseEjectionTime (1m0s), got 1s"},
		{"timeout", Config{Replicas: endpoints(1), Health: Health{Interval: time.Second, Timeout: 2 * time.Second}}, "Config.Health.Timeout must be <= Interval (1s), got 2s"},
		{"several", Config{Replicas: []Endpoint{{Weight: -2}}}, "Config.Replicas[0].Addr must be set, got \"\"\npool: Config.Replicas[0].Weight must be between 0 and 10000, got -2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Success: "success", Failure: "failure", Ignored: "ignored", 7: "Outcome(7)"} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q, want %q", o, got, want)
		}
	}
}

func TestParseBalancer(t *testing.T) {
	for _, b := range []Balancer{P2C, RoundRobin, Weighted} {
		got, err := ParseBalancer(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBalancer(%q) = %v, %v", b.String(), got, err)
		}
	}
	if _, err := ParseBalancer("random"); err == nil || !strings.Contains(err.Error(), "p2c, round_robin, weighted") {
		t.Errorf("ParseBalancer(random) = %v, want the names listed", err)
	}
}

func TestEjectionCap(t *testing.T) {
	for _, c := range []struct{ n, pct, want int }{
		{1, 50, 0}, {2, 10, 1}, {2, 100, 1}, {3, 50, 1}, {4, 50, 2}, {10, 10, 1}, {10, 100, 9}, {20, 10, 2},
	} {
		if got := ejectionCap(c.n, c.pct); int(got) != c.want {
			t.Errorf("ejectionCap(%d, %d) = %d, want %d", c.n, c.pct, got, c.want)
		}
	}
}

// TestConsecutiveEjectionSteps walks one replica through ejection, the
// end of its ejection, a trial and its return, checking the breaker's
// state and what PickAt does at each step.
func TestConsecutiveEjectionSteps(t *testing.T) {
	p := newPool(t, Config{Name: "api", Replicas: endpoints(3), Balancer: RoundRobin})
	r0 := p.Replicas()[0]
	if got := r0.Breaker().Name(); got != "api/r0" {
		t.Fatalf("breaker name %q", got)
	}
	failN(t, p, r0, t0, 4)
	if state(r0, t0) != breaker.StateClosed {
		t.Fatal("4 failures ejected r0; the threshold is 5")
	}
	failN(t, p, r0, t0, 1)
	steps := []struct {
		at    time.Duration
		state breaker.State
		picks bool // r0 among 30 picks
	}{
		{0, breaker.StateOpen, false},
		{29 * time.Second, breaker.StateOpen, false},
		{30 * time.Second, breaker.StateHalfOpen, true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		seen := false
		for range 30 {
			a := pick(t, p, now)
			seen = seen || a.Replica() == r0
			if a.Replica() != r0 {
				a.DoneAt(now, time.Millisecond, Success)
			} else {
				if !a.Trial() {
					t.Fatalf("at %v r0 took a request that is not a trial", s.at)
				}
				a.DoneAt(now, time.Millisecond, Ignored) // keep the trial open
			}
		}
		if got := state(r0, now); got != s.state {
			t.Fatalf("at %v: state %v, want %v", s.at, got, s.state)
		}
		if seen != s.picks {
			t.Fatalf("at %v: r0 picked = %v, want %v", s.at, seen, s.picks)
		}
	}
	st := r0.Breaker().StatsAt(t0.Add(30 * time.Second))
	if st.LastTrip.Reason != breaker.TripConsecutive || st.LastTrip.ConsecutiveFailures != 5 {
		t.Fatalf("LastTrip = %+v, want 5 consecutive failures", st.LastTrip)
	}
	// Three trial successes return r0.
	now := t0.Add(31 * time.Second)
	for i := range 3 {
		a, ok := r0.admit(now)
		if !ok || !a.Trial() {
			t.Fatalf("trial %d refused (ok=%v)", i, ok)
		}
		a.DoneAt(now, time.Millisecond, Success)
	}
	if got := state(r0, now); got != breaker.StateClosed {
		t.Fatalf("after 3 trial successes: %v, want closed", got)
	}
	if st := p.StatsAt(now); st.Out != 0 || st.Replicas[0].Out {
		t.Fatalf("stats after return: out %d, r0 out %v", st.Out, st.Replicas[0].Out)
	}
}

// TestEjectionTimeGrows: each failed trial ejects the replica for one more
// BaseEjectionTime, up to MaxEjectionTime.
func TestEjectionTimeGrows(t *testing.T) {
	base := 10 * time.Second
	p := newPool(t, Config{Replicas: endpoints(3), Outlier: Outlier{BaseEjectionTime: base, MaxEjectionTime: 35 * time.Second}})
	r := p.Replicas()[1]
	failN(t, p, r, t0, 5)
	now := t0
	for i, want := range []time.Duration{10, 20, 30, 35, 35} {
		want *= time.Second
		if i == 4 {
			want = 35 * time.Second
		}
		if st := state(r, now.Add(want-1)); st != breaker.StateOpen {
			t.Fatalf("ejection %d: %v before %v, want open", i+1, st, want)
		}
		if _, ok := r.admit(now.Add(want - 1)); ok {
			t.Fatalf("ejection %d: admitted before its end", i+1)
		}
		now = now.Add(want)
		a, ok := r.admit(now)
		if !ok || !a.Trial() {
			t.Fatalf("ejection %d: no trial at its end %v", i+1, want)
		}
		a.DoneAt(now, time.Millisecond, Failure)
	}
	if st := p.StatsAt(now); st.Replicas[1].EjectionsTotal != 6 {
		t.Fatalf("EjectionsTotal %d, want 6", st.Replicas[1].EjectionsTotal)
	}
}

// TestEjectionForgiven: an interval in rotation forgives one ejection, so
// the next ejection is shorter again.
func TestEjectionForgiven(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(3), Outlier: Outlier{BaseEjectionTime: time.Second, Interval: 10 * time.Second, SuccessRate: SuccessRate{Disabled: true}}})
	r := p.Replicas()[0]
	p.SweepAt(t0) // starts the first interval
	failN(t, p, r, t0, 5)
	now := t0.Add(time.Second)
	for range 3 {
		a, _ := r.admit(now)
		a.DoneAt(now, time.Millisecond, Success)
	}
	if got := p.StatsAt(now).Replicas[0].Ejections; got != 1 {
		t.Fatalf("ejections %d, want 1", got)
	}
	p.SweepAt(t0.Add(10 * time.Second))
	if got := p.StatsAt(now).Replicas[0].Ejections; got != 1 {
		t.Fatalf("after an interval with an ejection in it: ejections %d, want 1 (not forgiven)", got)
	}
	p.SweepAt(t0.Add(20 * time.Second))
	if got := p.StatsAt(now).Replicas[0].Ejections; got != 0 {
		t.Fatalf("after a clean interval: ejections %d, want 0", got)
	}
	now = t0.Add(21 * time.Second)
	failN(t, p, r, now, 5)
	if _, ok := r.admit(now.Add(time.Second)); !ok {
		t.Fatal("a forgiven replica's ejection lasted more than BaseEjectionTime")
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(4)}) // 50 %: two
	for _, r := range p.Replicas() {
		failN(t, p, r, t0, 5)
	}
	st := p.StatsAt(t0)
	out, capped := 0, int64(0)
	for _, r := range st.Replicas {
		if r.Out {
			out++
		}
		capped += r.Capped
	}
	if out != 2 || st.Out != 2 || capped != 2 {
		t.Fatalf("out %d (stats %d), capped %d; want 2, 2, 2", out, st.Out, capped)
	}
	for range 50 {
		a := pick(t, p, t0)
		if a.Replica().out.Load() {
			t.Fatalf("picked ejected %s", a.Replica().addr)
		}
		a.DoneAt(t0, time.Millisecond, Success)
	}
}

func TestSinglereplicaNeverEjected(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(1)})
	r := p.Replicas()[0]
	failN(t, p, r, t0, 20)
	if state(r, t0) != breaker.StateClosed {
		t.Fatal("the only replica was ejected")
	}
}

func TestExclude(t *testing.T) {
	for _, b := range []Balancer{P2C, RoundRobin, Weighted} {
		t.Run(b.String(), func(t *testing.T) {
			p := newPool(t, Config{Replicas: endpoints(3), Balancer: b})
			for range 100 {
				first := pick(t, p, t0)
				retry := pick(t, p, t0, first.Replica())
				if retry.Replica() == first.Replica() {
					t.Fatalf("retry went to %s again", first.Replica().addr)
				}
				hedge := pick(t, p, t0, first.Replica(), retry.Replica())
				if hedge.Replica() == first.Replica() || hedge.Replica() == retry.Replica() {
					t.Fatalf("hedge went to a tried replica %s", hedge.Replica().addr)
				}
				for _, a := range []Attempt{first, retry, hedge} {
					a.DoneAt(t0, time.Millisecond, Success)
				}
			}
		})
	}
	t.Run("only one", func(t *testing.T) {
		p := newPool(t, Config{Replicas: endpoints(1)})
		a := pick(t, p, t0)
		b := pick(t, p, t0, a.Replica())
		if b.Replica() != a.Replica() {
			t.Fatal("with one replica the retry must go to it")
		}
	})
}

func TestNoReplica(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(2), Health: Health{Interval: time.Second, UnhealthyThreshold: 1}})
	for _, r := range p.Replicas() {
		p.CheckResultAt(t0, r, errors.New("refused"))
	}
	if _, err := p.PickAt(t0); !errors.Is(err, ErrNoReplica) {
		t.Fatalf("every replica down: %v, want ErrNoReplica", err)
	}
	var zero Attempt
	zero.DoneAt(t0, 0, Failure) // no panic, no effect
}

// TestP2CPrefersLowerCost: with two replicas P2C always compares both, so
// every pick goes to the cheaper one.
func TestP2CPrefersLowerCost(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(2)})
	slow, fast := p.Replicas()[0], p.Replicas()[1]
	for range 10 {
		a, _ := slow.admit(t0)
		a.DoneAt(t0, 200*time.Millisecond, Success)
		a, _ = fast.admit(t0)
		a.DoneAt(t0, 10*time.Millisecond, Success)
	}
	for range 5 { // outstanding on fast: cost 6 × 10 ms < 200 ms
		a := pick(t, p, t0)
		if a.Replica() != fast {
			t.Fatalf("picked %s, want the fast replica", a.Replica().addr)
		}
	}
	// With 20 outstanding on fast its cost (21 × 10 ms) passes slow's.
	for range 15 {
		fast.admit(t0)
	}
	if a := pick(t, p, t0); a.Replica() != slow {
		t.Fatalf("picked %s, want the slow replica once fast is loaded", a.Replica().addr)
	}
}

func TestPeakEWMA(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(1), DecayTime: time.Second})
	r := p.Replicas()[0]
	if got := r.LatencyAt(t0); got != DefaultInitialLatency {
		t.Fatalf("initial %v", got)
	}
	r.observe(t0.UnixNano(), float64(100*time.Millisecond), false)
	if got := r.LatencyAt(t0); got != 100*time.Millisecond {
		t.Fatalf("a peak is taken at once: %v", got)
	}
	// One time constant later a 10 ms sample moves it 1−1/e of the way.
	now := t0.Add(time.Second)
	r.observe(now.UnixNano(), float64(10*time.Millisecond), false)
	want := 10 + 90/2.718281828
	if got := float64(r.LatencyAt(now)) / 1e6; got < want-0.01 || got > want+0.01 {
		t.Fatalf("after one decay time: %.3f ms, want %.3f", got, want)
	}
	// A fast failure does not lower it.
	before := r.LatencyAt(now)
	r.observe(now.UnixNano(), float64(time.Millisecond), true)
	if got := r.LatencyAt(now); got != before {
		t.Fatalf("a failure lowered the estimate: %v -> %v", before, got)
	}
	// Idle, it decays.
	if got := r.LatencyAt(now.Add(3 * time.Second)); got > before/19 {
		t.Fatalf("no decay when idle: %v", got)
	}
}

func TestRoundRobinFair(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(4), Balancer: RoundRobin})
	count := map[*Replica]int{}
	for range 400 {
		a := pick(t, p, t0)
		count[a.Replica()]++
		a.DoneAt(t0, time.Millisecond, Success)
	}
	for _, r := range p.Replicas() {
		if count[r] != 100 {
			t.Fatalf("%s got %d of 400, want 100", r.addr, count[r])
		}
	}
	// With one ejected the other three share equally.
	failN(t, p, p.Replicas()[3], t0, 5)
	clear(count)
	for range 300 {
		a := pick(t, p, t0)
		count[a.Replica()]++
		a.DoneAt(t0, time.Millisecond, Success)
	}
	for _, r := range p.Replicas()[:3] {
		if count[r] != 100 {
			t.Fatalf("%s got %d of 300 with r3 ejected, want 100", r.addr, count[r])
		}
	}
}

func TestSmoothSequence(t *testing.T) {
	p := newPool(t, Config{Balancer: Weighted, Replicas: []Endpoint{{Addr: "a", Weight: 5}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 1}}})
	var b strings.Builder
	for _, i := range p.seq {
		b.WriteString(p.replicas[i].addr)
	}
	if got := b.String(); got != "aabacaa" {
		t.Fatalf("sequence %s, want nginx's aabacaa", got)
	}
	p = newPool(t, Config{Balancer: Weighted, Replicas: []Endpoint{{Addr: "a", Weight: 200}, {Addr: "b", Weight: 100}}})
	if len(p.seq) != 3 {
		t.Fatalf("weights 200:100 give a cycle of %d, want 3 (divided by their gcd)", len(p.seq))
	}
}

func TestWeightedProportions(t *testing.T) {
	p := newPool(t, Config{Balancer: Weighted, Replicas: []Endpoint{{Addr: "a", Weight: 3}, {Addr: "b", Weight: 2}, {Addr: "c", Weight: 1}, {Addr: "d", Weight: 4}}})
	count := map[string]int{}
	for range 10000 {
		a := pick(t, p, t0)
		count[a.Replica().addr]++
		a.DoneAt(t0, time.Millisecond, Success)
	}
	for addr, w := range map[string]int{"a": 3, "b": 2, "c": 1, "d": 4} {
		if got := count[addr]; got != w*1000 {
			t.Fatalf("%s: %d of 10000, want %d", addr, got, w*1000)
		}
	}
}

// TestSuccessRateEjection: five replicas, one answering half its requests
// with failures (never five in a row): the analysis ejects it, and only it.
func TestSuccessRateEjection(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(5), Outlier: Outlier{Interval: 10 * time.Second}})
	p.SweepAt(t0)
	now := t0.Add(time.Second)
	for i, r := range p.Replicas() {
		for k := range 200 {
			a, _ := r.admit(now)
			o := Success
			if i == 2 && k%2 == 0 {
				o = Failure
			}
			a.DoneAt(now, time.Millisecond, o)
		}
	}
	if p.StatsAt(now).Out != 0 {
		t.Fatal("ejected before the interval ended")
	}
	end := t0.Add(10 * time.Second)
	p.SweepAt(end)
	st := p.StatsAt(end)
	for i, r := range st.Replicas {
		if r.Out != (i == 2) {
			t.Fatalf("replica %d out = %v", i, r.Out)
		}
	}
	trip := st.Replicas[2].Breaker.LastTrip
	if trip.Reason != breaker.TripFailureRate || trip.Calls != 200 || trip.Failures != 100 {
		t.Fatalf("LastTrip %+v, want failure-rate over 200 calls, 100 failures", trip)
	}
}

func TestSuccessRateMinimums(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(4), Outlier: Outlier{Interval: 10 * time.Second}})
	p.SweepAt(t0)
	for i, r := range p.Replicas() {
		for k := range 200 {
			a, _ := r.admit(t0)
			o := Success
			if i == 0 && k%2 == 0 {
				o = Failure
			}
			a.DoneAt(t0, time.Millisecond, o)
		}
	}
	p.SweepAt(t0.Add(10 * time.Second))
	if p.StatsAt(t0).Out != 0 {
		t.Fatal("ejected with 4 hosts taking part; MinHosts is 5")
	}
}

// TestCheckHalfOpensAtOnce: a passing check ends an ejection there and
// then, instead of after BaseEjectionTime.
func TestCheckHalfOpensAtOnce(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(3), Health: Health{Interval: 200 * time.Millisecond}})
	r := p.Replicas()[0]
	failN(t, p, r, t0, 5)
	now := t0.Add(200 * time.Millisecond)
	if state(r, now) != breaker.StateOpen {
		t.Fatal("not ejected")
	}
	p.CheckResultAt(now, r, nil)
	if got := state(r, now); got != breaker.StateHalfOpen {
		t.Fatalf("after a passing check: %v, want half-open at once", got)
	}
	a, ok := r.admit(now)
	if !ok || !a.Trial() {
		t.Fatal("no trial after the passing check")
	}
	// A second passing check during the trial does not restart it.
	p.CheckResultAt(now, r, nil)
	a.DoneAt(now, time.Millisecond, Success)
	if got := r.Breaker().StatsAt(now).ProbeSuccesses; got != 1 {
		t.Fatalf("probe successes %d, want 1 (the trial kept)", got)
	}
}

// TestCheckMarksDown: UnhealthyThreshold failing checks mark a replica
// down; it stays open while the checks fail, HealthyThreshold passing
// checks put it on trial, and trial successes return it.
func TestCheckMarksDown(t *testing.T) {
	iv := 200 * time.Millisecond
	p := newPool(t, Config{Replicas: endpoints(3), Health: Health{Interval: iv, Timeout: 100 * time.Millisecond}})
	r := p.Replicas()[1]
	down := errors.New("connection refused")
	steps := []struct {
		err   error
		state breaker.State
		out   bool
	}{
		{down, breaker.StateClosed, false},
		{down, breaker.StateOpen, true},
		{down, breaker.StateOpen, true},
		{down, breaker.StateOpen, true},
		{nil, breaker.StateOpen, true},
		{nil, breaker.StateHalfOpen, true},
	}
	now := t0
	for i, s := range steps {
		now = now.Add(iv)
		p.CheckResultAt(now, r, s.err)
		st := p.StatsAt(now).Replicas[1]
		if st.Breaker.State != s.state || st.Out != s.out {
			t.Fatalf("step %d: state %v out %v, want %v %v", i, st.Breaker.State, st.Out, s.state, s.out)
		}
	}
	if got := p.StatsAt(now).Replicas[1]; got.LastCheckError == "" || !strings.Contains(got.Breaker.LastTrip.Cause.Error(), "connection refused") {
		t.Fatalf("the check's error is not reported: %+v", got)
	}
	for range 3 {
		a, ok := r.admit(now)
		if !ok {
			t.Fatal("trial refused")
		}
		a.DoneAt(now, time.Millisecond, Success)
	}
	if got := state(r, now); got != breaker.StateClosed || p.StatsAt(now).Out != 0 {
		t.Fatalf("after the trial: %v, out %d", got, p.StatsAt(now).Out)
	}
}

// TestDownHoldLapses: a replica marked down whose checks stop goes on
// trial by itself after two check periods.
func TestDownHoldLapses(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(2), Health: Health{Interval: time.Second, Timeout: time.Second, UnhealthyThreshold: 1}})
	r := p.Replicas()[0]
	p.CheckResultAt(t0, r, errors.New("down"))
	if _, ok := r.admit(t0.Add(4*time.Second - 1)); ok {
		t.Fatal("admitted during the hold")
	}
	if a, ok := r.admit(t0.Add(4 * time.Second)); !ok || !a.Trial() {
		t.Fatal("no trial once the hold lapsed")
	}
}

func TestBreakerListener(t *testing.T) {
	var changes []string
	p := newPool(t, Config{Name: "api", Replicas: endpoints(3), OnStateChange: func(c breaker.StateChange) {
		changes = append(changes, c.Name+":"+c.From.String()+">"+c.To.String())
	}})
	r := p.Replicas()[2]
	failN(t, p, r, t0, 5)
	p.CheckResultAt(t0.Add(time.Second), r, nil)
	now := t0.Add(time.Second)
	for range 3 {
		a, _ := r.admit(now)
		a.DoneAt(now, time.Millisecond, Success)
	}
	want := "api/r2:closed>open api/r2:open>half-open api/r2:half-open>closed"
	if got := strings.Join(changes, " "); got != want {
		t.Fatalf("changes %q, want %q", got, want)
	}
}

func TestPickAllocs(t *testing.T) {
	for _, b := range []Balancer{P2C, RoundRobin, Weighted} {
		p, err := New(Config{Replicas: endpoints(8), Balancer: b, Clock: sluicetest.NewFakeClock(t0)})
		if err != nil {
			t.Fatal(err)
		}
		first := p.Replicas()[0]
		n := testing.AllocsPerRun(1000, func() {
			a, _ := p.PickAt(t0, first)
			a.DoneAt(t0, time.Millisecond, Success)
		})
		p.Close()
		if n != 0 {
			t.Errorf("%v: %v allocations per pick and done, want 0", b, n)
		}
	}
}

// TestTrialFailureReason: a failed trial reopens the replica's breaker
// with the breaker's own probe-failed figures, and the pool's longer
// ejection time.
func TestTrialFailureReason(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(2), Outlier: Outlier{BaseEjectionTime: time.Second}})
	r := p.Replicas()[0]
	failN(t, p, r, t0, 5)
	now := t0.Add(time.Second)
	failN(t, p, r, now, 1)
	st := r.Breaker().StatsAt(now)
	if st.State != breaker.StateOpen || st.LastTrip.Reason != breaker.TripProbeFailed || st.NextProbeIn != 2*time.Second {
		t.Fatalf("after a failed trial: %v, %v, next probe in %v; want open, probe-failed, 2s", st.State, st.LastTrip.Reason, st.NextProbeIn)
	}
}

// TestHungTrial: a trial that never finishes is given up after the
// breaker's HalfOpenMaxWait (60 s), and the pool ejects the replica again.
func TestHungTrial(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(2), Outlier: Outlier{BaseEjectionTime: time.Second}})
	r := p.Replicas()[0]
	failN(t, p, r, t0, 5)
	now := t0.Add(time.Second)
	if a, ok := r.admit(now); !ok || !a.Trial() {
		t.Fatal("no trial")
	} // never done
	if _, ok := r.admit(now.Add(30 * time.Second)); ok {
		t.Fatal("a second trial while the first is out")
	}
	hung := now.Add(60 * time.Second)
	if _, ok := r.admit(hung); ok { // the breaker gives up on the trial and reopens
		t.Fatal("admitted as the trial was given up")
	}
	st := p.StatsAt(hung).Replicas[0]
	if st.Breaker.LastTrip.Reason != breaker.TripProbeHung || st.Trial || st.EjectionsTotal != 2 {
		t.Fatalf("after a hung trial: reason %v, trial %v, ejections %d", st.Breaker.LastTrip.Reason, st.Trial, st.EjectionsTotal)
	}
	if a, ok := r.admit(hung.Add(2 * time.Second)); !ok || !a.Trial() {
		t.Fatal("no trial after the second ejection (2 × base)")
	}
}
