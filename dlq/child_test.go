package dlq_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"

	"github.com/sluice-go/sluice/dlq"
)

// The crash and lock tests start this test binary again as a child process
// with childEnv set; TestMain then runs childMain instead of the tests.
const (
	childEnv     = "SLUICE_DLQ_CHILD"      // the child's mode: "produce" or "hold"
	childPathEnv = "SLUICE_DLQ_CHILD_PATH" // the store file
	childTagEnv  = "SLUICE_DLQ_CHILD_TAG"  // a prefix that makes the child's keys unique
)

func childMain(mode string) int {
	path := os.Getenv(childPathEnv)
	switch mode {
	case "hold":
		return childHold(path)
	case "produce":
		return childProduce(path, os.Getenv(childTagEnv))
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// childHold opens the store, says "locked", and keeps it open until its
// stdin is closed.
func childHold(path string) int {
	s, err := dlq.OpenBolt(path, dlq.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// payloadSum is the checksum a producer stores in the "sum" header.
func payloadSum(p []byte) string {
	h := sha256.Sum256(p)
	return hex.EncodeToString(h[:])
}

// childProduce puts messages from concurrent workers until it is killed.
// After each Put returns, it writes one line "ack <id> <key> <sum>" with one
// write call, so the parent sees exactly the acknowledged puts.
func childProduce(path, tag string) int {
	s, err := dlq.OpenBolt(path, dlq.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex // one line per write, lines never interleaved
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(line)
	}
	say("ready\n")
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), rand.Uint64()))
			for seq := 0; ; seq++ {
				payload := make([]byte, 16+rng.IntN(4096))
				for i := range payload {
					payload[i] = byte(rng.Uint32())
				}
				key := tag + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(seq)
				sum := payloadSum(payload)
				id, err := s.Put(context.Background(), dlq.Message{
					Queue:   "crash",
					Payload: payload,
					Headers: map[string]string{"key": key, "sum": sum},
				})
				if err != nil {
					say("error " + err.Error() + "\n")
					return
				}
				say("ack " + id.String() + " " + key + " " + sum + "\n")
			}
		}()
	}
	wg.Wait()
	return 1
}
