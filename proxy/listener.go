package proxy

import (
	"net"
	"sync"
)

// limitListener caps the connections a listener has open: Accept waits,
// leaving further connections in the kernel's backlog, until an accepted
// one is closed. Waiting rather than closing the connections over the cap
// lets a burst of clients be served a moment later instead of failing; the
// server's idle, header and body timeouts make sure the connections that
// hold the slots are doing something.
type limitListener struct {
	net.Listener
	slots chan struct{} // one element per open connection
	done  chan struct{} // closed by Close: Accept stops waiting
	once  sync.Once
}

// limitConns returns ln capped at n open connections, or ln itself when n
// is not positive.
func limitConns(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and ends a waiting Accept.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when it is first closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes a TCP connection, as net/http does before closing
// one whose request body it did not read, so that the client reads the
// answer instead of a reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
