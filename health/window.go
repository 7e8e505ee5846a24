package health

import (
	"time"

	"github.com/sluice-go/sluice/registry"
)

// pair is a cumulative count of events and of the bad ones among them:
// calls and failures for a retry policy, decisions and rejections for a
// limiter.
type pair struct{ total, bad int64 }

func (p pair) rate() float64 {
	if p.total <= 0 {
		return 0
	}
	return float64(p.bad) / float64(p.total)
}

// counters are the cumulative counts the Monitor keeps windows of, by
// instance name.
type counters struct {
	retries  map[string]pair
	limiters map[string]pair
}

func countersOf(s registry.Snapshot) counters {
	c := counters{
		retries:  make(map[string]pair, len(s.Retries)),
		limiters: make(map[string]pair, len(s.Limiters)),
	}
	for _, r := range s.Retries {
		c.retries[r.Name] = pair{r.Stats.Calls, r.Stats.Failures}
	}
	for _, l := range s.Limiters {
		c.limiters[l.Name] = pair{l.Stats.Allowed + l.Stats.Rejected, l.Stats.Rejected}
	}
	return c
}

// history is a short series of counter snapshots, at most one per tenth of
// span, reaching back just past span: rates over the window are differences
// from its oldest sample. Not safe for concurrent use; the Monitor's mutex
// guards it.
type history struct {
	span    time.Duration
	samples []sample
}

type sample struct {
	at time.Time
	c  counters
}

// windowRates are the counts over the window, by instance name.
type windowRates struct {
	covered  time.Duration // how far back the base snapshot is
	retries  map[string]pair
	limiters map[string]pair
}

// add records cur as of now, unless the newest sample is younger than a
// tenth of the span (or, from a racing evaluation, newer than now).
func (h *history) add(now time.Time, cur counters) {
	if n := len(h.samples); n > 0 {
		last := h.samples[n-1].at
		if now.Before(last) || now.Sub(last) < h.span/10 {
			return
		}
	}
	h.samples = append(h.samples, sample{now, cur})
	h.prune(now)
}

// prune drops the samples that are older than the newest one at least span
// old: that one stays as the base of the window.
func (h *history) prune(now time.Time) {
	cutoff := now.Add(-h.span)
	i := 0
	for i+1 < len(h.samples) && !h.samples[i+1].at.After(cutoff) {
		i++
	}
	if i > 0 {
		h.samples = append(h.samples[:0], h.samples[i:]...)
	}
}

// rates returns cur minus the base sample: the newest sample at least span
// old or, if there is none yet, the oldest. An instance missing from the
// base, or whose counts went down (it was replaced), counts from zero.
func (h *history) rates(now time.Time, cur counters) windowRates {
	h.prune(now)
	w := windowRates{retries: cur.retries, limiters: cur.limiters}
	if len(h.samples) == 0 {
		return w
	}
	base := h.samples[0]
	w.covered = max(now.Sub(base.at), 0)
	w.retries = diff(cur.retries, base.c.retries)
	w.limiters = diff(cur.limiters, base.c.limiters)
	return w
}

func diff(cur, base map[string]pair) map[string]pair {
	out := make(map[string]pair, len(cur))
	for name, c := range cur {
		b, ok := base[name]
		if !ok || c.total < b.total || c.bad < b.bad {
			out[name] = c
			continue
		}
		out[name] = pair{c.total - b.total, c.bad - b.bad}
	}
	return out
}
