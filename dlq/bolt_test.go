package dlq_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sluice-go/sluice"
	"github.com/sluice-go/sluice/dlq"
	"github.com/sluice-go/sluice/dlq/dlqtest"
)

func TestBoltConformance(t *testing.T) {
	dlqtest.RunConformance(t, func(t *testing.T, clock sluice.Clock) dlq.Store {
		path := filepath.Join(t.TempDir(), "dlq.db")
		s, err := dlq.OpenBolt(path, dlq.Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the suite's Close, so it runs after it: the file
		// the test left must reopen and pass a full check.
		t.Cleanup(func() { reopenAndVerify(t, path) })
		return s
	})
}

// reopenAndVerify opens the file at path and runs Verify on it.
func reopenAndVerify(t *testing.T, path string) {
	t.Helper()
	s, err := dlq.OpenBolt(path, dlq.Options{})
	if err != nil {
		t.Errorf("reopening %s: %v", path, err)
		return
	}
	defer s.Close()
	if err := s.Verify(context.Background()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
