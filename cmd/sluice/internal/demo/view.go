package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// demoSnapshot is the demo's state at one moment: what the clients saw,
// what the proxy's policies and dead-letter queue did, what reached the
// upstream.
type demoSnapshot struct {
	elapsed time.Duration
	routes  []routeSnapshot // agents, api

	replayed     int64 // dead-letter messages delivered by a replay
	replayFailed int64 // replays that failed (the message stays or is parked)
	parked       int64 // messages parked after too many failed replays
	waiting      int64 // messages still ready for a replay
	replaying    int64 // replays running now

	upstreamCalls     int64
	upstreamReplays   int64
	upstreamDelivered int64
}

// routeSnapshot is one route's share of a demoSnapshot.
type routeSnapshot struct {
	name                                                      string
	requests, succeeded, queued, fastFailed, failed, noAnswer int64
	retries                                                   int64  // attempts after a call's first
	breaker                                                   string // the state of the route's breaker
}

// snapshot reads the counters of the load generator, the proxy's registry
// and dead-letter queue, and the upstream.
func (d *session) snapshot() demoSnapshot {
	s := demoSnapshot{elapsed: d.upstream.elapsed()}
	reg := d.srv.Registry().Snapshot()
	for _, rl := range []*routeLoad{d.load.agents, d.load.api} {
		r := routeSnapshot{
			name:       rl.name,
			requests:   rl.requests.Load(),
			succeeded:  rl.succeeded.Load(),
			queued:     rl.queued.Load(),
			fastFailed: rl.fastFailed.Load(),
			failed:     rl.failed.Load(),
			noAnswer:   rl.errors.Load(),
			breaker:    "-",
		}
		for _, x := range reg.Retries {
			if x.Name == rl.name {
				r.retries = x.Stats.Retries
			}
		}
		for _, b := range reg.Breakers {
			if strings.HasPrefix(b.Name, rl.name+"/") {
				r.breaker = b.Stats.State.String()
			}
		}
		s.routes = append(s.routes, r)
	}
	if qs, err := d.srv.QueueStats(context.Background()); err == nil {
		for _, q := range qs {
			s.replayed += q.Replayed
			s.replayFailed += q.Failed
			s.parked += q.Parked
			s.waiting += q.Ready
			s.replaying += q.InFlight
		}
	}
	s.upstreamCalls = d.upstream.calls.Load()
	s.upstreamReplays = d.upstream.replays.Load()
	s.upstreamDelivered = d.upstream.replayDelivered.Load()
	return s
}

// total sums a field over the routes.
func (s demoSnapshot) total(field func(routeSnapshot) int64) int64 {
	var n int64
	for _, r := range s.routes {
		n += field(r)
	}
	return n
}

// demoView shows the demo's progress: on a terminal one status line
// redrawn in place, otherwise a plain line every few seconds; phase changes
// as lines of their own either way.
type demoView struct {
	out   io.Writer
	d     *session
	tty   bool
	width int // the terminal's columns
	every time.Duration

	phase    string
	lastLine time.Duration
	drawn    bool // a status line is on screen (tty)

	// breaker history, sampled
	state   map[string]string
	trips   map[string]int
	openFor map[string]time.Duration
}

func newDemoView(out io.Writer, d *session) *demoView {
	v := &demoView{
		out: out, d: d, width: 100,
		state: map[string]string{}, trips: map[string]int{}, openFor: map[string]time.Duration{},
	}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			v.tty = true
			if w := terminalWidth(f); w > 20 {
				v.width = w
			}
		}
	}
	v.every = 2 * time.Second
	if d.opts.Duration > 40*time.Second {
		v.every = 5 * time.Second
	}
	return v
}

// cliCommand is how the user can run this CLI from their shell, for the
// hints the demo prints: "sluice" if it is on PATH, "go run ./cmd/sluice"
// if this process was built by go run (its binary sits in a go-build
// temporary folder, gone once it exits) or cannot tell, and otherwise the
// running binary's path.
func cliCommand(lookPath func(string) (string, error), executable func() (string, error)) string {
	if _, err := lookPath("sluice"); err == nil {
		return "sluice"
	}
	exe, err := executable()
	if err != nil || exe == "" || strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return "go run ./cmd/sluice"
	}
	if strings.ContainsAny(exe, " \t'\"$\\`") { // quote it for a POSIX shell
		return "'" + strings.ReplaceAll(exe, "'", `'\''`) + "'"
	}
	return exe
}

// header prints where everything runs and the upstream's schedule.
func (v *demoView) header() {
	d := v.d
	w := v.out
	fmt.Fprintf(w, "sluice demo: %v of load on loopback; the upstream's schedule is scaled to it\n\n", d.opts.Duration)
	row := func(label, value, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-10s %-23s %s", label, value, note), " "))
	}
	row("upstream", d.upstreamURL, "a flaky HTTP service, schedule below")
	row("proxy", d.proxyURL, "sluice serve, in process")
	cli := cliCommand(exec.LookPath, os.Executable)
	row("admin API", d.adminURL, "try: "+cli+" health --admin "+d.adminURL)
	row("", "", "     "+cli+" dlq list --admin "+d.adminURL)
	row("dashboard", d.adminURL+"/dashboard/", "")
	row("load", fmt.Sprintf("%g requests/s", d.opts.Rate), "POST /agents/ID/commands   route agents: on_exhausted: queue")
	row("", "", "GET /api/agents/ID/status  route api: fails fast while its breaker is open")
	row("config", filepath.Join(d.dataDir, "sluice.yaml"), "")
	if d.opts.DataDir == "" {
		row("data", d.dataDir, "(removed at the end)")
	} else {
		row("data", d.dataDir, "")
	}
	fmt.Fprintf(w, "\nschedule (the routes retry 3 times with backoff and a budget; breakers open at 50 %% failures over %v, probe after %v):\n",
		d.times.window, d.times.openFor)
	for _, p := range d.schedule {
		fmt.Fprintf(w, "  %6s  %-13s  the upstream %s\n", seconds(p.start), p.name, p.about)
	}
	fmt.Fprintln(w)
}

// watch shows progress until loadDone is closed.
func (v *demoView) watch(ctx context.Context, loadDone <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-loadDone:
			v.step(time.Since(last), "")
			return
		case <-tick.C:
		}
		now := time.Now()
		v.step(now.Sub(last), "")
		last = now
	}
}

// drain waits, showing progress, until the dead-letter queue has no ready
// message and no replay running, or d.times.drainMax has passed.
func (v *demoView) drain(ctx context.Context) {
	deadline := time.Now().Add(v.d.times.drainMax)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		s := v.d.snapshot()
		if s.waiting == 0 && s.replaying == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		v.step(now.Sub(last), "draining")
		last = now
	}
}

// step samples the state, announces a new phase, and draws progress.
func (v *demoView) step(dt time.Duration, phase string) {
	s := v.d.snapshot()
	for _, r := range s.routes {
		if r.breaker == "open" || r.breaker == "forced-open" {
			if prev := v.state[r.name]; prev != "open" && prev != "forced-open" {
				v.trips[r.name]++
			}
			v.openFor[r.name] += dt
		}
		v.state[r.name] = r.breaker
	}
	if phase == "" {
		phase = phaseAt(v.d.schedule, s.elapsed).name
		if s.elapsed >= v.d.opts.Duration {
			phase = "done"
		}
	}
	if phase != v.phase {
		v.phase = phase
		v.event(s.elapsed, phase)
		v.lastLine = s.elapsed
		v.draw(s)
		return
	}
	if v.tty {
		v.draw(s)
		return
	}
	if s.elapsed-v.lastLine >= v.every {
		v.lastLine = s.elapsed
		v.draw(s)
	}
}

// event prints a phase change on a line of its own.
func (v *demoView) event(at time.Duration, phase string) {
	var msg string
	switch phase {
	case "draining":
		msg = "load stopped; waiting for the dead-letter queue to drain"
	case "done":
		msg = "load stopped"
	default:
		for _, p := range v.d.schedule {
			if p.name == phase && at >= p.start-50*time.Millisecond && at < p.end {
				msg = "the upstream " + p.about
			}
		}
	}
	v.clear()
	fmt.Fprintf(v.out, "%6s  -- %s: %s\n", seconds(at), phase, msg)
}

// draw shows the progress. Without a terminal it prints one plain line.
// On a terminal it redraws two lines in place — the phase and the
// breakers, then the counters — each short enough for 80 columns.
func (v *demoView) draw(s demoSnapshot) {
	var breakers strings.Builder
	for i, r := range s.routes {
		if i > 0 {
			breakers.WriteString(", ")
		}
		breakers.WriteString(r.name + " " + r.breaker)
	}
	counts := fmt.Sprintf("req %d  ok %d  retried %d  fast-failed %d  queued %d  replayed %d",
		s.total(func(r routeSnapshot) int64 { return r.requests }),
		s.total(func(r routeSnapshot) int64 { return r.succeeded }),
		s.total(func(r routeSnapshot) int64 { return r.retries }),
		s.total(func(r routeSnapshot) int64 { return r.fastFailed }),
		s.total(func(r routeSnapshot) int64 { return r.queued }),
		s.replayed)
	if !v.tty {
		fmt.Fprintf(v.out, "%6s  %-13s %s  breakers %s\n", seconds(s.elapsed), v.phase, counts, breakers.String())
		return
	}
	fit := func(line string) string {
		if r := []rune(line); len(r) > v.width-1 {
			return string(r[:v.width-1])
		}
		return line
	}
	if v.drawn {
		fmt.Fprint(v.out, "\x1b[1A") // back to the first of the two lines
	}
	fmt.Fprintf(v.out, "\r%s\x1b[K\n%s\x1b[K",
		fit(fmt.Sprintf("%6s  %-13s breakers: %s", seconds(s.elapsed), v.phase, breakers.String())),
		fit("        "+counts))
	v.drawn = true
}

// clear removes the progress lines from a terminal, leaving the cursor
// where they began, so that a line of its own can be printed.
func (v *demoView) clear() {
	if v.tty && v.drawn {
		fmt.Fprint(v.out, "\r\x1b[K\x1b[1A\r\x1b[K")
		v.drawn = false
	}
}

// summary prints the table at the end and the dead-letter queue's tally.
func (v *demoView) summary(s demoSnapshot, interrupted bool) {
	v.clear()
	w := v.out
	reqs := s.total(func(r routeSnapshot) int64 { return r.requests })
	how := ""
	if interrupted {
		how = " (interrupted)"
	}
	fmt.Fprintf(w, "\nsummary after %s%s: %d requests, %.1f/s\n\n", seconds(s.elapsed), how, reqs,
		float64(reqs)/max(s.elapsed.Seconds(), 0.001))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, field func(routeSnapshot) int64, note string) {
		fmt.Fprintf(tw, "%-13s\t", label)
		for _, r := range s.routes {
			fmt.Fprintf(tw, "%d\t", field(r))
		}
		fmt.Fprintf(tw, "%d\t", s.total(field))
		if note != "" {
			fmt.Fprintf(tw, "  %s", note)
		}
		fmt.Fprintln(tw)
	}
	text := func(label string, cell func(routeSnapshot) string, note string) {
		fmt.Fprintf(tw, "%-13s\t", label)
		for _, r := range s.routes {
			fmt.Fprintf(tw, "%s\t", cell(r))
		}
		fmt.Fprintf(tw, "\t  %s\n", note) // no total
	}
	fmt.Fprintf(tw, "%-13s\t", "")
	for _, r := range s.routes {
		fmt.Fprintf(tw, "%s\t", r.name)
	}
	fmt.Fprintf(tw, "total\t\n")
	row("requests", func(r routeSnapshot) int64 { return r.requests }, "")
	row("succeeded", func(r routeSnapshot) int64 { return r.succeeded }, "2xx from the upstream")
	row("retried", func(r routeSnapshot) int64 { return r.retries }, "attempts after a first one, within the retry budget")
	row("fast-failed", func(r routeSnapshot) int64 { return r.fastFailed }, "503 from sluice itself (Sluice-Reject): breaker open, bulkhead full")
	row("queued", func(r routeSnapshot) int64 { return r.queued }, "202 (Sluice-Queued): on the dead-letter queue, replayed later")
	row("failed", func(r routeSnapshot) int64 { return r.failed }, "the upstream's own failure passed on, after the retries")
	if s.total(func(r routeSnapshot) int64 { return r.noAnswer }) > 0 {
		row("no answer", func(r routeSnapshot) int64 { return r.noAnswer }, "the connection to the proxy failed")
	}
	lat := map[string][]time.Duration{}
	for _, rl := range []*routeLoad{v.d.load.agents, v.d.load.api} {
		lat[rl.name] = rl.percentiles(0.5, 0.99)
	}
	text("latency p50", func(r routeSnapshot) string { return roundDuration(lat[r.name][0]) }, "as the clients saw it, answers of every kind")
	text("latency p99", func(r routeSnapshot) string { return roundDuration(lat[r.name][1]) }, "retries and timeouts are in the slow tail")
	text("breaker trips", func(r routeSnapshot) string { return fmt.Sprint(v.trips[r.name]) }, "times it opened (sampled every 100 ms)")
	text("breaker open", func(r routeSnapshot) string { return roundDuration(v.openFor[r.name].Round(100 * time.Millisecond)) }, "time spent open in all")
	text("breaker now", func(r routeSnapshot) string { return r.breaker }, "its state at the end")
	tw.Flush()

	fmt.Fprintf(w, "\nupstream: %d calls for %d requests (%.2f per request), %d of them replays (%d answered with success)\n",
		s.upstreamCalls, reqs, float64(s.upstreamCalls)/max(float64(reqs), 1), s.upstreamReplays, s.upstreamDelivered)
	queued := s.total(func(r routeSnapshot) int64 { return r.queued })
	fmt.Fprintf(w, "dead-letter queue: queued %d, replayed %d, parked %d, waiting %d", queued, s.replayed, s.parked, s.waiting)
	if s.replayFailed > 0 {
		fmt.Fprintf(w, " (%d replays failed and were tried again later)", s.replayFailed)
	}
	fmt.Fprintln(w)
	switch {
	case queued != s.replayed+s.parked+s.waiting:
		fmt.Fprintf(w, "  the tally does not add up: queued %d != replayed + parked + waiting = %d (data left from an earlier run in %s?)\n",
			queued, s.replayed+s.parked+s.waiting, v.d.dataDir)
	case queued == 0 && interrupted:
		fmt.Fprintln(w, "  nothing was queued before the demo was interrupted")
	case queued == 0:
		fmt.Fprintln(w, "  nothing was queued: try a longer --duration")
	case s.waiting == 0 && s.parked == 0:
		fmt.Fprintln(w, "  every queued request was delivered once the upstream recovered")
	default:
		if s.parked > 0 {
			fmt.Fprintf(w, "  %d parked after repeated failed replays, waiting for an operator ('sluice dlq list --state parked')\n", s.parked)
		}
		if s.waiting > 0 {
			fmt.Fprintf(w, "  %d still waiting for a replay when the demo ended\n", s.waiting)
		}
	}
}

// seconds formats d as seconds with one decimal: "12.5s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// roundDuration shows d at a precision a person reads at a glance, as the
// dlq commands do.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d > 0 && d < time.Millisecond:
		return "<1ms" // not "0s": something was measured
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
