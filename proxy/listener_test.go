package proxy

import (
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// chanListener is a listener whose connections the test hands over, so
// that a synctest bubble can see Accept block.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { close(l.closed); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestLimitListenerHoldsTheCap: with a cap of 2, a third connection is not
// accepted while two are open, and is accepted once one closes; Close ends
// a waiting Accept.
func TestLimitListenerHoldsTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &chanListener{conns: make(chan net.Conn, 3), closed: make(chan struct{})}
		ln := limitConns(inner, 2)
		var accepted atomic.Int32
		got := make(chan net.Conn, 3)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					close(got)
					return
				}
				accepted.Add(1)
				got <- c
			}
		}()
		var peers []net.Conn
		for range 3 {
			a, b := net.Pipe()
			peers = append(peers, b)
			inner.conns <- a
		}
		synctest.Wait()
		if n := accepted.Load(); n != 2 {
			t.Fatalf("accepted %d connections with a cap of 2", n)
		}
		first := <-got
		<-got
		first.Close()
		first.Close() // a second Close gives back nothing more
		synctest.Wait()
		if n := accepted.Load(); n != 3 {
			t.Fatalf("accepted %d connections after one closed, want 3", n)
		}
		synctest.Wait()
		if len(ln.(*limitListener).slots) != 2 {
			t.Errorf("slots in use = %d, want 2", len(ln.(*limitListener).slots))
		}
		ln.Close()
		synctest.Wait()
		for c := range got {
			c.Close()
		}
		for _, p := range peers {
			p.Close()
		}
	})
}
