// Package redistest starts real redis-server processes for tests: each on a
// free loopback port with its own data directory, stopped when the test
// ends. Tests of the Redis-backed stores use it instead of a mock, and kill
// and restart the server to test what happens when Redis goes away.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-go/sluice/internal/testenv"
)

// InstallHint is what a test without redis-server is skipped with.
const InstallHint = "install redis-server (Debian package redis-server)"

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING.
const startTimeout = 10 * time.Second

// Option changes how Start runs the server.
type Option func(*config)

type config struct {
	fsync string
	args  []string
}

// AppendFsync sets the server's appendfsync policy: "always" (the default,
// so that a write Redis acknowledged survives a SIGKILL), "everysec" or
// "no".
func AppendFsync(policy string) Option { return func(c *config) { c.fsync = policy } }

// Args adds command-line arguments (such as "--maxmemory", "1mb") after the
// ones Start passes; a later argument wins.
func Args(args ...string) Option { return func(c *config) { c.args = append(c.args, args...) } }

// Server is a running redis-server owned by one test.
type Server struct {
	t    testing.TB
	path string
	dir  string
	conf string // a config file to start with, before the arguments (Sentinel)
	args []string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *os.File
}

// Start starts a redis-server for t and returns once it answers PING. It
// skips t when redis-server is not installed (fails it under
// SLUICE_REQUIRE_ALL=1). The server listens on 127.0.0.1 at a free port,
// keeps no RDB snapshot, keeps an append-only file in a directory of
// t.TempDir() with appendfsync always, and is killed when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	path := testenv.RequireTool(t, "redis-server", InstallHint)
	c := config{fsync: "always"}
	for _, o := range opts {
		o(&c)
	}
	s := &Server{t: t, path: path, dir: t.TempDir()}
	s.args = append([]string{"--appendonly", "yes", "--appendfsync", c.fsync}, c.args...)
	return s.launch()
}

// launch starts s on a free port, retrying when another process took the
// port first, and has it killed when the test ends.
func (s *Server) launch() *Server {
	t := s.t
	t.Helper()
	t.Cleanup(func() { s.kill() })
	var err error
	for range 5 { // another process may take the free port before redis binds it
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the server on s.port and waits until it answers PING, or
// fails (killing it) after startTimeout or when it exits.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	var args []string
	if s.conf != "" {
		args = []string{s.conf, "--sentinel"}
	}
	args = append(append(args,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--dir", s.dir, "--daemonize", "no", "--protected-mode", "yes",
	), s.args...)
	cmd := exec.Command(s.path, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		logs.Close()
		return fmt.Errorf("starting %s: %w", s.path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logs.Close(); close(done) }()
	s.cmd, s.done, s.logs = cmd, done, logs
	if err := waitReady(s.addr(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		s.cmd = nil
		return fmt.Errorf("redis-server on port %d: %w; log:\n%s", s.port, err, s.Log())
	}
	return nil
}

// waitReady polls addr with PING until the answer is PONG (not LOADING),
// the process exits (done is closed), or startTimeout passes.
func waitReady(addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for backoff := time.Millisecond; time.Now().Before(deadline); backoff = min(2*backoff, 50*time.Millisecond) {
		if last = ping(addr); last == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited before answering PING (last: %v)", last)
		case <-time.After(backoff):
		}
	}
	return fmt.Errorf("no PONG within %v (last: %v)", startTimeout, last)
}

// ping sends one PING on a fresh connection and checks for +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return errors.New(line)
	}
	return nil
}

func (s *Server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Addr is the server's host:port. It stays the same across Restart.
func (s *Server) Addr() string { return s.addr() }

// URL is the server's address as a redis:// URL.
func (s *Server) URL() string { return "redis://" + s.addr() }

// Dir is the server's data directory (its append-only file and log).
func (s *Server) Dir() string { return s.dir }

// Log returns what the server has written to its log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// has exited: nothing is flushed that appendfsync had not already written.
// Killing a server that is not running does nothing.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: connections stay open and nothing
// answers, as with a Redis that hangs or a network path that drops packets.
// Resume continues it; a paused server is still killed when the test ends.
func (s *Server) Pause() { s.signal(stopSignal) }

// Resume continues a server stopped by Pause.
func (s *Server) Resume() { s.signal(contSignal) }

func (s *Server) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %v to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Running reports whether the server process is up (it may not have been
// killed by Kill: a server that exited by itself is not running either).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Restart starts the server again on the same port and data directory,
// after a Kill (or kills it first), and returns once it answers PING: it
// has reloaded its append-only file by then. It fails the test if the
// server does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	var err error
	for range 50 { // the old socket may linger for a moment
		if err = s.start(); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// Client returns a go-redis client for the server, closed when the test
// ends. It honours context deadlines (ContextTimeoutEnabled), as the
// clients of the Redis-backed stores must. Each call returns a new client with its own connection pool, as a
// separate instance of the program would have.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), DisableIdentity: true, ContextTimeoutEnabled: true})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Flush empties every database of the server, for tests that share one
// server and need a clean slate.
func (s *Server) Flush() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.addr(), DisableIdentity: true})
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil {
		s.t.Fatalf("redistest: FLUSHALL: %v", err)
	}
}
