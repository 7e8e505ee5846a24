package pool

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/breaker"
)

// TestScheduleSpacing drives the schedule in virtual time with checks of
// random length: a replica is never checked twice at once, two checks of a
// replica start at least Interval apart, and the first checks are spread
// over the first Interval.
func TestScheduleSpacing(t *testing.T) {
	iv := 200 * time.Millisecond
	s := newSchedule(t0, 4, iv)
	if at, ok := s.nextAt(); !ok || !at.Equal(t0) {
		t.Fatalf("first check at %v", at)
	}
	type check struct {
		i   int
		end time.Time
	}
	var running []check
	last := make([]time.Time, 4)
	starts := make([]int, 4)
	var due []int
	for ms := 0; ms < 10000; ms++ {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		kept := running[:0]
		for _, c := range running {
			if !now.Before(c.end) {
				s.doneAt(c.i)
			} else {
				kept = append(kept, c)
			}
		}
		running = kept
		due = s.dueAt(now, due[:0])
		for _, i := range due {
			for _, c := range running {
				if c.i == i {
					t.Fatalf("replica %d checked twice at once at %v", i, now.Sub(t0))
				}
			}
			if starts[i] > 0 && now.Sub(last[i]) < iv {
				t.Fatalf("replica %d: checks %v apart", i, now.Sub(last[i]))
			}
			if starts[i] == 0 && now.Sub(t0) != time.Duration(i)*iv/4 {
				t.Fatalf("replica %d first checked at %v, want %v", i, now.Sub(t0), time.Duration(i)*iv/4)
			}
			last[i] = now
			starts[i]++
			d := time.Duration(1+(ms*7+i*13)%350) * time.Millisecond // some longer than the interval
			running = append(running, check{i, now.Add(d)})
		}
	}
	for i, n := range starts {
		if n > 50 || n < 20 {
			t.Fatalf("replica %d: %d checks in 10 s at 200 ms", i, n)
		}
	}
}

// TestCheckerHTTP runs the real checker against loopback servers: a
// replica whose server answers 503 is marked down, and once it answers 200
// again it goes on trial without waiting out its hold.
func TestCheckerHTTP(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer good.Close()

	iv := 100 * time.Millisecond // also the timeout: generous for a loaded machine under -race
	p, err := New(Config{Replicas: []Endpoint{{Addr: bad.URL + "/"}, {Addr: good.URL}},
		Health: Health{Interval: iv, Timeout: iv, UnhealthyThreshold: 2, HealthyThreshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	check, err := HTTPCheck(bad.Client(), "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.StartChecks(check)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := p.Replicas()[0]
	waitFor(t, "marked down", func() bool { return p.StatsAt(time.Now()).Replicas[0].Down })
	if st := r.Breaker().State(); st != breaker.StateOpen {
		t.Fatalf("down replica's breaker %v", st)
	}
	if msg := p.StatsAt(time.Now()).Replicas[0].LastCheckError; !strings.Contains(msg, "status 503") {
		t.Fatalf("LastCheckError %q", msg)
	}
	if p.StatsAt(time.Now()).Replicas[1].Out {
		t.Fatal("the healthy replica is out")
	}
	healthy.Store(true)
	waitFor(t, "on trial", func() bool { return r.Breaker().State() == breaker.StateHalfOpen })
	c.Close()
	n := hits.Load()
	if n < 4 {
		t.Fatalf("%d checks", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 5 s", what)
		}
		time.Sleep(time.Millisecond) // polling a real condition with a deadline
	}
}

func TestHTTPCheckAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	if _, err := HTTPCheck(nil, "healthz"); err == nil {
		t.Fatal("a path without / accepted")
	}
	for path, want := range map[string]string{"/ok": "", "/bad": "status 500", "/slow": "deadline exceeded"} {
		check, err := HTTPCheck(srv.Client(), path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err = check(ctx, srv.URL)
		cancel()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

func TestStartChecksErrors(t *testing.T) {
	p := newPool(t, Config{Replicas: endpoints(1)})
	if _, err := p.StartChecks(func(context.Context, string) error { return nil }); err == nil {
		t.Fatal("checks started without an interval")
	}
	p = newPool(t, Config{Replicas: endpoints(1), Health: Health{Interval: time.Second}})
	if _, err := p.StartChecks(nil); err == nil {
		t.Fatal("checks started without a function")
	}
	// Close cancels a check in flight and waits for it.
	started := make(chan struct{})
	c, err := p.StartChecks(func(ctx context.Context, string2 string) error {
		close(started)
		<-ctx.Done()
		return errors.New("cancelled")
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	c.Close()
	c.Close()
	if p.StatsAt(t0).Replicas[0].LastCheckError != "" {
		t.Fatal("a cancelled check's result was applied")
	}
}
