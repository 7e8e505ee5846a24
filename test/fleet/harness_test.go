package fleet_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// instance is one `sluice serve` process.
type instance struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	proxy string // http://127.0.0.1:port
	admin string
	mu    sync.Mutex
	log   bytes.Buffer
	done  chan struct{} // closed when the process has exited
}

var servingRE = regexp.MustCompile(`msg="sluice serving".* proxy=(http://\S+) admin=(http://\S+)`)

// startInstance writes cfg to a file and runs `sluice serve` on it until
// the test ends, returning once the process has logged its addresses.
func startInstance(t *testing.T, name, cfg string) *instance {
	t.Helper()
	needBinary(t)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, name: name, done: make(chan struct{})}
	in.cmd = exec.Command(bin, "serve", "--config", path)
	in.cmd.Dir = t.TempDir()
	stderr, err := in.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan []string, 1)
	go in.readLog(stderr, addrs)
	t.Cleanup(in.stop)
	select {
	case m := <-addrs:
		in.proxy, in.admin = m[0], m[1]
	case <-in.done:
		t.Fatalf("%s exited before serving:\n%s", name, in.logs())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not start within 15s:\n%s", name, in.logs())
	}
	return in
}

// readLog copies the process's log into in.log and sends the addresses of
// its "sluice serving" line.
func (in *instance) readLog(r io.Reader, addrs chan<- []string) {
	defer close(in.done)
	defer in.cmd.Wait() //nolint:errcheck // the exit status is the test's to judge from the log
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		in.mu.Lock()
		in.log.WriteString(line + "\n")
		in.mu.Unlock()
		if m := servingRE.FindStringSubmatch(line); m != nil && !sent {
			addrs <- m[1:]
			sent = true
		}
	}
}

func (in *instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.log.String()
}

// mark returns the length of the log so far, for waitLogSince.
func (in *instance) mark() int { return len(in.logs()) }

// waitLog waits until the log holds want, at most limit.
func (in *instance) waitLog(want string, limit time.Duration) bool {
	return in.waitLogSince(0, want, limit)
}

// waitLogSince waits until the log after its first mark bytes holds want,
// at most limit.
func (in *instance) waitLogSince(mark int, want string, limit time.Duration) bool {
	has := func() bool { return strings.Contains(in.logs()[mark:], want) }
	deadline := time.Now().Add(limit)
	for !has() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-in.done:
			return has()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (in *instance) kill() {
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits.
func (in *instance) stop() {
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		in.t.Errorf("%s did not stop on SIGTERM", in.name)
		in.kill()
	}
}

// client is an HTTP client with a short bound on each request, so that a
// request that hangs fails the test instead of stalling it.
func newClient(limit time.Duration) *http.Client {
	return &http.Client{Timeout: limit, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// waitFor polls cond until it holds, at most limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}
