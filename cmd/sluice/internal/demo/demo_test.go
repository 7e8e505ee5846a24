package demo

import (
	"strings"
	"testing"
	"time"
)

func TestDemoScheduleScales(t *testing.T) {
	for _, d := range []time.Duration{6 * time.Second, time.Minute} {
		s := demoSchedule(d)
		if s[0].start != 0 || s[len(s)-1].end != d {
			t.Errorf("%v: the schedule runs from %v to %v", d, s[0].start, s[len(s)-1].end)
		}
		kinds := map[phaseKind]bool{}
		for i, p := range s {
			kinds[p.kind] = true
			if i > 0 && p.start != s[i-1].end {
				t.Errorf("%v: phase %q starts at %v, the one before ends at %v", d, p.name, p.start, s[i-1].end)
			}
		}
		if len(kinds) != 4 {
			t.Errorf("%v: the schedule has %d kinds of phase; want all 4", d, len(kinds))
		}
		if got := phaseAt(s, d/4).kind; got != phaseOutage {
			t.Errorf("%v: a quarter in, the phase is %v; want the outage", d, got)
		}
	}
}

// TestDemoTerminalProgress draws the progress as on a terminal: two lines
// redrawn in place, each within the terminal's width.
func TestDemoTerminalProgress(t *testing.T) {
	var b strings.Builder
	v := &demoView{out: &b, tty: true, width: 60, phase: "latency spike", d: &session{}}
	s := demoSnapshot{
		elapsed: 12300 * time.Millisecond,
		routes: []routeSnapshot{
			{name: "agents", requests: 1200, succeeded: 1000, queued: 150, retries: 40, breaker: "open"},
			{name: "api", requests: 1199, succeeded: 1100, fastFailed: 99, retries: 30, breaker: "half-open"},
		},
		replayed: 120,
	}
	v.draw(s)
	first := b.String()
	want := "\r 12.3s  latency spike breakers: agents open, api half-open\x1b[K\n" +
		"        req 2399  ok 2100  retried 70  fast-failed 99  queu\x1b[K" // cut at 59 columns
	if first != want {
		t.Errorf("first draw:\n%q\nwant\n%q", first, want)
	}
	v.draw(s)
	if again := strings.TrimPrefix(b.String(), first); again != "\x1b[1A"+first {
		t.Errorf("a redraw does not go back up one line and draw the same: %q", again)
	}
	b.Reset()
	v.clear()
	if b.String() != "\r\x1b[K\x1b[1A\r\x1b[K" || v.drawn {
		t.Errorf("clear wrote %q", b.String())
	}
}
