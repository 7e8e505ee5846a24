package sluicehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/ratelimit"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/sluicehttp"
	"github.com/sluice-go/sluice/sluicetest"
	"github.com/sluice-go/sluice/timeout"
)

// A client whose requests are retried when the server is warming up.
func ExampleNewTransport() {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 { // warmed up
			fmt.Fprintln(w, "hello")
			return
		}
		http.Error(w, "warming up", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	rt, _ := retry.New(retry.Config{MaxAttempts: 3, Backoff: retry.Constant(10 * time.Millisecond)})
	tr, err := sluicehttp.NewTransport(sluicehttp.Config{Retry: rt})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	fmt.Println("attempts:", tr.Retry().Stats().Attempts)
	// Output:
	// 200 hello
	// attempts: 2
}

// A client gets the upstream's real answer when retries run out, marked so
// that a sluice layer above does not retry it again.
func ExampleTransport_lastAnswer() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	rt, _ := retry.New(retry.Config{MaxAttempts: 2, Backoff: retry.Constant(time.Millisecond)})
	tr, _ := sluicehttp.NewTransport(sluicehttp.Config{Retry: rt})
	defer tr.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %q Sluice-Retry=%s\n", resp.StatusCode, body, resp.Header.Get(sluicehttp.HeaderRetry))
	// Output:
	// 503 "down for maintenance\n" Sluice-Retry=no
}

// A server that sheds load: a second request within the minute is refused
// with 429, Retry-After and Sluice-Reject.
func ExampleMiddleware() {
	lim := ratelimit.MustNew(ratelimit.Config{Rate: 1, Per: time.Minute, Burst: 1})
	mw := sluicehttp.Middleware(sluicehttp.ServerConfig{Limiter: lim, Timeout: timeout.After(time.Second)})
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})))
	defer srv.Close()

	for range 2 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %q Sluice-Reject=%q Retry-After=%q\n", resp.StatusCode, body,
			resp.Header.Get(sluicehttp.HeaderReject), resp.Header.Get(sluicehttp.HeaderRetryAfter))
	}
	// Output:
	// 200 "hello\n" Sluice-Reject="" Retry-After=""
	// 429 "rate limited\n" Sluice-Reject="rate-limited" Retry-After="60"
}

// A handler that runs out of time is answered 504 by the guard.
func ExampleHandler() {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
			fmt.Fprintln(w, "finally")
		}
	})
	srv := httptest.NewServer(sluicehttp.Handler(slow, timeout.After(10*time.Millisecond)))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %q Sluice-Reject=%s\n", resp.StatusCode, body, resp.Header.Get(sluicehttp.HeaderReject))
	// Output:
	// 504 "timeout\n" Sluice-Reject=timeout
}

// The answer for an open breaker: 503 with the time until its next probe.
func ExampleRejectionFor() {
	clock := sluicetest.NewFakeClock(time.Time{})
	br := breaker.MustNew(breaker.Config{Name: "inventory", FailureThreshold: 1, OpenFor: 30 * time.Second, Clock: clock})
	p := sluice.NewPipeline(br)
	p.Do(context.Background(), func(context.Context) error { return errors.New("connection refused") })

	err := p.Do(context.Background(), func(context.Context) error { return nil })
	r, ok := sluicehttp.RejectionFor(fmt.Errorf("fetching stock: %w", err))
	fmt.Println(ok, r.Status, r.Reason, r.RetryAfter)
	// Output:
	// true 503 circuit-open 30s
}

// A proxy's error handler: sluice's rejections get their answer, anything
// else is the upstream's failure.
func ExampleWriteRejection() {
	errorHandler := func(w http.ResponseWriter, r *http.Request, err error) {
		if !sluicehttp.WriteRejection(w, err) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	}
	for _, err := range []error{
		&retry.BudgetError{Attempts: 1, Wait: 1500 * time.Millisecond},
		errors.New("dial tcp 10.0.0.7:80: connection refused"),
	} {
		rec := httptest.NewRecorder()
		errorHandler(rec, nil, err)
		fmt.Printf("%d Sluice-Reject=%q Retry-After=%q %q\n", rec.Code,
			rec.Header().Get(sluicehttp.HeaderReject), rec.Header().Get(sluicehttp.HeaderRetryAfter), rec.Body.String())
	}
	// Output:
	// 503 Sluice-Reject="budget-exhausted" Retry-After="2" "retry budget exhausted\n"
	// 502 Sluice-Reject="" Retry-After="" "bad gateway\n"
}
