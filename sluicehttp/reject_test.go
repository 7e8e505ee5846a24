package sluicehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
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

var errBoom = errors.New("secret-upstream.internal:5432 refused")

func fail(context.Context) error { return errBoom }
func ok(context.Context) error   { return nil }

// Real rejections, made by the policies themselves.

func openBreakerErr(t *testing.T) error {
	t.Helper()
	clock := sluicetest.NewFakeClock(time.Time{})
	b := breaker.MustNew(breaker.Config{Name: "secret-upstream", FailureThreshold: 1, OpenFor: 30 * time.Second, Clock: clock})
	p := sluice.NewPipeline(b)
	p.Do(t.Context(), fail)
	clock.Advance(500 * time.Millisecond)
	return p.Do(t.Context(), ok)
}

func fullBulkheadErr(t *testing.T) error {
	t.Helper()
	b := bulkhead.MustNew(bulkhead.Config{Name: "secret-pool", MaxConcurrent: 1})
	if !b.TryAcquire() {
		t.Fatal("no permit")
	}
	defer b.Release()
	return sluice.NewPipeline(b).Do(t.Context(), ok)
}

func limitedErr(t *testing.T) error {
	t.Helper()
	clock := sluicetest.NewFakeClock(time.Time{})
	l := ratelimit.MustNew(ratelimit.Config{Name: "secret-tenant", Rate: 1, Per: 2 * time.Second, Burst: 1, Clock: clock})
	p := sluice.NewPipeline(l)
	p.Do(t.Context(), ok)
	return p.Do(t.Context(), ok)
}

func timeoutErr(t *testing.T) error {
	t.Helper()
	to := timeout.After(time.Millisecond)
	return sluice.NewPipeline(to).Do(t.Context(), func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
}

func TestRejectionFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want sluicehttp.Rejection
		ok   bool
	}{
		{"breaker open", openBreakerErr(t), sluicehttp.Rejection{Status: 503, Reason: "circuit-open", RetryAfter: 29500 * time.Millisecond}, true},
		{"breaker wrapped", fmt.Errorf("calling agents: %w", openBreakerErr(t)), sluicehttp.Rejection{Status: 503, Reason: "circuit-open", RetryAfter: 29500 * time.Millisecond}, true},
		{"bulkhead full", fullBulkheadErr(t), sluicehttp.Rejection{Status: 503, Reason: "bulkhead-full", RetryAfter: 100 * time.Millisecond}, true},
		{"rate limited", limitedErr(t), sluicehttp.Rejection{Status: 429, Reason: "rate-limited", RetryAfter: 2 * time.Second}, true},
		{"budget exhausted", &retry.BudgetError{Attempts: 1, Last: errBoom, Wait: 2500 * time.Millisecond}, sluicehttp.Rejection{Status: 503, Reason: "budget-exhausted", RetryAfter: 2500 * time.Millisecond}, true},
		{"timeout", timeoutErr(t), sluicehttp.Rejection{Status: 504, Reason: "timeout"}, true},
		{"attempt timeout", fmt.Errorf("%w after 1s: %w", retry.ErrAttemptTimeout, context.DeadlineExceeded), sluicehttp.Rejection{Status: 504, Reason: "timeout"}, true},
		{"exhausted on timeouts", &retry.ExhaustedError{Attempts: 3, Last: &timeout.Error{Limit: time.Second}}, sluicehttp.Rejection{Status: 504, Reason: "timeout"}, true},
		{"downstream sluice", &sluicehttp.NoRetryError{Code: 429, Reason: "rate-limited", RetryAfterHint: 4 * time.Second}, sluicehttp.Rejection{Status: 429, Reason: "rate-limited", RetryAfter: 4 * time.Second}, true},
		{"other rejection", fmt.Errorf("%w: shed by a custom policy", sluice.ErrRejected), sluicehttp.Rejection{Status: 503, Reason: "rejected"}, true},
		{"upstream failure", &retry.ExhaustedError{Attempts: 3, Last: syscall.ECONNREFUSED}, sluicehttp.Rejection{}, false},
		{"plain error", errBoom, sluicehttp.Rejection{}, false},
		{"nil", nil, sluicehttp.Rejection{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := sluicehttp.RejectionFor(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RejectionFor(%v) = %+v, %v; want %+v, %v", tc.err, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestWriteRejection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		reason     string
		retryAfter string
		body       string
	}{
		{"breaker open", openBreakerErr(t), 503, "circuit-open", "30", "circuit open\n"},
		{"bulkhead full", fullBulkheadErr(t), 503, "bulkhead-full", "1", "bulkhead full\n"},
		{"rate limited", limitedErr(t), 429, "rate-limited", "2", "rate limited\n"},
		{"timeout", timeoutErr(t), 504, "timeout", "", "timeout\n"},
		{"budget exhausted", &retry.BudgetError{Last: errBoom, Wait: 2001 * time.Millisecond}, 503, "budget-exhausted", "3", "retry budget exhausted\n"},
		{"other rejection", fmt.Errorf("%w: %w", sluice.ErrRejected, errBoom), 503, "rejected", "", "rejected\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if !sluicehttp.WriteRejection(rec, tc.err) {
				t.Fatal("WriteRejection = false")
			}
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || res.Header.Get("Sluice-Reject") != tc.reason || res.Header.Get("Retry-After") != tc.retryAfter {
				t.Errorf("got %d, Sluice-Reject %q, Retry-After %q; want %d, %q, %q", res.StatusCode,
					res.Header.Get("Sluice-Reject"), res.Header.Get("Retry-After"), tc.status, tc.reason, tc.retryAfter)
			}
			if string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if strings.Contains(string(body), "secret") {
				t.Errorf("internal error text leaked into the body: %q", body)
			}
		})
	}
	rec := httptest.NewRecorder()
	if sluicehttp.WriteRejection(rec, errBoom) || rec.Code != http.StatusOK || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Errorf("WriteRejection wrote for a non-rejection: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{time.Nanosecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {30 * time.Second, "30"}, {0, ""},
	} {
		rec := httptest.NewRecorder()
		sluicehttp.Rejection{Status: 503, Reason: sluicehttp.ReasonCircuitOpen, RetryAfter: tc.d}.Write(rec)
		if got := rec.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("RetryAfter %v: header %q, want %q", tc.d, got, tc.want)
		}
	}
}

// An open breaker's rejection wraps the failure that opened it; when that
// failure was a final answer from a sluice layer downstream (a
// *NoRetryError), the rejection still maps to this layer's circuit-open,
// not to the downstream layer's answer.
func TestRejectionForOpenBreakerOpenedByAFinalAnswer(t *testing.T) {
	b := breaker.MustNew(breaker.Config{Name: "up", FailureThreshold: 1, OpenFor: time.Minute})
	defer b.Close()
	p := sluice.NewPipeline(b)
	below := &sluicehttp.NoRetryError{Code: 503, Reason: sluicehttp.ReasonBulkheadFull}
	_ = p.Do(context.Background(), func(context.Context) error { return below })
	err := p.Do(context.Background(), ok)
	r, isRej := sluicehttp.RejectionFor(err)
	if !isRej || r.Reason != sluicehttp.ReasonCircuitOpen || r.Status != http.StatusServiceUnavailable || r.RetryAfter <= 0 {
		t.Errorf("RejectionFor(open breaker opened by %v) = %+v, %v; want 503 circuit-open with a Retry-After", below, r, isRej)
	}
}
