package sluicehttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
)

// maxDrain bounds how much of a response body the Transport reads on its own:
// a failure response it keeps for the caller, or one it throws away. Reading
// a small body to its end lets the connection go back to the pool; past this
// bound, closing the connection is cheaper than reading on.
const maxDrain = 64 << 10

// errBodyNotRewindable is returned by an attempt that would have to send a
// request body a second time when it cannot. The Transport runs such
// requests without a retry policy, so it is a guard, not an outcome.
var errBodyNotRewindable = errors.New("sluicehttp: request body cannot be sent again")

// reqBody gives each attempt of a request a fresh body.
type reqBody struct {
	first      io.ReadCloser // the body for attempt 1
	orig       io.ReadCloser // the caller's Body, closed by whoever gets it
	getBody    func() (io.ReadCloser, error)
	buf        []byte
	buffered   bool
	rewindable bool
	handedOver bool // orig went to the base transport (which closes it) or was closed
}

// prepare decides how req's body is re-sent: through GetBody, from a copy
// buffered now (up to limit bytes; limit < 0 never buffers), or not at all.
// An error is a failure reading the caller's body, whose Body is then closed.
func (b *reqBody) prepare(req *http.Request, limit int64) error {
	b.orig = req.Body
	b.first = req.Body
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		b.rewindable = true
		b.handedOver = true
		return nil
	case req.GetBody != nil:
		b.getBody = req.GetBody
		b.rewindable = true
		return nil
	case limit < 0 || req.ContentLength > limit:
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		b.handedOver = true
		req.Body.Close()
		return err
	}
	if int64(len(data)) <= limit {
		b.handedOver = true
		req.Body.Close()
		b.buf, b.buffered, b.rewindable = data, true, true
		b.first = io.NopCloser(bytes.NewReader(data))
		return nil
	}
	// Too big to keep: send what was read, then the rest, once.
	b.first = readCloser{io.MultiReader(bytes.NewReader(data), req.Body), req.Body}
	return nil
}

// forAttempt returns the body for attempt n (1 for the first).
func (b *reqBody) forAttempt(n int) (io.ReadCloser, error) {
	if b.orig == nil || b.orig == http.NoBody {
		return b.orig, nil
	}
	if n == 1 {
		b.handedOver = true
		return b.first, nil
	}
	switch {
	case b.buffered:
		return io.NopCloser(bytes.NewReader(b.buf)), nil
	case b.getBody != nil:
		return b.getBody()
	}
	return nil, errBodyNotRewindable
}

// getBodyFunc is the GetBody to give the base transport for an attempt, so
// that it can rewind on its own (net/http does, on a dead reused connection).
func (b *reqBody) getBodyFunc() func() (io.ReadCloser, error) {
	if b.buffered {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.buf)), nil }
	}
	return b.getBody
}

// release closes the caller's body if no attempt took it: a RoundTripper
// must close the body even when it sends nothing.
func (b *reqBody) release() {
	if !b.handedOver && b.orig != nil {
		b.handedOver = true
		b.orig.Close()
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// DiscardBody drains up to 64 KiB of a response body nobody will read and
// closes it, so that a response the caller never sees does not cost a
// connection. A nil response or body is left alone.
func DiscardBody(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
}

// BufferBody reads up to 64 KiB of a failure response's body. A body that
// fits is held in memory and the original closed, so the connection is back
// in the pool while a retry waits, and complete is true; a bigger one keeps
// streaming after what was read. A read error (a reset mid-body) is returned
// and the response closed: the attempt failed.
func BufferBody(resp *http.Response) (complete bool, err error) {
	if resp.Body == nil || resp.Body == http.NoBody {
		return true, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDrain+1))
	if err != nil {
		resp.Body.Close()
		return false, err
	}
	if len(data) <= maxDrain {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return true, nil
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	return false, nil
}

// cancelBody ends a detached request context when the caller closes the
// body of the response it belongs to (see call.send).
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// cancelRWBody is cancelBody for the read-write body of a 101 Switching
// Protocols response, which callers type-assert to io.Writer.
type cancelRWBody struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (b *cancelRWBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel(nil)
	return err
}

func withCancel(body io.ReadCloser, cancel context.CancelCauseFunc) io.ReadCloser {
	if rw, ok := body.(io.ReadWriteCloser); ok {
		return &cancelRWBody{rw, cancel}
	}
	return &cancelBody{body, cancel}
}
