package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/retry"
)

// flowRig is one layer of the client side with a scripted upstream: every
// attempt is answered after delay with answer.
type flowRig struct {
	w     *world
	l     *layer
	in    *inst
	calls int
	ends  []error
}

func newFlowRig(t *testing.T, sp *spec, delay time.Duration, answer error) *flowRig {
	t.Helper()
	w := newWorld()
	r := &flowRig{w: w}
	r.l = &layer{w: w, rec: newRecorder(int64(time.Minute), 0, 0, 1), attemptTimeout: clientTimeout, bottom: true,
		timeouts: w.newLane(), gaveUp: gaveUpContext()}
	r.l.send = func(tr *try) {
		r.calls++
		w.after(delay, func() { r.l.reply(tr, answer) })
	}
	r.in = newInst(sp, w, 0, newRand(1, 2))
	return r
}

// start issues a call at virtual time at.
func (r *flowRig) start(at time.Duration) {
	r.w.at(int64(at), func() {
		r.l.start(r.in, r.w.now+int64(callDeadline), func(_ *call, err error) { r.ends = append(r.ends, err) })
	})
}

// The bulkhead stage queues with the bulkhead's own tickets, so its Stats
// are honest: a queued attempt counts as waited and then admitted or
// rejected, never as a rejection merely for having queued.
func TestFlowBulkheadQueue(t *testing.T) {
	bc := bulkhead.Config{Name: "bh", MaxConcurrent: 1, MaxQueue: 1, MaxWait: 200 * time.Millisecond}
	r := newFlowRig(t, &spec{name: "bh", bulkhead: &bc}, 300*time.Millisecond, nil)
	r.start(0)                      // admitted, answered at 300ms
	r.start(10 * time.Millisecond)  // queued; its wait runs out at 210ms
	r.start(20 * time.Millisecond)  // queue full: rejected
	r.start(250 * time.Millisecond) // queued; granted at 300ms, answered at 600ms
	r.w.run(int64(time.Second), nil)

	if r.calls != 2 || len(r.ends) != 4 {
		t.Fatalf("%d attempts sent, %d calls ended; want 2 and 4", r.calls, len(r.ends))
	}
	reasons := []bulkhead.Reason{bulkhead.QueueFull, bulkhead.WaitExpired}
	var fe *bulkhead.FullError
	for i, err := range r.ends[:2] {
		if !errors.As(err, &fe) || fe.Reason() != reasons[i] {
			t.Errorf("end %d: %v, want a %v rejection", i, err, reasons[i])
		}
	}
	if r.ends[2] != nil || r.ends[3] != nil {
		t.Errorf("admitted calls ended with %v, %v", r.ends[2], r.ends[3])
	}
	st := r.in.bh.Stats()
	if st.Admitted != 2 || st.Rejected != 2 || st.Waited != 2 || st.Active != 0 || st.Queued != 0 {
		t.Errorf("bulkhead stats %+v; want 2 admitted, 2 rejected, 2 waited, none active or queued", st)
	}
	if r.l.rec.queued != 2 {
		t.Errorf("recorder counted %d queued attempts, want 2", r.l.rec.queued)
	}
}

// The retry and breaker stages are the packages' own: the Retry's
// statistics count every attempt, and the breaker counts each failure the
// upstream answered, through Outcome.
func TestFlowRetryAndBreaker(t *testing.T) {
	rc, err := filled(retry.Config{Name: "r", MaxAttempts: 3, Backoff: retry.Constant(100 * time.Millisecond), Jitter: retry.NoJitter})
	if err != nil {
		t.Fatal(err)
	}
	bc := breaker.Config{Name: "r", FailureThreshold: 100}
	r := newFlowRig(t, &spec{name: "r", retry: rc, breaker: &bc}, 10*time.Millisecond, errUnavailable)
	r.start(0)
	r.w.run(int64(time.Second), nil)

	var ee *retry.ExhaustedError
	if len(r.ends) != 1 || !errors.As(r.ends[0], &ee) || ee.Attempts != 3 {
		t.Fatalf("ends %v, want one ExhaustedError after 3 attempts", r.ends)
	}
	if st := r.in.rt.Stats(); st.Calls != 1 || st.Attempts != 3 || st.Exhausted != 1 || st.Duration.Count != 1 {
		t.Errorf("retry stats %+v", st)
	}
	if st := r.in.br.Stats(); st.Failures != 3 || st.ConsecutiveFailures != 3 {
		t.Errorf("breaker stats %+v, want 3 failures", st)
	}
	// The Retry's own budget was told of the first attempt and granted the
	// two retries.
	first, retries := r.in.rt.Budget().(*retry.RatioBudget).CountsAt(r.w.time())
	if first != 1 || retries != 2 {
		t.Errorf("budget counted %d first attempts and %d retries, want 1 and 2", first, retries)
	}
}
