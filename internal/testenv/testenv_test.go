package testenv_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-go/sluice/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder stands in for a testing.TB: it records Skip and Fatal instead of
// ending the goroutine, so RequireTool's decision can be checked.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = args[0].(string) }
func (r *recorder) Fatal(args ...any) { r.fatal = args[0].(string) }

func TestRequireTool(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake tool is a shell script")
	}
	dir := t.TempDir()
	tool := filepath.Join(dir, "sluice-fake-tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)

	for i, tc := range []struct {
		name, require         string
		wantPath, skip, fatal string
	}{
		{"sluice-fake-tool", "", tool, "", ""},
		{"sluice-fake-tool", "1", tool, "", ""},
		{"sluice-missing-tool", "", "", "sluice-missing-tool not found: apt-get install -y it", ""},
		{"sluice-missing-tool", "0", "", "sluice-missing-tool not found: apt-get install -y it", ""},
		{"sluice-missing-tool", "1", "", "", "sluice-missing-tool not found: apt-get install -y it (SLUICE_REQUIRE_ALL=1)"},
	} {
		t.Setenv(testenv.RequireAllEnv, tc.require)
		r := &recorder{TB: t}
		got := testenv.RequireTool(r, tc.name, "apt-get install -y it")
		if got != tc.wantPath || r.skipped != tc.skip || r.fatal != tc.fatal {
			t.Errorf("step %d: RequireTool(%q) with %s=%q = %q, skip %q, fatal %q; want %q, skip %q, fatal %q",
				i, tc.name, testenv.RequireAllEnv, tc.require, got, r.skipped, r.fatal, tc.wantPath, tc.skip, tc.fatal)
		}
	}
}
