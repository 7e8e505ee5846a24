// Command quickstart shows sluice retrying a flaky call: a local HTTP server
// fails its first requests with 503, and a retry policy with exponential
// backoff and full jitter keeps trying until it answers. It prints each
// failed attempt, the delay waited before the next one, and the outcome.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/breaker"
	"github.com/sluice-go/sluice/retry"
	"github.com/sluice-go/sluice/timeout"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	// A flaky upstream: the first three requests fail with 503.
	var hits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "agent 42: online")
	}))
	defer upstream.Close()

	start := time.Now()
	rt, err := retry.New(retry.Config{
		Name:        "fetch-status",
		MaxAttempts: 5,
		Backoff:     retry.Exponential(50*time.Millisecond, 2, time.Second),
		Jitter:      retry.FullJitter,
		OnRetry: func(e retry.Event) {
			fmt.Fprintf(out, "attempt %d failed after %v: %v; waiting %v\n",
				e.Attempt, time.Since(start).Round(time.Millisecond), e.Err, e.Delay.Round(10*time.Microsecond))
		},
	})
	if err != nil {
		return err
	}
	br, err := breaker.New(breaker.Config{Name: "agents", FailureThreshold: 10})
	if err != nil {
		return err
	}
	defer br.Close()
	p := sluice.NewPipeline(rt, br, timeout.After(2*time.Second))

	body, err := sluice.Get(context.Background(), p, func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL+"/status", nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode >= 400 {
			return "", &sluice.StatusError{Code: resp.StatusCode}
		}
		return string(b), nil
	})
	if err != nil {
		var ex *retry.ExhaustedError
		if errors.As(err, &ex) {
			return fmt.Errorf("gave up: %w", err)
		}
		return err
	}
	st := rt.Stats()
	fmt.Fprintf(out, "succeeded after %v: %q\n", time.Since(start).Round(time.Millisecond), body)
	fmt.Fprintf(out, "stats: calls=%d attempts=%d retries=%d successes=%d; breaker %s\n",
		st.Calls, st.Attempts, st.Retries, st.Successes, br.Stats().State)
	return nil
}
