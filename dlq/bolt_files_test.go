package dlq_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-go/sluice/dlq"
)

func openBolt(t *testing.T, path string, opt dlq.Options) *dlq.Bolt {
	t.Helper()
	s, err := dlq.OpenBolt(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenBoltValidatesOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	for _, tc := range []struct {
		opt  dlq.Options
		want string
	}{
		{dlq.Options{LockTimeout: -1}, "dlq: Options.LockTimeout must be >= 0, got -1ns"},
		{dlq.Options{MaxMessageBytes: -1}, "dlq: Options.MaxMessageBytes must be between 0 and 1073741824, got -1"},
		{dlq.Options{MaxMessageBytes: 2 << 30}, "dlq: Options.MaxMessageBytes must be between 0 and 1073741824, got 2147483648"},
		{dlq.Options{MaxBatchSize: -3}, "dlq: Options.MaxBatchSize must be >= 0, got -3"},
		{dlq.Options{MaxBatchDelay: -time.Millisecond}, "dlq: Options.MaxBatchDelay must be >= 0, got -1ms"},
	} {
		if _, err := dlq.OpenBolt(path, tc.opt); err == nil || err.Error() != tc.want {
			t.Errorf("OpenBolt(%+v) = %v, want %q", tc.opt, err, tc.want)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid Options created the file: %v", err)
	}
}

func TestBoltSizeLimits(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, filepath.Join(t.TempDir(), "x.db"), dlq.Options{MaxMessageBytes: 1000, MaxQueueMessages: 3, MaxQueueBytes: 2000})

	_, err := s.Put(ctx, dlq.Message{Queue: "q", Payload: make([]byte, 1000)})
	if !errors.Is(err, dlq.ErrTooLarge) || !strings.Contains(err.Error(), "over Options.MaxMessageBytes (1000)") {
		t.Fatalf("Put of 1000 payload bytes: %v, want ErrTooLarge", err)
	}
	for i := range 3 {
		mustPut(t, s, dlq.Message{Queue: "q", Payload: []byte{byte(i)}})
	}
	_, err = s.Put(ctx, dlq.Message{Queue: "q"})
	if !errors.Is(err, dlq.ErrQueueFull) || !strings.Contains(err.Error(), `queue "q" holds 3 messages, Options.MaxQueueMessages is 3`) {
		t.Fatalf("fourth Put: %v, want ErrQueueFull by count", err)
	}
	mustPut(t, s, dlq.Message{Queue: "other"}) // limits are per queue

	// Bytes: two messages of ~900 bytes fit in 2000, a third does not.
	for i := range 2 {
		mustPut(t, s, dlq.Message{Queue: "big", Payload: make([]byte, 900+i)})
	}
	_, err = s.Put(ctx, dlq.Message{Queue: "big", Payload: make([]byte, 900)})
	if !errors.Is(err, dlq.ErrQueueFull) || !strings.Contains(err.Error(), "Options.MaxQueueBytes (2000)") {
		t.Fatalf("Put past MaxQueueBytes: %v, want ErrQueueFull by bytes", err)
	}
	st, _ := s.Stats(ctx)
	if st[0].Queue != "big" || st[0].Bytes < 1800 || st[0].Bytes > 2000 {
		t.Fatalf("Stats = %+v, want big holding its two messages' bytes", st)
	}

	// Freeing room makes Put work again.
	if _, err := s.Purge(ctx, dlq.PurgeFilter{Queue: "q"}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, dlq.Message{Queue: "q"})
}

func TestBoltQueueFullInsideABatch(t *testing.T) {
	// Puts refused for a full queue do not fail the puts committed in the
	// same batch, and exactly the limit is stored.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	s := openBolt(t, path, dlq.Options{MaxQueueMessages: 10, MaxBatchDelay: 5 * time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(ctx, dlq.Message{Queue: "q"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, dlq.ErrQueueFull):
				full++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || full != 30 {
		t.Fatalf("%d stored, %d refused; want 10 and 30", ok, full)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBoltGroupCommitBatches(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		// With a long MaxBatchDelay the writer waits for a full batch:
		// ten puts commit together at once, five wait out the delay.
		s, err := dlq.OpenBolt(filepath.Join(dir, "x.db"), dlq.Options{MaxBatchSize: 10, MaxBatchDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		putAll := func(n int) time.Duration {
			start := time.Now()
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Put(context.Background(), dlq.Message{Queue: "q"}); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			return time.Since(start)
		}
		if d := putAll(10); d != 0 {
			t.Fatalf("a full batch waited %v, want 0", d)
		}
		if d := putAll(5); d != time.Hour {
			t.Fatalf("a partial batch waited %v, want MaxBatchDelay", d)
		}
	})
}

func TestBoltCloseDrainsPendingPuts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := dlq.OpenBolt(path, dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stored []dlq.ID
	start := make(chan struct{})
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id, err := s.Put(ctx, dlq.Message{Queue: "q"})
			switch {
			case err == nil:
				mu.Lock()
				stored = append(stored, id)
				mu.Unlock()
			case !errors.Is(err, dlq.ErrClosed):
				t.Error(err)
			}
		}()
	}
	close(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openBolt(t, path, dlq.Options{})
	for _, id := range stored {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("Put %s returned before Close but is not stored: %v", id, err)
		}
	}
	if all, _ := s.List(ctx, dlq.Query{Limit: 100}); len(all) != len(stored) {
		t.Fatalf("%d stored after reopening, %d puts succeeded", len(all), len(stored))
	}
}

func TestBoltRejectsGarbageFile(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 100, 4096, 8192, 64 << 10} {
		path := filepath.Join(dir, fmt.Sprintf("garbage-%d.db", size))
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := dlq.OpenBolt(path, dlq.Options{})
		if !errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("OpenBolt(%d bytes of garbage) = %v, want ErrCorrupt naming the file", size, err)
		}
	}
	path := filepath.Join(dir, "text.db")
	_ = os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 1000), 0o600)
	if _, err := dlq.OpenBolt(path, dlq.Options{}); !errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt(text file) = %v, want ErrCorrupt naming the file", err)
	}
}

// An existing 0-byte file is damage, never a new queue: sluice creates a
// store whole (see TestBoltCreatesFileWhole), so opening one must refuse it
// and say what to do, leave it as it was, and a missing file is still created.
func TestBoltRefusesEmptyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := dlq.OpenBolt(path, dlq.Options{})
	want := "dlq: store file corrupt or unreadable: " + path + " is empty (0 bytes): sluice never writes an empty queue file, so it was damaged; move it away to start a new queue"
	if !errors.Is(err, dlq.ErrCorrupt) || err.Error() != want {
		t.Fatalf("OpenBolt(0-byte file) = %v\nwant ErrCorrupt: %s", err, want)
	}
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Fatalf("the refused file was changed: %v, %v", info, err)
	}
	missing := filepath.Join(dir, "new.db")
	s := openBolt(t, missing, dlq.Options{})
	mustPut(t, s, dlq.Message{Queue: "q"})
}

func TestBoltRejectsOtherBboltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err })
	_ = db.Close()
	_, err = dlq.OpenBolt(path, dlq.Options{})
	if !errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), "not a sluice DLQ file") || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenBolt(another bbolt file) = %v", err)
	}
}

func TestBoltOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	_, err := dlq.OpenBolt(path, dlq.Options{})
	if err == nil || errors.Is(err, dlq.ErrCorrupt) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenBolt in a missing directory = %v, want a not-exist error naming the file", err)
	}
}

// fillFile writes a store of a few hundred kilobytes and returns its size.
func fillFile(t *testing.T, path string) int64 {
	t.Helper()
	s, err := dlq.OpenBolt(path, dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if _, err := s.Put(context.Background(), dlq.Message{Queue: fmt.Sprintf("q%d", w%3), Payload: bytes.Repeat([]byte{byte(i)}, 1000+i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	_ = s.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// exercise runs every read and a write on an opened store, returning how
// many messages it listed and the first error; it must never panic.
func exercise(s *dlq.Bolt) (int, error) {
	ctx := context.Background()
	var errs []error
	if err := s.Verify(ctx); err != nil {
		errs = append(errs, err)
	}
	n := 0
	for after := (dlq.ID{}); ; {
		page, err := s.List(ctx, dlq.Query{After: after, Limit: 50})
		if err != nil || len(page) == 0 {
			errs = append(errs, err)
			break
		}
		n += len(page)
		after = page[len(page)-1].ID
	}
	_, err := s.Stats(ctx)
	errs = append(errs, err)
	_, err = s.Put(ctx, dlq.Message{Queue: "q0", Payload: []byte("after damage")})
	errs = append(errs, err)
	_, err = s.ClaimAt(ctx, "q1", time.Now(), time.Minute, 100)
	errs = append(errs, err)
	return n, errors.Join(errs...)
}

func TestBoltTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	size := fillFile(t, orig)
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	const stored = 8 * 40 // what fillFile puts
	// bbolt grows the file ahead of its data, so cuts near the end may
	// remove only unused space; those must open with every message intact.
	for _, cut := range []int64{10, 4095, 4096, 8191, 8192, 12288, size / 3, size / 2, size - 4096, size - 1} {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d.db", cut))
		if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := dlq.OpenBolt(path, dlq.Options{})
		if err != nil {
			if !errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("cut at %d of %d: %v, want ErrCorrupt naming the file", cut, size, err)
			}
			continue
		}
		n, err := exercise(s)
		_ = s.Close()
		switch {
		case err != nil && (!errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), path)):
			t.Errorf("cut at %d of %d: %v, want nil or ErrCorrupt naming the file", cut, size, err)
		case err == nil && n != stored:
			t.Errorf("cut at %d of %d opened cleanly with %d of %d messages: silent loss", cut, size, n, stored)
		}
	}
}

func TestBoltDamagedPages(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	size := fillFile(t, orig)
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	detected := 0
	const trials = 8
	for trial := range trials {
		b := bytes.Clone(data)
		if trial%2 == 0 {
			// Scribble over a few runs of bytes past the two meta pages:
			// mostly records, which their checksums catch.
			for range 1 + trial%4 {
				off := 8192 + rng.Int64N(size-8192-64)
				for i := range 1 + rng.IntN(64) {
					b[off+int64(i)] = byte(rng.Uint32())
				}
			}
		} else {
			// Scribble over page headers: bbolt's own structure, where
			// it panics (recovered into ErrCorrupt).
			for p := int64(2); p*4096 < size; p++ {
				if rng.IntN(3) == 0 {
					for i := range int64(16) {
						b[p*4096+i] = byte(rng.Uint32())
					}
				}
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("damaged-%d.db", trial))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := dlq.OpenBolt(path, dlq.Options{})
		if err == nil {
			_, err = exercise(s)
			_ = s.Close()
		}
		if err == nil {
			continue // scribbled over free space
		}
		if !errors.Is(err, dlq.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("trial %d: %v, want ErrCorrupt naming the file", trial, err)
		}
		detected++
	}
	if detected == 0 {
		t.Errorf("none of %d damaged files was detected", trials)
	}
}

func TestBoltSecondOpenInProcessIsInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	s := openBolt(t, path, dlq.Options{})
	start := time.Now()
	_, err := dlq.OpenBolt(path, dlq.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, dlq.ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open = %v, want ErrInUse naming the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v to give up", d)
	}
	_ = s.Close()
	s2 := openBolt(t, path, dlq.Options{LockTimeout: 100 * time.Millisecond})
	_ = s2.Close()
}

func TestBoltOpenHeldByAnotherProcessIsInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=hold", childPathEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	start := time.Now()
	_, err = dlq.OpenBolt(path, dlq.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, dlq.ErrInUse) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "200ms") {
		t.Fatalf("open while another process holds the file = %v, want ErrInUse naming the file and the wait", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	_ = stdin.Close() // the child closes the store and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s := openBolt(t, path, dlq.Options{LockTimeout: 200 * time.Millisecond})
	_ = s.Close()
}

func TestBoltCreatesFileWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	s := openBolt(t, path, dlq.Options{FileMode: 0o640})
	_ = s.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "x.db" {
		t.Fatalf("directory holds %v, want only x.db (no temporary file left)", entries)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", info.Mode().Perm(), err)
	}
	// Reopening an existing file does not create anything.
	s = openBolt(t, path, dlq.Options{})
	_ = s.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("reopening left %v", entries)
	}
}
