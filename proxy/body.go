package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// errBodySent is the error of a try that would have to send a request body
// a second time when it was too big to keep. The exchange marks such
// requests non-retryable and never falls over with them, so it is a guard.
var errBodySent = errors.New("proxy: request body already sent and not kept")

// reqBody is a request body as the tries of one exchange send it: kept in
// memory when it fits the route's max_retry_body, so every try and a queued
// message get all of it; otherwise streamed once.
type reqBody struct {
	buf      []byte    // the whole body, when kept
	kept     bool      // buf holds the whole body (an empty body is kept)
	first    io.Reader // the body for the one try of an unkept body
	orig     io.ReadCloser
	length   int64 // the Content-Length to send for an unkept body
	consumed bool  // an unkept body went to a try
	// timedOut is set when reading an unkept body, which the transport
	// does while the try runs, hit the read deadline of body_timeout.
	timedOut atomic.Bool
}

// hasBody reports whether r may have a body to read.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// watchedBody is the streamed part of an unkept body: it reports a read
// that hit the body's deadline to the reqBody.
type watchedBody struct {
	r io.Reader
	b *reqBody
}

func (w watchedBody) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && isTimeout(err) {
		w.b.timedOut.Store(true)
	}
	return n, err
}

// readBody reads r's body into memory if it is at most limit bytes (limit
// 0: never, unless empty). A body that turns out bigger is sent once: what
// was read, then the rest. An error is a failure reading the client's body.
func readBody(r *http.Request, limit int64) (*reqBody, error) {
	b := &reqBody{orig: r.Body, length: r.ContentLength}
	if !hasBody(r) {
		b.kept = true
		return b, nil
	}
	if r.ContentLength > limit {
		b.first = watchedBody{r.Body, b}
		return b, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) <= limit {
		b.buf, b.kept = data, true
		return b, nil
	}
	b.first = io.MultiReader(bytes.NewReader(data), watchedBody{r.Body, b})
	return b, nil
}

// rewindable reports whether the body can be sent again: by a retry, to a
// fallback upstream, or from the dead-letter queue.
func (b *reqBody) rewindable() bool { return b.kept }

// apply sets out's body for one try.
func (b *reqBody) apply(out *http.Request) error {
	switch {
	case b.kept && len(b.buf) == 0:
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
		out.TransferEncoding = nil
	case b.kept:
		buf := b.buf
		out.TransferEncoding = nil // the length is known now
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.ContentLength = int64(len(buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	case b.consumed:
		return errBodySent
	default:
		b.consumed = true
		out.Body = io.NopCloser(b.first)
		out.ContentLength = b.length
		out.GetBody = nil
	}
	return nil
}
