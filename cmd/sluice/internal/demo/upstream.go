package demo

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/proxy"
)

// phaseKind is how the demo's upstream behaves during a phase.
type phaseKind int

const (
	phaseHealthy  phaseKind = iota // answers at once
	phaseOutage                    // answers every request with 503
	phaseBrownout                  // answers brownoutShare of requests with 503
	phaseLatency                   // answers slowly, some slower than the route's timeout
)

// The demo upstream's misbehaviour.
const (
	brownoutShare = 0.3
	latencyMin    = 50 * time.Millisecond
	latencyMax    = 400 * time.Millisecond
	// demoTryTimeout is the routes' per-try timeout: a latency spike
	// pushes some answers past it.
	demoTryTimeout = 300 * time.Millisecond
)

// demoPhase is one stretch of the demo's schedule.
type demoPhase struct {
	name       string
	kind       phaseKind
	start, end time.Duration // since the demo started
	about      string        // what the upstream does, for people
}

// demoSchedule returns the upstream's schedule for a run of d, in shares
// of d so that a short run goes through every phase: healthy; an outage;
// recovery, during which the dead-letter queue drains; a brownout; a
// latency spike; healthy to the end.
func demoSchedule(d time.Duration) []demoPhase {
	at := func(share float64) time.Duration { return time.Duration(share * float64(d)).Round(time.Millisecond) }
	return []demoPhase{
		{"healthy", phaseHealthy, 0, at(.15), "answers every request at once"},
		{"outage", phaseOutage, at(.15), at(.35), "answers every request with 503"},
		{"recovered", phaseHealthy, at(.35), at(.50), "is healthy again"},
		{"brownout", phaseBrownout, at(.50), at(.65), fmt.Sprintf("fails %.0f %% of requests with 503", 100*brownoutShare)},
		{"latency spike", phaseLatency, at(.65), at(.80), fmt.Sprintf("takes %v to %v per answer (the routes time a try out after %v)", latencyMin, latencyMax, demoTryTimeout)},
		{"healthy", phaseHealthy, at(.80), d, "is healthy to the end"},
	}
}

// phaseAt returns the phase of schedule at elapsed; the last one after the
// end.
func phaseAt(schedule []demoPhase, elapsed time.Duration) demoPhase {
	for _, p := range schedule {
		if elapsed < p.end {
			return p
		}
	}
	return schedule[len(schedule)-1]
}

// flakyUpstream is the demo's upstream: an HTTP service that follows the
// schedule, counting what reaches it.
type flakyUpstream struct {
	schedule []demoPhase
	start    atomic.Int64 // when the schedule began, in Unix nanoseconds

	calls           atomic.Int64 // requests received
	replays         atomic.Int64 // of them, replays from the dead-letter queue
	replayDelivered atomic.Int64 // replays answered with success
}

// begin starts the schedule at t.
func (u *flakyUpstream) begin(t time.Time) { u.start.Store(t.UnixNano()) }

// elapsed is the time since the schedule began.
func (u *flakyUpstream) elapsed() time.Duration {
	return time.Since(time.Unix(0, u.start.Load()))
}

func (u *flakyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	replay := r.Header.Get(proxy.HeaderQueued) != ""
	if replay {
		u.replays.Add(1)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	switch phaseAt(u.schedule, u.elapsed()).kind {
	case phaseOutage:
		http.Error(w, "upstream: down for the demo's outage", http.StatusServiceUnavailable)
		return
	case phaseBrownout:
		if rand.Float64() < brownoutShare {
			http.Error(w, "upstream: browned out", http.StatusServiceUnavailable)
			return
		}
	case phaseLatency:
		t := time.NewTimer(latencyMin + rand.N(latencyMax-latencyMin))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the proxy gave up on this try
		}
	}
	if replay {
		u.replayDelivered.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"ok\": true, \"path\": %q}\n", r.URL.Path)
}
