package sluicehttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/sluicehttp"
)

// attempter returns an Attempter over a transport of its own, whose idle
// connections are closed when the test ends.
func attempter(t *testing.T, bound bool) *sluicehttp.Attempter {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	return &sluicehttp.Attempter{Base: base, Bound: bound}
}

func newRequest(t *testing.T, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAttemptGoodAnswer(t *testing.T) {
	srv, _ := server(t, newScript(answer(200, "fine")))
	resp, err := attempter(t, false).Attempt(t.Context(), newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); resp.StatusCode != 200 || got != "fine" {
		t.Errorf("got %d %q, want 200 fine", resp.StatusCode, got)
	}
}

// A failure answer is an error for the policies, with its Retry-After, and
// its body stays readable after the try's context is gone: it may become
// the caller's answer once the retries are over.
func TestAttemptFailureAnswerOutlivesTheTry(t *testing.T) {
	srv, _ := server(t, newScript(answer(503, "busy", "Retry-After", "7")))
	try, cancel := context.WithCancel(t.Context())
	resp, err := attempter(t, false).Attempt(try, newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
	cancel()
	var se *sluice.StatusError
	if !errors.As(err, &se) || se.Code != 503 || se.RetryAfterHint != 7*time.Second {
		t.Fatalf("err = %v, want a StatusError 503 with a 7s hint", err)
	}
	if resp == nil {
		t.Fatal("no response with the failure")
	}
	if got := readAll(t, resp); got != "busy" {
		t.Errorf("body after the try ended = %q, want busy", got)
	}
}

// An answer a sluice layer further down marked final is a *NoRetryError,
// which no retry repeats.
func TestAttemptNoRetryMarks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kv     []string
		reason string
	}{
		{"Sluice-Reject", []string{"Sluice-Reject", "bulkhead-full", "Retry-After", "2"}, "bulkhead-full"},
		{"Sluice-Retry", []string{"Sluice-Retry", "No"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := server(t, newScript(answer(503, "x", tc.kv...)))
			resp, err := attempter(t, false).Attempt(t.Context(), newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
			if resp != nil {
				readAll(t, resp)
			}
			var nr *sluicehttp.NoRetryError
			if !errors.As(err, &nr) || nr.Code != 503 || nr.Reason != tc.reason || !errors.Is(err, sluice.ErrDoNotRetry) {
				t.Errorf("err = %#v, want a NoRetryError 503 reason %q", err, tc.reason)
			}
		})
	}
}

func TestAttemptFailureTestDecides(t *testing.T) {
	srv, _ := server(t, newScript(answer(404, "no such page")))
	a := attempter(t, false)
	a.Failure = sluicehttp.FailureFunc(func(resp *http.Response) bool { return resp.StatusCode == 404 })
	resp, err := a.Attempt(t.Context(), newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
	var se *sluice.StatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("err = %v, want a StatusError 404", err)
	}
	readAll(t, resp)
}

// hold answers with status and a first chunk, then holds the body open
// until more is closed (and then writes the rest) or the request ends.
func hold(status int, more <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-more:
			io.WriteString(w, "rest")
		case <-r.Context().Done():
		}
	}
}

// A Bound good answer is cut off when the try's context ends (a sidecar
// streams it under the route's timeout); an unbound one is not (a Transport
// hands it to its caller after the per-attempt timeout's stage returned).
func TestAttemptBoundAnswerEndsWithTheTry(t *testing.T) {
	cause := errors.New("the try's time is up")
	for _, bound := range []bool{true, false} {
		more := make(chan struct{})
		srv, _ := server(t, newScript(hold(200, more)))
		try, cancel := context.WithCancelCause(t.Context())
		resp, err := attempter(t, bound).Attempt(try, newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
			t.Fatalf("bound=%v: first chunk %q, %v", bound, first, err)
		}
		cancel(cause)
		if !bound {
			close(more)
		}
		within(t, "reading the rest", func() {
			rest, err := io.ReadAll(resp.Body)
			switch {
			case bound && err == nil:
				t.Error("a bound answer's body read on after the try ended")
			case !bound && (err != nil || string(rest) != "rest"):
				t.Errorf("an unbound answer's body after the try ended: %q, %v; want rest", rest, err)
			}
		})
		resp.Body.Close()
		if bound {
			close(more)
		}
	}
}

// A try that ends while its failure answer's body is read has no answer:
// it returns the try's cause.
func TestAttemptCutOffWhileReadingAFailure(t *testing.T) {
	cause := errors.New("the try's time is up")
	srv, _ := server(t, newScript(hold(503, nil)))
	try, cancel := context.WithCancelCause(t.Context())
	a := attempter(t, false)
	a.Failure = sluicehttp.FailureFunc(func(resp *http.Response) bool {
		cancel(cause) // the header is in; the body is read next
		return true
	})
	var (
		resp *http.Response
		err  error
	)
	within(t, "the attempt", func() {
		resp, err = a.Attempt(try, newRequest(t, t.Context(), "GET", srv.URL, nil), nil)
	})
	if resp != nil || !errors.Is(err, cause) {
		t.Errorf("got %v, %v; want no response and the try's cause", resp, err)
	}
}

func TestAttemptTransportError(t *testing.T) {
	resp, err := attempter(t, false).Attempt(t.Context(), newRequest(t, t.Context(), "GET", "http://"+closedAddr(t)+"/", nil), nil)
	if resp != nil || err == nil {
		t.Errorf("got %v, %v; want no response and the dial error", resp, err)
	}
}

// A kept body goes whole to every try, with its length; a body bigger than
// the limit streams to one try, and a second try of it is refused.
func TestBodyPerTry(t *testing.T) {
	const payload = "0123456789"
	for _, tc := range []struct {
		name       string
		limit      int64
		knownLen   bool
		getBody    bool
		rewindable bool
	}{
		{"kept", 100, false, false, true},
		{"kept with length", 100, true, false, true},
		{"GetBody", -1, true, true, true},
		{"bigger than the limit", 4, false, false, false},
		{"length over the limit", 4, true, false, false},
		{"never buffered", -1, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(answer(200, "ok"))
			srv, _ := server(t, s)
			src := &closeTracker{Reader: strings.NewReader(payload)}
			req := newRequest(t, t.Context(), "PUT", srv.URL, nil)
			req.Body = src
			if tc.knownLen {
				req.ContentLength = int64(len(payload))
			}
			if tc.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
			}
			body, err := sluicehttp.NewBody(req, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if body.Rewindable() != tc.rewindable {
				t.Fatalf("Rewindable = %v, want %v", body.Rewindable(), tc.rewindable)
			}
			a := attempter(t, false)
			for try := 1; try <= 2; try++ {
				resp, err := a.Attempt(t.Context(), req, body)
				if !tc.rewindable && try == 2 {
					if !errors.Is(err, sluicehttp.ErrBodyNotRewindable) || !body.Consumed() {
						t.Errorf("second try of a body sent once: %v, consumed %v", err, body.Consumed())
					}
					break
				}
				if err != nil {
					t.Fatalf("try %d: %v", try, err)
				}
				readAll(t, resp)
			}
			body.Close()
			for i, got := range s.received() {
				if got != payload {
					t.Errorf("try %d sent %q, want %q", i+1, got, payload)
				}
			}
			if buf, kept := body.Bytes(); kept != (tc.rewindable && !tc.getBody) || (kept && string(buf) != payload) {
				t.Errorf("Bytes = %q, %v", buf, kept)
			}
			if !src.closed.Load() {
				t.Error("the caller's body was not closed")
			}
		})
	}
}

// Close closes the caller's body when no try took it, as a RoundTripper
// must.
func TestBodyCloseWithoutATry(t *testing.T) {
	src := &closeTracker{Reader: strings.NewReader("payload")}
	req := newRequest(t, t.Context(), "POST", "http://127.0.0.1/", nil)
	req.Body, req.ContentLength = src, 7
	body, err := sluicehttp.NewBody(req, 0) // streamed: not read yet
	if err != nil {
		t.Fatal(err)
	}
	if src.closed.Load() {
		t.Fatal("closed before any try")
	}
	body.Close()
	if !src.closed.Load() {
		t.Error("Close left the unsent body open")
	}
}

func TestBytesBody(t *testing.T) {
	s := newScript(answer(200, "ok"))
	srv, _ := server(t, s)
	a := attempter(t, false)
	for _, p := range []string{"replayed", ""} {
		resp, err := a.Attempt(t.Context(), newRequest(t, t.Context(), "POST", srv.URL, nil), sluicehttp.BytesBody([]byte(p)))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	if got := s.received(); len(got) != 2 || got[0] != "replayed" || got[1] != "" {
		t.Errorf("server got %q", got)
	}
}
