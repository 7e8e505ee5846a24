package ratelimit_test

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/sluicetest"
	"pgregory.net/rapid"
)

// floatBucket is the textbook token bucket: a level in tokens, refilled at
// one token per interval up to burst, from which calls take tokens; a
// reservation may take it below zero and waits until it is back to zero.
// Intervals are powers of two nanoseconds and times are whole nanoseconds,
// so every level is a dyadic fraction and float64 arithmetic on it is
// exact: the model and the limiter must agree exactly.
type floatBucket struct {
	interval float64
	burst    float64
	tokens   float64
	last     int64
}

func (m *floatBucket) advance(now int64) {
	if now > m.last {
		m.tokens = math.Min(m.burst, m.tokens+float64(now-m.last)/m.interval)
		m.last = now
	}
}

func (m *floatBucket) allow(now int64, n float64) bool {
	m.advance(now)
	if n > m.burst || m.tokens < n {
		return false
	}
	m.tokens -= n
	return true
}

// reserve returns whether n tokens were reserved and the wait in ns.
func (m *floatBucket) reserve(now int64, n float64) (bool, int64) {
	m.advance(now)
	if n > m.burst {
		return false, 0
	}
	m.tokens -= n
	return true, int64(math.Max(0, -m.tokens) * m.interval)
}

func (m *floatBucket) cancel(now int64, n float64) {
	m.advance(now)
	m.tokens = math.Min(m.burst, m.tokens+n)
}

type modelRes struct {
	r   ratelimit.Reservation
	n   float64
	act int64
}

func TestBurstyMatchesFloatModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		interval := int64(1) << rapid.IntRange(0, 24).Draw(t, "log2 interval")
		burst := rapid.IntRange(1, 50).Draw(t, "burst")
		l, clock := newAtRapid(t, ratelimit.Config{Rate: 1, Per: time.Duration(interval), Burst: burst})
		m := &floatBucket{interval: float64(interval), burst: float64(burst), tokens: float64(burst)}
		var now int64
		var open []modelRes
		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := range steps {
			now += rapid.Int64Range(0, 3*interval).Draw(t, "dt")
			n := rapid.IntRange(1, burst+1).Draw(t, "n")
			at := t0.Add(time.Duration(now))
			switch op := rapid.IntRange(0, 2).Draw(t, "op"); {
			case op == 0:
				got, want := l.AllowAt(at, n), m.allow(now, float64(n))
				if got != want {
					t.Fatalf("step %d: AllowAt(%d, %d) = %v, model %v (tokens %v)", i, now, n, got, want, m.tokens)
				}
			case op == 1:
				r := l.ReserveAt(at, n)
				ok, wait := m.reserve(now, float64(n))
				if r.OK() != ok || (ok && r.Delay() != time.Duration(wait)) {
					t.Fatalf("step %d: Reserve(%d, %d) = %v %v, model %v %v", i, now, n, r.OK(), r.Delay(), ok, wait)
				}
				if ok {
					open = append(open, modelRes{r, float64(n), now + wait})
				}
			case len(open) > 0:
				j := rapid.IntRange(0, len(open)-1).Draw(t, "which")
				res := open[j]
				open = append(open[:j], open[j+1:]...)
				res.r.CancelAt(at)
				if now < res.act {
					m.cancel(now, res.n)
				}
			}
			m.advance(now)
			clock.Set(at)
			if got := l.Stats().Tokens; got != m.tokens {
				t.Fatalf("step %d: tokens %v, model %v", i, got, m.tokens)
			}
		}
	})
}

// slotQueue is the smooth limiter's model: calls run one slot after
// another, a slot of n intervals each, and at most burst intervals of slots
// may lie ahead.
type slotQueue struct {
	interval, burst int64
	next            int64 // when the next free slot starts
}

func (q *slotQueue) allow(now, n int64) bool {
	if n > q.burst || now < q.next {
		return false
	}
	q.next = now + n*q.interval
	return true
}

func (q *slotQueue) reserve(now, n int64) (bool, int64) {
	start := max(q.next, now)
	if n > q.burst || start+n*q.interval-now > q.burst*q.interval {
		return false, 0
	}
	q.next = start + n*q.interval
	return true, start - now
}

func TestSmoothMatchesSlotModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		interval := rapid.Int64Range(1, 1e9).Draw(t, "interval")
		burst := rapid.IntRange(1, 20).Draw(t, "burst")
		l, _ := newAtRapid(t, ratelimit.Config{Rate: 1, Per: time.Duration(interval), Burst: burst, Smooth: true})
		q := &slotQueue{interval: interval, burst: int64(burst), next: math.MinInt64 / 2}
		var now int64
		for i := range rapid.IntRange(1, 200).Draw(t, "steps") {
			now += rapid.Int64Range(0, 2*interval).Draw(t, "dt")
			n := rapid.IntRange(1, burst+1).Draw(t, "n")
			at := t0.Add(time.Duration(now))
			if rapid.Bool().Draw(t, "reserve") {
				r := l.ReserveAt(at, n)
				ok, wait := q.reserve(now, int64(n))
				if r.OK() != ok || (ok && r.Delay() != time.Duration(wait)) {
					t.Fatalf("step %d: Reserve(%d, %d) = %v %v, model %v %v", i, now, n, r.OK(), r.Delay(), ok, wait)
				}
				continue
			}
			if got, want := l.AllowAt(at, n), q.allow(now, int64(n)); got != want {
				t.Fatalf("step %d: AllowAt(%d, %d) = %v, model %v", i, now, n, got, want)
			}
		}
	})
}

func newAtRapid(t *rapid.T, cfg ratelimit.Config) (*ratelimit.TokenBucket, *sluicetest.FakeClock) {
	clock := sluicetest.NewFakeClock(t0)
	cfg.Clock = clock
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}
