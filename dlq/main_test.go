package dlq_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as the entry point of the child processes that the crash
// and lock tests start from this same binary (see childMain).
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	goleak.VerifyTestMain(m)
}
