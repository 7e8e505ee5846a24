package sluicehttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/bulkhead"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/sluicetest"
	"github.com/sluice-go/sluice/timeout"
)

// client is a plain client whose idle connections are closed at the end.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fetch GETs url and returns the response with its body read.
func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

type wantAnswer struct {
	status             int
	reason, retryAfter string
	body               string
}

func checkAnswer(t *testing.T, resp *http.Response, body string, w wantAnswer) {
	t.Helper()
	if resp.StatusCode != w.status || resp.Header.Get("Sluice-Reject") != w.reason ||
		resp.Header.Get("Retry-After") != w.retryAfter || body != w.body {
		t.Errorf("got %d Sluice-Reject=%q Retry-After=%q body=%q; want %d %q %q %q",
			resp.StatusCode, resp.Header.Get("Sluice-Reject"), resp.Header.Get("Retry-After"), body,
			w.status, w.reason, w.retryAfter, w.body)
	}
}

func okHandler(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	})
}

func TestMiddlewareRateLimited(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	lim := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Second, Burst: 1, Clock: clock})
	log, buf := newLogger()
	var calls atomic.Int64
	srv, _ := server(t, sluicehttp.Middleware(sluicehttp.ServerConfig{Limiter: lim, Logger: log})(okHandler(&calls)))
	c := client(t)

	resp, body := fetch(t, c, srv.URL)
	checkAnswer(t, resp, body, wantAnswer{status: 200, body: "ok"})
	resp, body = fetch(t, c, srv.URL+"/second")
	checkAnswer(t, resp, body, wantAnswer{429, "rate-limited", "1", "rate limited\n"})
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", calls.Load())
	}
	if !hasLine(buf.String(), "level=DEBUG", "request shed", "path=/second", "reason=rate-limited", "retry_after=1s") {
		t.Errorf("no Debug record of the rejection:\n%s", buf.String())
	}
	clock.Advance(time.Second)
	resp, body = fetch(t, c, srv.URL)
	checkAnswer(t, resp, body, wantAnswer{status: 200, body: "ok"})
}

func TestMiddlewareBulkheadFull(t *testing.T) {
	bh := bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "slow ok")
	})
	srv, _ := server(t, sluicehttp.Middleware(sluicehttp.ServerConfig{Bulkhead: bh})(h))
	c := client(t)

	first := make(chan string, 1)
	go func() {
		resp, err := c.Get(srv.URL)
		if err != nil {
			first <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- string(b)
	}()
	<-entered
	resp, body := fetch(t, c, srv.URL)
	checkAnswer(t, resp, body, wantAnswer{503, "bulkhead-full", "1", "bulkhead full\n"})
	close(release)
	if got := <-first; got != "slow ok" {
		t.Errorf("the admitted request got %q", got)
	}
	if st := bh.Stats(); st.Rejected != 1 {
		t.Errorf("bulkhead rejected %d, want 1", st.Rejected)
	}
}

func TestMiddlewareTimeout(t *testing.T) {
	t.Run("handler honours its context", func(t *testing.T) {
		to := timeout.After(20 * time.Millisecond)
		lateWrite := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			w.Header().Set("X-Late", "yes")
			_, err := io.WriteString(w, "too late")
			lateWrite <- err
		})
		served := make(chan struct{}, 1)
		mw := sluicehttp.Middleware(sluicehttp.ServerConfig{Timeout: to})(h)
		srv, _ := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mw.ServeHTTP(w, r)
			served <- struct{}{}
		}))
		resp, body := fetch(t, client(t), srv.URL)
		<-served // the 504 reaches the client before the middleware returns
		checkAnswer(t, resp, body, wantAnswer{status: 504, reason: "timeout", body: "timeout\n"})
		if resp.Header.Get("X-Late") != "" {
			t.Error("a header set after the deadline reached the client")
		}
		if err := <-lateWrite; !errors.Is(err, http.ErrHandlerTimeout) {
			t.Errorf("late write: err = %v, want http.ErrHandlerTimeout", err)
		}
		if st := to.Stats(); st.Timeouts != 1 {
			t.Errorf("timeouts = %d, want 1", st.Timeouts)
		}
	})

	t.Run("handler ignores its context", func(t *testing.T) {
		release := make(chan struct{})
		returned := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(returned)
			<-release // deaf to the deadline
			w.Write([]byte("ignored"))
		})
		srv, _ := server(t, sluicehttp.Middleware(sluicehttp.ServerConfig{Timeout: timeout.After(20 * time.Millisecond)})(h))
		c := client(t)
		var resp *http.Response
		var body []byte
		var err error
		// The 504 arrives while the handler is still blocked.
		within(t, "the 504", func() {
			resp, err = c.Get(srv.URL)
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		})
		select {
		case <-returned:
			t.Error("the handler returned before the client had its answer")
		default:
		}
		close(release)
		<-returned
		if err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, resp, string(body), wantAnswer{status: 504, reason: "timeout", body: "timeout\n"})
	})

	t.Run("handler answered before the deadline", func(t *testing.T) {
		// A deadline the handler itself makes pass, right after its first
		// write, so the order does not depend on the machine's speed.
		cancels := make(chan context.CancelCauseFunc, 1)
		deadline := sluice.PolicyFunc(func(ctx context.Context, next sluice.Next) error {
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			cancels <- cancel
			return next.Run(ctx)
		})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Early", "yes")
			io.WriteString(w, "early,")
			http.NewResponseController(w).Flush()
			(<-cancels)(context.DeadlineExceeded)
			<-r.Context().Done()
			io.WriteString(w, "late")
		})
		srv, _ := server(t, sluicehttp.Handler(h, deadline))
		resp, body := fetch(t, client(t), srv.URL)
		checkAnswer(t, resp, body, wantAnswer{status: 200, body: "early,late"})
		if resp.Header.Get("X-Early") != "yes" {
			t.Error("the handler's header was lost")
		}
	})

	t.Run("headers without a body, and trailers", func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/empty" {
				w.Header().Set("X-Only-Header", "yes")
				return
			}
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		})
		srv, _ := server(t, sluicehttp.Middleware(sluicehttp.ServerConfig{Timeout: timeout.After(time.Minute)})(h))
		c := client(t)
		resp, body := fetch(t, c, srv.URL+"/empty")
		if resp.StatusCode != 200 || resp.Header.Get("X-Only-Header") != "yes" || body != "" {
			t.Errorf("empty answer: %d %v %q", resp.StatusCode, resp.Header, body)
		}
		resp, body = fetch(t, c, srv.URL+"/trailer")
		if body != "body" || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("trailer answer: %q, trailer %v", body, resp.Trailer)
		}
	})
}

func TestHandlerAnswersEveryRow(t *testing.T) {
	clock := sluicetest.NewFakeClock(time.Time{})
	tripped := breaker.MustNew(breaker.Config{FailureThreshold: 1, OpenFor: 30 * time.Second, Clock: clock})
	sluice.NewPipeline(tripped).Do(t.Context(), fail)
	full := bulkhead.MustNew(bulkhead.Config{MaxConcurrent: 1})
	full.TryAcquire()
	t.Cleanup(full.Release)
	limited := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Minute, Burst: 1, Clock: clock})
	limited.AllowAt(clock.Now(), 1)
	budget := sluice.PolicyFunc(func(context.Context, sluice.Next) error {
		return &retry.BudgetError{Attempts: 1, Last: errBoom, Wait: 1500 * time.Millisecond}
	})
	custom := sluice.PolicyFunc(func(context.Context, sluice.Next) error {
		return errors.Join(sluice.ErrRejected, errBoom)
	})
	broken := sluice.PolicyFunc(func(context.Context, sluice.Next) error { return errBoom })
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })

	for _, tc := range []struct {
		name   string
		h      http.Handler
		policy sluice.Policy
		want   wantAnswer
	}{
		{"breaker open", nil, tripped, wantAnswer{503, "circuit-open", "30", "circuit open\n"}},
		{"bulkhead full", nil, full, wantAnswer{503, "bulkhead-full", "1", "bulkhead full\n"}},
		{"rate limited", nil, limited, wantAnswer{429, "rate-limited", "60", "rate limited\n"}},
		{"timeout", slow, timeout.After(10 * time.Millisecond), wantAnswer{504, "timeout", "", "timeout\n"}},
		{"budget exhausted", nil, budget, wantAnswer{503, "budget-exhausted", "2", "retry budget exhausted\n"}},
		{"other rejection", nil, custom, wantAnswer{503, "rejected", "", "rejected\n"}},
		{"not a rejection", nil, broken, wantAnswer{503, "", "", "Service Unavailable\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			h := tc.h
			if h == nil {
				h = okHandler(&calls)
			}
			srv, _ := server(t, sluicehttp.Handler(h, tc.policy))
			resp, body := fetch(t, client(t), srv.URL)
			checkAnswer(t, resp, body, tc.want)
			if calls.Load() != 0 {
				t.Errorf("the handler ran %d times", calls.Load())
			}
		})
	}
}
