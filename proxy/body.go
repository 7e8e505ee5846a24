package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
)

// hasBody reports whether r may have a body to read.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// clientBody is a client's request body as the exchange gives it to
// sluicehttp.Body: it notes a read that hit the read deadline of
// body_timeout (a streamed body is read by the transport while a try runs,
// where the exchange does not see the error), and its Close does nothing,
// since the server owns the body (net/http's Close of a server body would
// read on, up to 256 KiB, from a client that may be trickling it).
type clientBody struct {
	r        io.Reader
	timedOut *atomic.Bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && isTimeout(err) {
		b.timedOut.Store(true)
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }
