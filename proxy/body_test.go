package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A client body notes a read that hit body_timeout's deadline, which the
// exchange cannot see when the transport streams the body, and its Close
// leaves the server's body alone.
func TestClientBodyNotesTheDeadline(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	var timedOut atomic.Bool
	b := &clientBody{r: server, timedOut: &timedOut}

	go func() { _, _ = client.Write([]byte("abc")) }()
	p := make([]byte, 3)
	if _, err := io.ReadFull(b, p); err != nil || timedOut.Load() {
		t.Fatalf("a read in time: %v, timed out %v", err, timedOut.Load())
	}
	if err := server.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(p); !errors.Is(err, os.ErrDeadlineExceeded) || !timedOut.Load() {
		t.Errorf("a read past the deadline: %v, timed out %v; want it noted", err, timedOut.Load())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Time{})
	go func() { _, _ = client.Write([]byte("d")) }()
	if _, err := b.Read(p[:1]); err != nil {
		t.Errorf("the server's body after Close: %v; want it untouched", err)
	}
}
