package dlq_test

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice/dlq"
)

// crashRounds is the number of kill points: 30 by default (a few seconds),
// more with SLUICE_DLQ_CRASH_ROUNDS.
func crashRounds(t *testing.T) int {
	if v := os.Getenv("SLUICE_DLQ_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SLUICE_DLQ_CRASH_ROUNDS=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 6
	}
	return 30
}

type ack struct{ id, key, sum string }

// TestCrashKeepsAcknowledgedPuts starts a producer in a child process,
// SIGKILLs it at a random moment, reopens the file and checks that every
// Put that had returned is there, intact, and that nothing is duplicated;
// then does it again on the same file, many times.
func TestCrashKeepsAcknowledgedPuts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "crash.db")
	rounds := crashRounds(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var acked []ack
	totalStored, freshAcked := 0, 0
	for round := range rounds {
		// One round in five is killed at a random moment from its start,
		// maybe while opening the file or, every other time, while
		// creating a new one; the others a random time after they began
		// to put.
		early, fresh := round%5 == 0, round%10 == 0
		delay := time.Duration(5_000+rng.IntN(145_000)) * time.Microsecond
		if early {
			delay = time.Duration(rng.IntN(30_000)) * time.Microsecond
		}
		if fresh {
			p := filepath.Join(dir, "fresh-"+strconv.Itoa(round)+".db")
			got := runAndKill(t, p, "f"+strconv.Itoa(round), early, delay)
			checkAfterCrash(t, p, round, got)
			freshAcked += len(got)
			continue
		}
		got := runAndKill(t, path, "r"+strconv.Itoa(round), early, delay)
		acked = append(acked, got...)
		totalStored = checkAfterCrash(t, path, round, acked)
	}
	t.Logf("crash test: %d SIGKILLs; %d acknowledged puts on the shared file (%d messages stored), %d on fresh files; all acknowledged ones intact, no duplicates",
		rounds, len(acked), totalStored, freshAcked)
	if len(acked) == 0 {
		t.Fatal("no Put was acknowledged in any round; the test checked nothing")
	}
}

// runAndKill runs one producer and kills it after delay (counted from the
// start if early, else from its "ready"), returning the acknowledged puts.
func runAndKill(t *testing.T, path, tag string, early bool, delay time.Duration) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=produce", childPathEnv+"="+path, childTagEnv+"="+tag)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acks  []ack
		fails []string
	)
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "ready":
				close(ready)
			case len(f) == 4 && f[0] == "ack":
				mu.Lock()
				acks = append(acks, ack{f[1], f[2], f[3]})
				mu.Unlock()
			default: // a line cut by the kill cannot happen (one write each), errors can
				mu.Lock()
				fails = append(fails, sc.Text())
				mu.Unlock()
			}
		}
	}()
	if !early {
		select {
		case <-ready:
		case <-readDone:
		case <-time.After(30 * time.Second):
			t.Error("child never became ready")
		}
	}
	time.Sleep(delay) // the random kill point, not a wait for anything
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-readDone
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child %s was not killed by the signal: %v", tag, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fails) > 0 {
		t.Fatalf("child %s reported: %v", tag, fails)
	}
	return acks
}

// checkAfterCrash reopens the file and checks every acknowledged put and the
// whole store; it returns the number of stored messages.
func checkAfterCrash(t *testing.T, path string, round int, acked []ack) int {
	t.Helper()
	ctx := context.Background()
	s, err := dlq.OpenBolt(path, dlq.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
	}
	defer s.Close()
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	byKey := map[string]dlq.Message{}
	for after := (dlq.ID{}); ; {
		page, err := s.List(ctx, dlq.Query{Queue: "crash", After: after, Limit: 1000})
		if err != nil {
			t.Fatalf("round %d: List: %v", round, err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			key := m.Headers["key"]
			if prev, dup := byKey[key]; dup {
				t.Fatalf("round %d: key %s stored twice (%s and %s)", round, key, prev.ID, m.ID)
			}
			if payloadSum(m.Payload) != m.Headers["sum"] {
				t.Fatalf("round %d: message %s (%s) damaged: payload does not match its checksum", round, m.ID, key)
			}
			byKey[key] = m
		}
		after = page[len(page)-1].ID
	}
	for _, a := range acked {
		m, ok := byKey[a.key]
		if !ok {
			t.Fatalf("round %d: acknowledged put %s (%s) lost", round, a.key, a.id)
		}
		if m.ID.String() != a.id || m.Headers["sum"] != a.sum {
			t.Fatalf("round %d: acknowledged put %s came back as %s with sum %s, acknowledged as %s with %s",
				round, a.key, m.ID, m.Headers["sum"], a.id, a.sum)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(byKey)); (len(st) == 0 && n != 0) || (len(st) > 0 && st[0].Ready != n) {
		t.Fatalf("round %d: Stats %+v disagree with %d listed messages", round, st, n)
	}
	return len(byKey)
}
