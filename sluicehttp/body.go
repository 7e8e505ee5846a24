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

// ErrBodyNotRewindable is the error of a try that would have to send a
// request body a second time when it cannot: the body was too big to keep
// and has gone to an earlier try. Callers check Body.Rewindable before they
// repeat a request (the Transport runs such requests without its retry
// policy), so meeting it is a guard, not an outcome; a retry policy should
// never repeat it.
var ErrBodyNotRewindable = errors.New("sluicehttp: request body already sent and not kept")

// Body is a request body made ready for several tries of one request, as
// the Transport's retries and the sidecar's fallover send it: each try gets
// a fresh copy, through the request's GetBody or from the whole body kept in
// memory when it fits a limit; a bigger body streams once, to one try.
// Attempter.Attempt sends it. The zero Body is an empty body; Reset or
// NewBody make it a request's. A Body is for one goroutine at a time, as the
// tries of one request are.
type Body struct {
	orig       io.ReadCloser // the caller's body
	first      io.ReadCloser // the body of the first try
	getBody    func() (io.ReadCloser, error)
	buf        []byte // the whole body, when kept
	tries      int32  // bodies handed to tries
	kept       bool   // buf holds the whole body
	empty      bool   // there is no body at all (nil or http.NoBody)
	handedOver bool   // orig went to a try (whose transport closes it) or was closed
}

// NewBody returns req's body made ready for its tries; see Body.Reset.
func NewBody(req *http.Request, limit int64) (*Body, error) {
	b := new(Body)
	if err := b.Reset(req, limit); err != nil {
		return nil, err
	}
	return b, nil
}

// BytesBody returns a Body holding p, as a request body kept in memory: a
// replayed request's, say.
func BytesBody(p []byte) *Body {
	return &Body{buf: p, kept: true, empty: len(p) == 0, handedOver: true}
}

// Reset makes b req's body and decides how later tries get it again: a
// nil or http.NoBody body is empty; one with GetBody is rewound through it;
// otherwise up to limit bytes are read now (limit 0 reads none unless the
// body turns out empty; a negative limit reads nothing). A body that fits is
// kept, and req.Body closed; a bigger one (by ContentLength, or once limit
// bytes are read) streams once, what was read first. An error is a failure
// reading req.Body, which is then closed. Reset reads only req's Body,
// GetBody and ContentLength; it does not change req.
func (b *Body) Reset(req *http.Request, limit int64) error {
	*b = Body{orig: req.Body, first: req.Body}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		b.kept, b.empty, b.handedOver = true, true, true
		return nil
	case req.GetBody != nil:
		b.getBody = req.GetBody
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
		b.buf, b.kept, b.empty = data, true, len(data) == 0
		b.first = nil
		return nil
	}
	// Too big to keep: send what was read, then the rest, once.
	b.first = readCloser{io.MultiReader(bytes.NewReader(data), req.Body), req.Body}
	return nil
}

// Rewindable reports whether the body can be sent again: to a retry, to a
// fallback upstream, or later from a queue.
func (b *Body) Rewindable() bool { return b.kept || b.getBody != nil }

// Bytes returns the whole body and true when it is kept in memory (an empty
// body is), or nil and false.
func (b *Body) Bytes() ([]byte, bool) { return b.buf, b.kept }

// Consumed reports whether a body that cannot be sent again has gone to a
// try, so that no further try can send it.
func (b *Body) Consumed() bool { return b.tries > 0 && !b.Rewindable() }

// Close closes the caller's body if no try took it: a RoundTripper must
// close a request's body even when it sends nothing. It returns nil.
func (b *Body) Close() error {
	if !b.handedOver && b.orig != nil {
		b.handedOver = true
		b.orig.Close()
	}
	return nil
}

// apply gives out, a request of its own for one try, the body to send.
func (b *Body) apply(out *http.Request) error {
	r, err := b.next()
	if err != nil {
		return err
	}
	out.Body = r
	switch {
	case b.empty:
		out.ContentLength, out.GetBody, out.TransferEncoding = 0, nil, nil
	case b.kept:
		out.ContentLength, out.TransferEncoding = int64(len(b.buf)), nil // the length is known now
		out.GetBody = b.rewindFunc()
	default:
		out.GetBody = b.getBody // nil for a body that streams once
	}
	return nil
}

// next returns the body for the next try.
func (b *Body) next() (io.ReadCloser, error) {
	b.tries++
	switch {
	case b.empty:
		return http.NoBody, nil
	case b.kept:
		return io.NopCloser(bytes.NewReader(b.buf)), nil
	case b.tries == 1:
		b.handedOver = true
		return b.first, nil
	case b.getBody != nil:
		return b.getBody()
	}
	return nil, ErrBodyNotRewindable
}

// sendsAsIs reports whether the next try may send req as it is: it has no
// body, or it is the first try and req's body is the caller's, which that
// try takes.
func (b *Body) sendsAsIs(req *http.Request) bool {
	if b.empty {
		return req.Body == nil || req.Body == http.NoBody
	}
	return b.tries == 0 && !b.kept && b.first == req.Body
}

// take counts a try that sends the request's own body (see sendsAsIs).
func (b *Body) take() {
	b.tries++
	if !b.empty {
		b.handedOver = true
	}
}

// rewindFunc is the GetBody of a kept body, so that net/http can rewind on
// its own (it does, on a dead reused connection).
func (b *Body) rewindFunc() func() (io.ReadCloser, error) {
	buf := b.buf
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
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

// detachedBody is the body of an answer whose request runs under a context
// of its own (see Attempter.Attempt): closing it ends that context, and,
// for an answer still bound to the try's context, stops watching it.
type detachedBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
	stop   func() bool // nil once the answer is released from the try
}

func (b *detachedBody) Close() error {
	if b.stop != nil {
		b.stop()
	}
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// detachedRWBody is detachedBody for the read-write body of a 101 Switching
// Protocols response, which callers type-assert to io.Writer.
type detachedRWBody struct {
	detachedBody
	w io.Writer
}

func (b *detachedRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

func detach(body io.ReadCloser, cancel context.CancelCauseFunc, stop func() bool) io.ReadCloser {
	if rw, ok := body.(io.ReadWriteCloser); ok {
		return &detachedRWBody{detachedBody{rw, cancel, stop}, rw}
	}
	return &detachedBody{body, cancel, stop}
}
