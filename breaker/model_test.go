package breaker

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicetest"
	"pgregory.net/rapid"
)

// model is a plain restatement of the breaker's rules, written for
// obviousness rather than speed: the window is a slice of outcomes, the
// defaults are re-derived from the documentation, and time is a time.Time.
// The property test drives the real breaker and the model with the same
// random steps and compares them after every step.
type model struct {
	// configuration, defaults applied as Config documents them
	failureThreshold int
	failureRate      float64
	slowDur          time.Duration
	slowRate         float64
	timeWindow       bool
	size             int   // count window
	width            int64 // time window: bucket width in ns
	buckets          int64 // time window: number of buckets
	minCalls         int
	openFor          time.Duration
	multiplier       float64
	maxOpen          time.Duration
	halfOpenCalls    int
	successThreshold int
	maxWait          time.Duration

	state       State // StateClosed, StateOpen or StateHalfOpen
	mode        State // 0 for the rules, else StateDisabled/StateForcedOpen/StateMetricsOnly
	gen         uint64
	window      []mEntry
	consecutive int
	opens       int
	probeAt     time.Time
	probesOut   int
	probeOK     int
	progress    time.Time
	since       time.Time // last change of state

	successes, failures, ignored, slow, rejected, wouldReject int64
}

type mEntry struct {
	at           time.Time
	failed, slow bool
}

type mPermit struct {
	gen  uint64
	kind uint8
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func orDur(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func newModel(cfg Config) *model {
	m := &model{
		failureThreshold: cfg.FailureThreshold,
		failureRate:      cfg.FailureRateThreshold,
		slowDur:          cfg.SlowCallDuration,
		slowRate:         cfg.SlowCallRateThreshold,
		timeWindow:       cfg.WindowType == TimeWindow,
		openFor:          orDur(cfg.OpenFor, 60*time.Second),
		multiplier:       cfg.OpenBackoff.Multiplier,
		halfOpenCalls:    orInt(cfg.HalfOpenCalls, 1),
		successThreshold: orInt(cfg.SuccessThreshold, 3),
		maxWait:          orDur(cfg.HalfOpenMaxWait, 60*time.Second),
	}
	if m.failureThreshold == 0 && m.failureRate == 0 && m.slowRate == 0 {
		m.failureThreshold = 5
	}
	if m.timeWindow {
		span := orDur(cfg.WindowDuration, 60*time.Second)
		m.buckets = int64(orInt(cfg.WindowBuckets, 10))
		m.width = int64(span) / m.buckets
		m.minCalls = orInt(cfg.MinimumCalls, 10)
	} else {
		m.size = orInt(cfg.WindowSize, 100)
		m.minCalls = orInt(cfg.MinimumCalls, min(10, m.size))
	}
	if m.multiplier == 0 {
		m.multiplier = 1
	}
	m.maxOpen = orDur(cfg.OpenBackoff.Max, 10*m.openFor)
	return m
}

func (m *model) reported() State {
	if m.mode != 0 {
		return m.mode
	}
	return m.state
}

// counts returns the calls, failures and slow calls in the window at now.
func (m *model) counts(now time.Time) (calls, failed, slow int) {
	for _, e := range m.window {
		if m.timeWindow {
			cur := now.UnixNano() / m.width
			ep := e.at.UnixNano() / m.width
			if ep <= cur-m.buckets || ep > cur {
				continue
			}
		}
		calls++
		if e.failed {
			failed++
		}
		if e.slow {
			slow++
		}
	}
	return
}

func (m *model) open(at time.Time) {
	d := time.Duration(math.Min(float64(m.openFor)*math.Pow(m.multiplier, float64(m.opens)), float64(m.maxOpen)))
	m.opens++
	m.probeAt = at.Add(d)
	m.since = at
	m.gen++
	m.state = StateOpen
	m.probesOut, m.probeOK = 0, 0
}

func (m *model) fresh() {
	m.gen++
	m.state = StateClosed
	m.window = nil
	m.consecutive = 0
	m.probesOut, m.probeOK = 0, 0
}

func (m *model) advance(now time.Time) {
	if m.mode == StateDisabled || m.mode == StateForcedOpen {
		return
	}
	for {
		switch {
		case m.state == StateOpen && !now.Before(m.probeAt):
			m.gen++
			m.state = StateHalfOpen
			m.probesOut, m.probeOK = 0, 0
			m.progress = m.probeAt
			m.since = m.probeAt
		case m.state == StateHalfOpen && m.probesOut > 0 && !now.Before(m.progress.Add(m.maxWait)):
			m.open(m.progress.Add(m.maxWait))
		default:
			return
		}
	}
}

func (m *model) allow(now time.Time) (mPermit, bool) {
	m.advance(now)
	switch {
	case m.mode == StateForcedOpen:
	case m.state == StateClosed:
		return mPermit{m.gen, permitClosed}, true
	case m.state == StateHalfOpen && m.probesOut < m.halfOpenCalls:
		if m.probesOut == 0 && now.After(m.progress) {
			m.progress = now
		}
		m.probesOut++
		return mPermit{m.gen, permitProbe}, true
	case m.mode == StateMetricsOnly:
		m.wouldReject++
		return mPermit{m.gen, permitPassive}, true
	}
	m.rejected++
	return mPermit{}, false
}

func (m *model) done(now time.Time, p mPermit, o Outcome, elapsed time.Duration) {
	slow := m.slowDur > 0 && elapsed > m.slowDur
	switch o {
	case Success:
		m.successes++
	case Failure:
		m.failures++
	case Ignored:
		m.ignored++
	}
	if slow {
		m.slow++
	}
	m.advance(now)
	if p.gen != m.gen || m.mode == StateForcedOpen || o == Ignored && p.kind != permitProbe {
		return
	}
	switch {
	case p.kind == permitClosed && m.state == StateClosed:
		if o == Failure {
			m.consecutive++
		} else {
			m.consecutive = 0
		}
		m.window = append(m.window, mEntry{at: now, failed: o == Failure, slow: slow})
		if !m.timeWindow && len(m.window) > m.size {
			m.window = m.window[1:]
		}
		if m.mode == StateDisabled {
			return
		}
		calls, failed, nslow := m.counts(now)
		trip := m.failureThreshold > 0 && m.consecutive >= m.failureThreshold
		if calls >= m.minCalls && calls > 0 {
			if m.failureRate > 0 && float64(failed)/float64(calls) >= m.failureRate {
				trip = true
			}
			if m.slowRate > 0 && float64(nslow)/float64(calls) >= m.slowRate {
				trip = true
			}
		}
		if trip {
			m.open(now)
		}
	case p.kind == permitProbe && m.state == StateHalfOpen:
		m.probesOut--
		if now.After(m.progress) {
			m.progress = now
		}
		switch {
		case o == Ignored:
		case o == Failure || slow && m.slowRate > 0:
			m.open(now)
		default:
			m.probeOK++
			if m.probeOK >= m.successThreshold {
				m.opens = 0
				m.fresh()
				m.since = now
			}
		}
	}
}

func (m *model) manual(now time.Time, mode State, fresh, resetBackoff bool) {
	m.advance(now)
	from := m.reported()
	m.mode = mode
	if fresh {
		m.fresh()
	}
	if m.reported() != from {
		m.since = now
	}
	if resetBackoff {
		m.opens = 0
	}
}

// genConfig draws a small configuration, so that random steps reach every
// state quickly.
func genConfig(t *rapid.T) Config {
	cfg := Config{
		FailureThreshold: rapid.IntRange(0, 4).Draw(t, "failureThreshold"),
		OpenFor:          time.Duration(rapid.IntRange(0, 8).Draw(t, "openFor500ms")) * 500 * time.Millisecond,
		HalfOpenCalls:    rapid.IntRange(0, 3).Draw(t, "halfOpenCalls"),
		SuccessThreshold: rapid.IntRange(0, 3).Draw(t, "successThreshold"),
		HalfOpenMaxWait:  time.Duration(rapid.IntRange(0, 8).Draw(t, "maxWait500ms")) * 500 * time.Millisecond,
	}
	if cfg.OpenFor == 0 {
		cfg.OpenFor = 250 * time.Millisecond
	}
	if cfg.HalfOpenMaxWait == 0 && rapid.Bool().Draw(t, "shortMaxWait") {
		cfg.HalfOpenMaxWait = 750 * time.Millisecond
	}
	cfg.FailureRateThreshold = rapid.SampledFrom([]float64{0, 0, 0.25, 0.5, 1}).Draw(t, "failureRate")
	if rapid.Bool().Draw(t, "slowCalls") {
		cfg.SlowCallDuration = 100 * time.Millisecond
		cfg.SlowCallRateThreshold = rapid.SampledFrom([]float64{0, 0.5, 1}).Draw(t, "slowRate")
	}
	if rapid.Bool().Draw(t, "timeWindow") {
		cfg.WindowType = TimeWindow
		cfg.WindowDuration = time.Duration(rapid.IntRange(1, 8).Draw(t, "windowSeconds")) * time.Second
		cfg.WindowBuckets = rapid.IntRange(1, 4).Draw(t, "buckets")
		cfg.MinimumCalls = rapid.IntRange(0, 5).Draw(t, "minimumCalls")
	} else {
		cfg.WindowSize = rapid.IntRange(1, 8).Draw(t, "windowSize")
		cfg.MinimumCalls = rapid.IntRange(0, cfg.WindowSize).Draw(t, "minimumCalls")
	}
	if rapid.Bool().Draw(t, "backoff") {
		cfg.OpenBackoff.Multiplier = 2
		cfg.OpenBackoff.Max = cfg.OpenFor * time.Duration(rapid.IntRange(1, 5).Draw(t, "maxFactor"))
	}
	return cfg
}

// TestBreakerMatchesModel drives the breaker and the model with random
// admissions, outcomes, durations, clock advances and manual commands, and
// compares state, admissions, probe counts and statistics after every step.
func TestBreakerMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig(t)
		clock := sluicetest.NewFakeClock(time.Time{})
		cfg.Clock = clock
		b, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
		m := newModel(cfg)
		now := clock.Now()
		m.since = now
		type outstanding struct {
			p  Permit
			mp mPermit
		}
		var out []outstanding
		manualOps := rapid.Bool().Draw(t, "manualOps")

		actions := map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				var d time.Duration
				if rapid.Bool().Draw(t, "toDeadline") {
					// land exactly on the next timed change, or just before it
					switch {
					case m.state == StateOpen:
						d = m.probeAt.Sub(now)
					case m.state == StateHalfOpen && m.probesOut > 0:
						d = m.progress.Add(m.maxWait).Sub(now)
					}
					d -= time.Duration(rapid.IntRange(0, 1).Draw(t, "minus1ns"))
				} else {
					d = time.Duration(rapid.IntRange(0, 12).Draw(t, "step250ms")) * 250 * time.Millisecond
				}
				if d > 0 {
					now = now.Add(d)
					clock.Set(now)
				}
			},
			"allow": func(t *rapid.T) {
				p, err := b.AllowAt(now)
				mp, ok := m.allow(now)
				if ok != (err == nil) {
					t.Fatalf("Allow: breaker err=%v, model admits=%v (model state %v mode %v)", err, ok, m.state, m.mode)
				}
				if err != nil {
					if !errors.Is(err, ErrOpen) || !errors.Is(err, sluice.ErrRejected) {
						t.Fatalf("rejection %v is not ErrOpen and ErrRejected", err)
					}
					ra, has := sluice.RetryAfter(err)
					want := time.Duration(0)
					if m.state == StateOpen && m.mode == 0 {
						want = m.probeAt.Sub(now)
					}
					if !has || ra != want {
						t.Fatalf("RetryAfter = %v, %v; want %v", ra, has, want)
					}
					return
				}
				if p.kind != mp.kind || p.gen != mp.gen {
					t.Fatalf("permit kind %d gen %d, model kind %d gen %d", p.kind, p.gen, mp.kind, mp.gen)
				}
				out = append(out, outstanding{p, mp})
			},
			"done": func(t *rapid.T) {
				if len(out) == 0 {
					t.Skip("no call in flight")
				}
				i := rapid.IntRange(0, len(out)-1).Draw(t, "permit")
				o := rapid.SampledFrom([]Outcome{Success, Success, Failure, Failure, Ignored}).Draw(t, "outcome")
				elapsed := time.Duration(rapid.SampledFrom([]int{0, 50, 100, 101, 300}).Draw(t, "elapsedMs")) * time.Millisecond
				out[i].p.DoneAt(now, o, elapsed)
				m.done(now, out[i].mp, o, elapsed)
				out = append(out[:i], out[i+1:]...)
			},
			"execute": func(t *rapid.T) {
				// A whole call through Execute, which takes its time from
				// the fake clock: the call moves the clock by its duration.
				o := rapid.SampledFrom([]Outcome{Success, Success, Failure, Ignored}).Draw(t, "outcome")
				elapsed := time.Duration(rapid.SampledFrom([]int{0, 100, 101}).Draw(t, "elapsedMs")) * time.Millisecond
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				called := false
				err := sluice.NewPipeline(b).Do(ctx, func(ctx context.Context) error {
					called = true
					clock.Advance(elapsed)
					switch o {
					case Failure:
						return errBoom
					case Ignored: // the caller leaves during the call
						cancel()
						return ctx.Err()
					}
					return nil
				})
				mp, ok := m.allow(now)
				if called != ok {
					t.Fatalf("Execute ran the call: %v, model admits: %v (err %v)", called, ok, err)
				}
				if !ok {
					if !errors.Is(err, ErrOpen) {
						t.Fatalf("rejected with %v", err)
					}
					return
				}
				now = now.Add(elapsed)
				m.done(now, mp, o, elapsed)
			},
			"manual": func(t *rapid.T) {
				if !manualOps {
					t.Skip("manual commands off")
				}
				switch rapid.IntRange(0, 9).Draw(t, "op") {
				case 0:
					b.ForceOpen()
					m.manual(now, StateForcedOpen, true, false)
				case 1:
					b.ForceClosed()
					m.manual(now, 0, true, false)
				case 2:
					b.Reset()
					m.manual(now, 0, true, true)
				case 3:
					b.Disable()
					m.manual(now, StateDisabled, true, false)
				default:
					b.SetMetricsOnly()
					m.manual(now, StateMetricsOnly, false, false)
				}
			},
			"": func(t *rapid.T) {
				st := b.StatsAt(now)
				m.advance(now)
				if got, want := st.State, m.reported(); got != want {
					t.Fatalf("state %v, model %v", got, want)
				}
				wantShadow := m.reported()
				if m.mode == StateMetricsOnly {
					wantShadow = m.state
				}
				if st.Shadow != wantShadow {
					t.Fatalf("shadow %v, model %v", st.Shadow, wantShadow)
				}
				if m.probesOut > m.halfOpenCalls || st.ProbesInFlight != m.probesOut {
					t.Fatalf("probes in flight %d, model %d, limit %d", st.ProbesInFlight, m.probesOut, m.halfOpenCalls)
				}
				calls, failed, slow := m.counts(now)
				if st.WindowCalls != int64(calls) || st.ConsecutiveFailures != m.consecutive || st.Opens != m.opens {
					t.Fatalf("window calls %d, consecutive %d, opens %d; model %d, %d, %d",
						st.WindowCalls, st.ConsecutiveFailures, st.Opens, calls, m.consecutive, m.opens)
				}
				if calls > 0 && (st.FailureRate != float64(failed)/float64(calls) || st.SlowRate != float64(slow)/float64(calls)) {
					t.Fatalf("rates %v, %v; model %d/%d failed, %d slow", st.FailureRate, st.SlowRate, failed, calls, slow)
				}
				if st.Successes != m.successes || st.Failures != m.failures || st.Ignored != m.ignored ||
					st.Slow != m.slow || st.Rejected != m.rejected || st.WouldReject != m.wouldReject {
					t.Fatalf("counters %+v; model s=%d f=%d i=%d slow=%d rej=%d would=%d", st,
						m.successes, m.failures, m.ignored, m.slow, m.rejected, m.wouldReject)
				}
				wantNext := time.Duration(0)
				if m.state == StateOpen && (m.mode == 0 || m.mode == StateMetricsOnly) {
					wantNext = m.probeAt.Sub(now)
				}
				if st.InState != now.Sub(m.since) {
					t.Fatalf("in state %v, model %v", st.InState, now.Sub(m.since))
				}
				if st.NextProbeIn != wantNext {
					t.Fatalf("next probe in %v, model %v", st.NextProbeIn, wantNext)
				}
			},
		}
		for range 4 { // about 120 steps: deep enough for backoff and repeated half-open rounds
			t.Repeat(actions)
		}
	})
}
