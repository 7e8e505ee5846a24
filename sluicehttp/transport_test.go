package sluicehttp_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/registry"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/sluicetest"
	"github.com/sluice-go/sluice/timeout"
)

func TestRefusedConnectionIsRetriedThenReported(t *testing.T) {
	addr := closedAddr(t)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

	resp, err := get(t, tr, "http://"+addr+"/")
	if resp != nil {
		t.Fatalf("got a response %d from a closed port", resp.StatusCode)
	}
	if !errors.Is(err, retry.ErrExhausted) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want retries exhausted on connection refused", err)
	}
	if got := tr.Retry().Stats().Attempts; got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	if _, ok := sluicehttp.RejectionFor(err); ok {
		t.Errorf("RejectionFor(%v) is a rejection; an upstream that never answered is not", err)
	}
}

func TestRefusedConnectionsOpenTheHostsBreaker(t *testing.T) {
	addr := closedAddr(t)
	log, buf := newLogger()
	tr := transport(t, sluicehttp.Config{
		Retry:         fastRetry(t, 3),
		BreakerConfig: breaker.Config{FailureThreshold: 2, OpenFor: time.Minute},
		Logger:        log,
	})

	// Attempts 1 and 2 fail and trip the breaker; attempt 3 is shed by it,
	// and a rejection is not retried.
	_, err := get(t, tr, "http://"+addr+"/")
	if !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("err = %v, want breaker.ErrOpen", err)
	}
	r, ok := sluicehttp.RejectionFor(err)
	if !ok || r.Status != http.StatusServiceUnavailable || r.Reason != sluicehttp.ReasonCircuitOpen {
		t.Fatalf("RejectionFor = %+v, %v; want 503 circuit-open", r, ok)
	}
	if r.RetryAfter <= 59*time.Second || r.RetryAfter > time.Minute {
		t.Errorf("RetryAfter = %v, want just under the minute the breaker stays open", r.RetryAfter)
	}
	if got := tr.Retry().Stats().Attempts; got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	out := buf.String()
	if !hasLine(out, "level=WARN", "breaker state changed", "host="+addr, "from=closed", "to=open") {
		t.Errorf("no Warn record of the breaker opening in:\n%s", out)
	}
	if !hasLine(out, "level=DEBUG", "request shed", "host="+addr, "reason=circuit-open", "retry_after=") {
		t.Errorf("no Debug record of the request shed in:\n%s", out)
	}
}

// resetAfter writes the start of a response, then resets the connection.
func resetAfter(head string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		bufrw.WriteString(head)
		bufrw.Flush()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
}

func TestResetMidBodyOfAFailureIsRetried(t *testing.T) {
	s := newScript(
		resetAfter("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\npartial"),
		answer(200, "ok"),
	)
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

	resp, err := get(t, tr, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if s.count() != 2 {
		t.Errorf("server saw %d requests, want 2", s.count())
	}
}

func TestResetMidBodyOfASuccessReachesTheCaller(t *testing.T) {
	gotHeaders := make(chan struct{})
	s := newScript(func(w http.ResponseWriter, r *http.Request) {
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		bufrw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
		bufrw.Flush()
		<-gotHeaders
		conn.(*net.TCPConn).SetLinger(0)
	})
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

	resp, err := get(t, tr, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	close(gotHeaders)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %q without error from a body cut short", b)
	}
	if !strings.HasPrefix("partial", string(b)) {
		t.Errorf("read %q, want a prefix of what was sent", b)
	}
	if s.count() != 1 {
		t.Errorf("server saw %d requests; a response handed over is not retried", s.count())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{
		{"delta-seconds", "7", 7 * time.Second},
		{"http-date", start.Add(12 * time.Second).Format(http.TimeFormat), 12 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := sluicetest.NewFakeClock(start)
			s := newScript(answer(503, "busy", "Retry-After", tc.header), answer(200, "ok"))
			srv, _ := server(t, s)
			r, err := retry.New(retry.Config{
				MaxAttempts: 2, Backoff: retry.Exponential(time.Millisecond, 2, time.Minute),
				Jitter: retry.NoJitter, Budget: retry.NoBudget{}, Clock: clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			tr := transport(t, sluicehttp.Config{Retry: r, Clock: clock})

			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			go func() {
				resp, err := tr.RoundTrip(req)
				done <- result{resp, err}
			}()
			clock.BlockUntil(1)
			deadline, _ := clock.NextDeadline()
			wait := deadline.Sub(clock.Now())
			// The retry policy spreads a Retry-After by up to 10 %.
			if wait < tc.want || wait > tc.want+tc.want/10 {
				t.Errorf("retry waits %v, want %v (+10 %%)", wait, tc.want)
			}
			if s.count() != 1 {
				t.Errorf("server saw %d requests before the wait ended, want 1", s.count())
			}
			clock.Advance(wait)
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			if body := readAll(t, res.resp); res.resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q, want 200 ok", res.resp.StatusCode, body)
			}
		})
	}
}

func TestLastFailureResponseIsReturned(t *testing.T) {
	s := newScript(answer(429, "slow down", "Retry-After", "0", "X-Upstream", "yes"))
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

	resp, err := get(t, tr, srv.URL)
	if err != nil {
		t.Fatalf("err = %v; the caller gets the upstream's last answer, not an error", err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 429 || body != "slow down" || resp.Header.Get("X-Upstream") != "yes" {
		t.Errorf("got %d %q %v, want the upstream's 429", resp.StatusCode, body, resp.Header)
	}
	if got := resp.Header.Get(sluicehttp.HeaderRetry); got != "no" {
		t.Errorf("Sluice-Retry = %q, want no", got)
	}
	if s.count() != 3 {
		t.Errorf("server saw %d requests, want 3", s.count())
	}
}

func TestInternalServerErrorIsNotRetriedButCounted(t *testing.T) {
	s := newScript(answer(500, "broken"))
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})
	resp, err := get(t, tr, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 500 || s.count() != 1 {
		t.Errorf("got %d after %d requests; 500 is not retryable by the shared classifier", resp.StatusCode, s.count())
	}
	b, _ := tr.Breaker(mustURL(t, srv.URL))
	if st := b.Stats(); st.Failures != 1 {
		t.Errorf("breaker failures = %d, want 1", st.Failures)
	}
}

func TestSlowSuccessBodyStreamsPastTheAttemptTimeout(t *testing.T) {
	attemptTimeout, _ := retry.New(retry.Config{MaxAttempts: 2, AttemptTimeout: 10 * time.Second, Budget: retry.NoBudget{}})
	for _, tc := range []struct {
		name string
		cfg  sluicehttp.Config
	}{
		{"timeout policy", sluicehttp.Config{Timeout: timeout.After(10 * time.Second)}},
		{"retry AttemptTimeout", sluicehttp.Config{Retry: attemptTimeout}},
		{"no timeout", sluicehttp.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv, _ := server(t, newScript(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "first,")
				http.NewResponseController(w).Flush()
				<-release
				io.WriteString(w, "second")
			}))
			tr := transport(t, tc.cfg)

			var resp *http.Response
			var err error
			// RoundTrip returns with the headers: success bodies are not buffered.
			within(t, "RoundTrip", func() { resp, err = get(t, tr, srv.URL) })
			if err != nil {
				t.Fatal(err)
			}
			// By now the attempt's context is over; the body must still flow.
			close(release)
			if body := readAll(t, resp); body != "first,second" {
				t.Errorf("body = %q", body)
			}
		})
	}
}

func TestSlowFailureBodyTimesTheAttemptOut(t *testing.T) {
	s := newScript(
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			io.WriteString(w, "drip")
			http.NewResponseController(w).Flush()
			<-r.Context().Done() // until the client gives up on the attempt
		},
		answer(200, "ok"),
	)
	srv, _ := server(t, s)
	to := timeout.After(250 * time.Millisecond)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 2), Timeout: to})

	var resp *http.Response
	var err error
	within(t, "RoundTrip", func() { resp, err = get(t, tr, srv.URL) })
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if got := to.Stats().Timeouts; got != 1 {
		t.Errorf("timeouts = %d, want 1", got)
	}
	b, _ := tr.Breaker(mustURL(t, srv.URL))
	if st := b.Stats(); st.Failures != 1 || st.Successes != 1 {
		t.Errorf("breaker saw %d failures, %d successes; want the timeout counted", st.Failures, st.Successes)
	}
}

func TestPostIsNotRetried(t *testing.T) {
	s := newScript(answer(503, "busy"))
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 503 || s.count() != 1 {
		t.Errorf("got %d after %d requests, want the 503 after 1", resp.StatusCode, s.count())
	}
}

func TestIdempotentPostIsRetriedWithItsBody(t *testing.T) {
	const payload = `{"command":"reboot","agent":42}`
	for _, tc := range []struct {
		name, header string
		getBody      bool
	}{
		{"GetBody", "Idempotency-Key", true},
		{"buffered", "Idempotency-Key", false},
		{"X-Idempotency-Key", "X-Idempotency-Key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(answer(503, "busy"), answer(503, "busy"), answer(201, "created"))
			srv, _ := server(t, s)
			tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})

			body := &closeTracker{Reader: strings.NewReader(payload)}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
			req.Body = body
			if tc.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
			}
			req.Header.Set(tc.header, "cmd-7")
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d, want 201", resp.StatusCode)
			}
			got := s.received()
			if len(got) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(got))
			}
			for i, b := range got {
				if b != payload {
					t.Errorf("attempt %d sent %q, want %q", i+1, b, payload)
				}
			}
			if !body.closed.Load() {
				t.Error("the caller's body was not closed")
			}
		})
	}
}

func TestBodyBiggerThanTheBufferIsSentOnce(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 64) // 1 KiB
	for _, knownLength := range []bool{false, true} {
		t.Run(fmt.Sprintf("knownLength=%v", knownLength), func(t *testing.T) {
			s := newScript(answer(503, "busy"))
			srv, _ := server(t, s)
			tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3), MaxBufferedBody: 100})

			body := &closeTracker{Reader: strings.NewReader(payload)}
			req, _ := http.NewRequest(http.MethodPut, srv.URL, nil)
			req.Body = body
			if knownLength {
				req.ContentLength = int64(len(payload))
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			got := s.received()
			if len(got) != 1 || got[0] != payload {
				t.Fatalf("server got %d requests (first %d bytes), want the whole body once", len(got), len(got[0]))
			}
			if resp.StatusCode != 503 || !body.closed.Load() {
				t.Errorf("status %d, body closed %v", resp.StatusCode, body.closed.Load())
			}
		})
	}
}

func TestBreakerPerHost(t *testing.T) {
	bad := newScript(answer(503, "down"))
	good := newScript(answer(200, "up"))
	badSrv, _ := server(t, bad)
	goodSrv, _ := server(t, good)
	log, buf := newLogger()
	tr := transport(t, sluicehttp.Config{
		Retry:         fastRetry(t, 1),
		BreakerConfig: breaker.Config{FailureThreshold: 3, OpenFor: time.Minute},
		Logger:        log,
	})

	for i := range 3 {
		resp, err := get(t, tr, badSrv.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		readAll(t, resp)
	}
	if _, err := get(t, tr, badSrv.URL); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("4th call to the failing host: err = %v, want breaker.ErrOpen", err)
	}
	if bad.count() != 3 {
		t.Errorf("failing host saw %d requests, want 3 (the 4th was shed)", bad.count())
	}
	resp, err := get(t, tr, goodSrv.URL)
	if err != nil {
		t.Fatalf("healthy host: %v", err)
	}
	if body := readAll(t, resp); body != "up" {
		t.Errorf("healthy host answered %q", body)
	}
	now := time.Now()
	bb, _ := tr.Breaker(mustURL(t, badSrv.URL))
	gb, _ := tr.Breaker(mustURL(t, goodSrv.URL))
	if bb.StateAt(now) != breaker.StateOpen || gb.StateAt(now) != breaker.StateClosed {
		t.Errorf("states: failing host %v, healthy host %v", bb.StateAt(now), gb.StateAt(now))
	}
	badHost := mustURL(t, badSrv.URL).Host
	if !hasLine(buf.String(), "level=WARN", "host="+badHost, "to=open") {
		t.Errorf("no Warn record of %s's breaker opening:\n%s", badHost, buf.String())
	}
}

func TestConnectionsAreReusedAfterDiscardedResponses(t *testing.T) {
	failBody := strings.Repeat("x", 8<<10)
	// Every first attempt fails with a sizeable body, every retry succeeds.
	var steps []http.HandlerFunc
	for range 5 {
		steps = append(steps, answer(503, failBody), answer(200, "ok"))
	}
	s := newScript(steps...)
	srv, conns := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 2)})

	for i := range 5 {
		resp, err := get(t, tr, srv.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if body := readAll(t, resp); body != "ok" {
			t.Fatalf("call %d: %q", i, body)
		}
	}
	if s.count() != 10 {
		t.Fatalf("server saw %d requests, want 10", s.count())
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential requests, want 1", n)
	}
}

func TestSluiceAnswersAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		kv     []string
		reason string
	}{
		{"circuit-open", 503, []string{"Sluice-Reject", "circuit-open", "Retry-After", "5"}, "circuit-open"},
		{"rate-limited", 429, []string{"Sluice-Reject", "rate-limited", "Retry-After", "1"}, "rate-limited"},
		{"already retried", 503, []string{"Sluice-Retry", "no"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(answer(tc.status, "shed", tc.kv...))
			srv, _ := server(t, s)
			tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 3)})
			resp, err := get(t, tr, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if s.count() != 1 || resp.StatusCode != tc.status {
				t.Errorf("got %d after %d requests, want %d after 1", resp.StatusCode, s.count(), tc.status)
			}
			if got := resp.Header.Get(sluicehttp.HeaderReject); got != tc.reason {
				t.Errorf("Sluice-Reject = %q, want %q", got, tc.reason)
			}
		})
	}
}

func TestStackedLayersRetryOnlyAtTheBottom(t *testing.T) {
	bottom := newScript(answer(503, "down"))
	bottomSrv, _ := server(t, bottom)
	lower := transport(t, sluicehttp.Config{Name: "lower", Retry: fastRetry(t, 3)})
	target := mustURL(t, bottomSrv.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: lower,
	}
	proxySrv, _ := server(t, proxy)
	upper := transport(t, sluicehttp.Config{Name: "upper", Retry: fastRetry(t, 3)})

	resp, err := get(t, upper, proxySrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := bottom.count(); n != 3 {
		t.Errorf("the upstream saw %d requests through two layers of 3 attempts, want 3 (not 9)", n)
	}
	if n := upper.Retry().Stats().Attempts; n != 1 {
		t.Errorf("the upper layer made %d attempts, want 1", n)
	}
}

func TestShedRequestsCloseTheirBody(t *testing.T) {
	b := breaker.MustNew(breaker.Config{Name: "forced"})
	b.ForceOpen()
	t.Cleanup(func() { b.Close() })
	tr := transport(t, sluicehttp.Config{
		Breakers: func(string) (*breaker.Breaker, error) { return b, nil },
	})
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req, _ := http.NewRequest(http.MethodPost, "http://"+closedAddr(t)+"/", nil)
	req.Body = body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("err = %v, want breaker.ErrOpen", err)
	}
	if !body.closed.Load() {
		t.Error("the body of a request never sent was not closed")
	}
}

func TestBreakersCanBeTurnedOff(t *testing.T) {
	s := newScript(answer(503, "down"))
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 1), Breakers: sluicehttp.NoBreakers})
	for i := range 8 { // more than the default breaker's 5 consecutive failures
		resp, err := get(t, tr, srv.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		readAll(t, resp)
	}
	if s.count() != 8 {
		t.Errorf("server saw %d requests, want 8", s.count())
	}
	if b, err := tr.Breaker(mustURL(t, srv.URL)); b != nil || err != nil {
		t.Errorf("Breaker = %v, %v; want none", b, err)
	}
}

func TestCallerMarkDecidesIdempotency(t *testing.T) {
	s := newScript(answer(503, "busy"), answer(200, "ok"))
	srv, _ := server(t, s)
	tr := transport(t, sluicehttp.Config{Retry: fastRetry(t, 2)})
	ctx := sluice.WithIdempotent(t.Context(), true)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("x"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 200 || s.count() != 2 {
		t.Errorf("got %d after %d requests; a POST the caller marked idempotent is retried", resp.StatusCode, s.count())
	}
}

func TestRegistryHoldsTheTransportsPolicies(t *testing.T) {
	reg := registry.New(registry.Config{})
	t.Cleanup(func() { reg.Close() })
	srv, _ := server(t, newScript(answer(200, "ok")))
	tr := transport(t, sluicehttp.Config{Name: "agents", Registry: reg})
	resp, err := get(t, tr, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	snap := reg.Snapshot()
	host := mustURL(t, srv.URL).Host
	found := false
	for _, b := range snap.Breakers {
		found = found || b.Name == "agents/"+host
	}
	if !found {
		t.Errorf("no breaker agents/%s in the registry: %+v", host, snap.Breakers)
	}
	if len(snap.Retries) != 1 || snap.Retries[0].Name != "agents" || snap.Retries[0].Stats.Calls != 1 {
		t.Errorf("retries in the registry: %+v", snap.Retries)
	}
	if _, err := sluicehttp.NewTransport(sluicehttp.Config{Name: "agents", Registry: reg}); !errors.Is(err, registry.ErrExists) {
		t.Errorf("a second transport under the same name: err = %v, want registry.ErrExists", err)
	}
}

func TestNewTransportValidates(t *testing.T) {
	_, err := sluicehttp.NewTransport(sluicehttp.Config{
		Breakers:      sluicehttp.NoBreakers,
		BreakerConfig: breaker.Config{FailureThreshold: 3},
	})
	if err == nil || !strings.Contains(err.Error(), "Config.BreakerConfig") {
		t.Errorf("err = %v, want one naming Config.BreakerConfig", err)
	}
	_, err = sluicehttp.NewTransport(sluicehttp.Config{BreakerConfig: breaker.Config{FailureRateThreshold: 2}})
	if err == nil || !strings.Contains(err.Error(), "FailureRateThreshold") {
		t.Errorf("err = %v, want one naming FailureRateThreshold", err)
	}
}
