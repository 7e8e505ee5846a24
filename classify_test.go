package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
)

func wantFailure(t *testing.T, ctx context.Context, err error, typ sluice.FailureType, retryable bool) {
	t.Helper()
	if f := sluice.Classify(ctx, err); f.Type != typ || f.Retryable != retryable {
		t.Errorf("Classify(%v) = %v/retryable=%v, want %v/retryable=%v", err, f.Type, f.Retryable, typ, retryable)
	}
}

// closedPort returns a loopback address that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestClassifyConnectionRefused(t *testing.T) {
	_, err := net.Dial("tcp", closedPort(t))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing a closed port gave %v, not ECONNREFUSED", err)
	}
	wantFailure(t, context.Background(), err, sluice.FailureNetwork, true)
	wantFailure(t, context.Background(), fmt.Errorf("fetch agents: %w", err), sluice.FailureNetwork, true)
}

// resetConn returns a client connection whose peer has closed with
// SO_LINGER 0, so the kernel has answered with a RST.
func resetConn(t *testing.T) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	dialed, closed := make(chan struct{}), make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			closed <- err
			return
		}
		<-dialed // close only after Dial returned, or Dial itself sees the reset
		if err := c.(*net.TCPConn).SetLinger(0); err != nil {
			closed <- err
			return
		}
		closed <- c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	close(dialed)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClassifyResetAndBrokenPipe(t *testing.T) {
	c := resetConn(t)
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's RST gave %v, not ECONNRESET", err)
	}
	wantFailure(t, context.Background(), err, sluice.FailureNetwork, true)

	// The reset has been reported; the socket is now closed for writing.
	_, err = c.Write([]byte("x"))
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after reset gave %v, not EPIPE", err)
	}
	wantFailure(t, context.Background(), err, sluice.FailureNetwork, true)
}

func TestClassifyDeadlineTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if srv := <-accepted; srv != nil {
		defer srv.Close()
	}
	if err := c.SetReadDeadline(time.Now()); err != nil { // already passed: no waiting
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline gave %v, not a net.Error timeout", err)
	}
	wantFailure(t, context.Background(), err, sluice.FailureTimeout, true)
}

// timeLimitError is a policy's time limit that cut short work which
// returned wrapped, as timeout.Error is.
type timeLimitError struct{ wrapped error }

func (e timeLimitError) Error() string        { return "limit passed: " + e.wrapped.Error() }
func (e timeLimitError) Unwrap() error        { return e.wrapped }
func (e timeLimitError) Is(target error) bool { return target == sluice.ErrTimeLimit }

// A policy's time limit is a retryable timeout whatever the work it cut
// short returned: its marker ranks above the status beneath it.
func TestClassifyTimeLimitOverStatus(t *testing.T) {
	for _, code := range []int{500, 404, 401, 503} {
		wantFailure(t, context.Background(), timeLimitError{&sluice.StatusError{Code: code}}, sluice.FailureTimeout, true)
	}
	wantFailure(t, context.Background(), fmt.Errorf("call: %w", timeLimitError{errors.New("boom")}), sluice.FailureTimeout, true)
	// The caller's own cancellation still wins.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantFailure(t, ctx, timeLimitError{context.Canceled}, sluice.FailureCanceled, false)
}

func TestClassifyClosedConn(t *testing.T) {
	c := resetConn(t)
	c.Close()
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on closed conn gave %v", err)
	}
	wantFailure(t, context.Background(), err, sluice.FailureNetwork, true)
}

func TestClassifyDNS(t *testing.T) {
	ctx := context.Background()
	wantFailure(t, ctx, &net.DNSError{Err: "server misbehaving", Name: "agents.internal", IsTemporary: true}, sluice.FailureNetwork, true)
	wantFailure(t, ctx, &net.DNSError{Err: "i/o timeout", Name: "agents.internal", IsTimeout: true}, sluice.FailureTimeout, true)
	wantFailure(t, ctx, &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}, sluice.FailureNetwork, false)
	wrapped := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}
	wantFailure(t, ctx, wrapped, sluice.FailureNetwork, true)
}

func TestClassifyContext(t *testing.T) {
	live := context.Background()
	wantFailure(t, live, context.DeadlineExceeded, sluice.FailureTimeout, true)
	wantFailure(t, live, fmt.Errorf("query: %w", context.DeadlineExceeded), sluice.FailureTimeout, true)
	wantFailure(t, nil, context.DeadlineExceeded, sluice.FailureTimeout, true)

	// The caller's own context has ended: its errors are no failure of the
	// dependency, whatever wraps them.
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	wantFailure(t, canceled, context.Canceled, sluice.FailureCanceled, false)
	wantFailure(t, canceled, context.DeadlineExceeded, sluice.FailureCanceled, false)
	wantFailure(t, canceled, fmt.Errorf("dial: %w", context.Canceled), sluice.FailureCanceled, false)
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	wantFailure(t, expired, context.DeadlineExceeded, sluice.FailureCanceled, false)

	// A dependency's own cancellation, with the caller still waiting.
	wantFailure(t, live, context.Canceled, sluice.FailureCanceled, false)

	if sluice.Classify(canceled, context.Canceled).IsFailure() {
		t.Error("the caller's cancellation counts as a failure")
	}
	if sluice.Classify(live, nil).IsFailure() || sluice.Classify(live, nil).Type != sluice.FailureNone {
		t.Error("nil error is a failure")
	}
	if !sluice.Classify(live, context.DeadlineExceeded).IsFailure() {
		t.Error("a dependency's deadline is no failure")
	}
}

func TestClassifyStatuses(t *testing.T) {
	cases := []struct {
		code      int
		typ       sluice.FailureType
		retryable bool
	}{
		{200, sluice.FailureNone, false},
		{304, sluice.FailureNone, false},
		{400, sluice.FailureClient, false},
		{401, sluice.FailureAuthentication, false},
		{403, sluice.FailureAuthentication, false},
		{404, sluice.FailureClient, false},
		{408, sluice.FailureTimeout, true},
		{429, sluice.FailureRateLimited, true},
		{500, sluice.FailureUnknown, false},
		{502, sluice.FailureUnavailable, true},
		{503, sluice.FailureUnavailable, true},
		{504, sluice.FailureTimeout, true},
	}
	for _, tc := range cases {
		if f := sluice.ClassifyStatus(tc.code); f.Type != tc.typ || f.Retryable != tc.retryable {
			t.Errorf("ClassifyStatus(%d) = %+v", tc.code, f)
		}
		if tc.typ == sluice.FailureNone {
			continue
		}
		err := fmt.Errorf("GET /agents: %w", &sluice.StatusError{Code: tc.code})
		wantFailure(t, context.Background(), err, tc.typ, tc.retryable)
	}
}

func TestStatusError(t *testing.T) {
	e := &sluice.StatusError{Code: 429, RetryAfterHint: 3 * time.Second}
	if e.Error() != "HTTP 429 Too Many Requests" || e.StatusCode() != 429 {
		t.Errorf("%q %d", e.Error(), e.StatusCode())
	}
	if d, ok := sluice.RetryAfter(fmt.Errorf("x: %w", e)); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := sluice.RetryAfter(io.EOF); ok {
		t.Error("RetryAfter found a hint in io.EOF")
	}
}

type shed struct{}

func (shed) Error() string             { return "bulkhead full" }
func (shed) Unwrap() error             { return sluice.ErrRejected }
func (shed) RetryAfter() time.Duration { return 2 * time.Second }

func TestClassifyRejectionAndUnknown(t *testing.T) {
	ctx := context.Background()
	wantFailure(t, ctx, shed{}, sluice.FailureRejected, false)
	wantFailure(t, ctx, fmt.Errorf("retry: %w", shed{}), sluice.FailureRejected, false)
	wantFailure(t, ctx, errors.New("something odd"), sluice.FailureUnknown, true)
	wantFailure(t, ctx, io.ErrUnexpectedEOF, sluice.FailureUnknown, true)
	wantFailure(t, ctx, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("weird")}, sluice.FailureNetwork, true)
}

type quotaError struct{ left int }

func (e *quotaError) Error() string { return fmt.Sprintf("quota: %d left", e.left) }

var errMaintenance = errors.New("upstream in maintenance")

func TestClassifierRules(t *testing.T) {
	c := &sluice.Classifier{Rules: []sluice.Rule{
		{Is: errMaintenance, Type: sluice.FailureUnavailable, Retryable: false},
		{As: sluice.ErrorAs[*quotaError](), Type: sluice.FailureRateLimited, Retryable: true},
		{Statuses: []int{500, 503}, Type: sluice.FailureUnavailable, Retryable: true},
		{Pattern: regexp.MustCompile(`(?i)deadlock`), Type: sluice.FailureUnknown, Retryable: true},
		{Match: func(err error) bool { return err.Error() == "teapot" }},                         // zero Type: unknown
		{Pattern: regexp.MustCompile(`deadlock`), Type: sluice.FailureNetwork, Retryable: false}, // shadowed
	}}
	ctx := context.Background()
	cases := []struct {
		err       error
		typ       sluice.FailureType
		retryable bool
	}{
		{fmt.Errorf("call: %w", errMaintenance), sluice.FailureUnavailable, false},
		{fmt.Errorf("call: %w", &quotaError{0}), sluice.FailureRateLimited, true},
		{&sluice.StatusError{Code: 500}, sluice.FailureUnavailable, true}, // built-in says not retryable
		{&sluice.StatusError{Code: 503}, sluice.FailureUnavailable, true},
		{&sluice.StatusError{Code: 502}, sluice.FailureUnavailable, true}, // falls through to built-in
		{errors.New("Deadlock found when trying to get lock"), sluice.FailureUnknown, true},
		{errors.New("deadlock"), sluice.FailureUnknown, true}, // first matching rule wins
		{errors.New("teapot"), sluice.FailureUnknown, false},
		{context.DeadlineExceeded, sluice.FailureTimeout, true}, // built-in
	}
	for _, tc := range cases {
		if f := c.Classify(ctx, tc.err); f.Type != tc.typ || f.Retryable != tc.retryable {
			t.Errorf("Classify(%v) = %+v, want %v/%v", tc.err, f, tc.typ, tc.retryable)
		}
	}
	// The caller's cancellation is decided before any rule.
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	always := &sluice.Classifier{Rules: []sluice.Rule{{Match: func(error) bool { return true }, Type: sluice.FailureNetwork, Retryable: true}}}
	if f := always.Classify(canceled, context.Canceled); f.Type != sluice.FailureCanceled {
		t.Errorf("rule overrode the caller's cancellation: %+v", f)
	}
	if f := always.Classify(ctx, nil); f.Type != sluice.FailureNone {
		t.Errorf("rule matched a nil error: %+v", f)
	}
	var nilC *sluice.Classifier
	if f := nilC.Classify(ctx, io.EOF); f.Type != sluice.FailureUnknown {
		t.Errorf("nil Classifier: %+v", f)
	}
}

func TestFailureTypeString(t *testing.T) {
	want := map[sluice.FailureType]string{
		sluice.FailureNone: "none", sluice.FailureNetwork: "network", sluice.FailureTimeout: "timeout",
		sluice.FailureUnavailable: "unavailable", sluice.FailureAuthentication: "authentication",
		sluice.FailureRateLimited: "rate-limited", sluice.FailureCanceled: "canceled", sluice.FailureUnknown: "unknown",
		42: "FailureType(42)",
	}
	for ft, s := range want {
		if ft.String() != s {
			t.Errorf("%d: %q, want %q", ft, ft.String(), s)
		}
	}
}

func TestClientErrorsDoNotCountAgainstDependency(t *testing.T) {
	ctx := context.Background()
	for _, code := range []int{400, 404, 409, 422} {
		f := sluice.Classify(ctx, &sluice.StatusError{Code: code})
		if f.IsFailure() || f.Retryable {
			t.Errorf("HTTP %d: %+v counts as a retryable or dependency failure", code, f)
		}
	}
	for _, code := range []int{401, 500, 502} {
		if f := sluice.Classify(ctx, &sluice.StatusError{Code: code}); !f.IsFailure() {
			t.Errorf("HTTP %d: %+v should count against the dependency", code, f)
		}
	}
}

func TestRejectionsClassifiedByWhatTheyWrap(t *testing.T) {
	ctx := context.Background()
	local := fmt.Errorf("%w: bulkhead full", sluice.ErrRejected)
	if f := sluice.Classify(ctx, local); f.Type != sluice.FailureRejected || f.IsFailure() || f.Retryable || !f.Failed() {
		t.Errorf("bare local rejection: %+v, want FailureRejected: not a dependency failure, not retryable, Failed", f)
	}
	budget := errors.Join(sluice.ErrRejected, &sluice.StatusError{Code: 503})
	if f := sluice.Classify(ctx, budget); f.Type != sluice.FailureUnavailable || !f.IsFailure() || f.Retryable {
		t.Errorf("rejection wrapping a 503: %+v, want FailureUnavailable, counted, not retryable", f)
	}
	remote := fmt.Errorf("downstream: %w", sluice.ErrDoNotRetry)
	if f := sluice.Classify(ctx, remote); f.Type != sluice.FailureUnavailable || !f.IsFailure() || f.Retryable {
		t.Errorf("do-not-retry: %+v, want FailureUnavailable, counted, not retryable", f)
	}
}

// pastCause is a rejection that wraps an earlier call's failure, as an open
// breaker's wraps the failure that opened it.
type pastCause struct{ cause error }

func (p pastCause) Error() string             { return "circuit open" }
func (p pastCause) Is(target error) bool      { return target == sluice.ErrRejected }
func (p pastCause) Unwrap() error             { return p.cause }
func (p pastCause) RejectionCause() error     { return p.cause }
func (p pastCause) RetryAfter() time.Duration { return time.Second }

// A rejection wrapping an earlier call's failure is FailureRejected whatever
// that failure is — a network error, a downstream final answer, a status a
// user rule knows — so no breaker counts it and no retry repeats it; a
// budget refusal wrapping it is a rejection too.
func TestRejectionWrappingAPastCauseIsRejected(t *testing.T) {
	ctx := context.Background()
	rules := &sluice.Classifier{Rules: []sluice.Rule{
		{Statuses: []int{503}, Type: sluice.FailureUnavailable, Retryable: true},
		{As: sluice.ErrorAs[*net.OpError](), Type: sluice.FailureNetwork, Retryable: true},
	}}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"network failure", pastCause{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}},
		{"status 503", pastCause{&sluice.StatusError{Code: 503}}},
		{"downstream final answer", pastCause{fmt.Errorf("below: %w", sluice.ErrDoNotRetry)}},
		{"wrapped", fmt.Errorf("attempt: %w", pastCause{&sluice.StatusError{Code: 503}})},
		{"under a budget refusal", errors.Join(sluice.ErrRejected, pastCause{&sluice.StatusError{Code: 502}})},
		{"no cause", pastCause{}},
	} {
		for _, c := range []*sluice.Classifier{sluice.DefaultClassifier, rules} {
			if f := c.Classify(ctx, tc.err); f.Type != sluice.FailureRejected || f.Retryable || f.IsFailure() || !f.Failed() {
				t.Errorf("%s (%d user rules): %+v, want FailureRejected, not retryable", tc.name, len(c.Rules), f)
			}
		}
	}
}
