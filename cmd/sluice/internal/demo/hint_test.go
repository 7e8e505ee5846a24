package demo

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The demo tells the user how to run `sluice health` in a form that works
// for them: plain `sluice` when it is on PATH, `go run ./cmd/sluice` when
// the demo itself was started with go run, and otherwise the path of the
// binary that is running.
func TestDemoHintRunsOnThisMachine(t *testing.T) {
	found := func(string) (string, error) { return "/home/u/go/bin/sluice", nil }
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	goRun := filepath.Join("/tmp", "go-build3141592", "b001", "exe", "sluice")
	for _, tc := range []struct {
		rule     string
		lookPath func(string) (string, error)
		exe      string
		exeErr   error
		want     string
	}{
		{"on PATH", found, goRun, nil, "sluice"},
		{"started with go run", missing, goRun, nil, "go run ./cmd/sluice"},
		{"a binary off PATH", missing, "/opt/sluice/bin/sluice", nil, "/opt/sluice/bin/sluice"},
		{"a binary path with a space is quoted for the shell", missing, "/opt/my tools/it's/sluice", nil, `'/opt/my tools/it'\''s/sluice'`},
		{"executable unknown", missing, "", errors.New("no /proc"), "go run ./cmd/sluice"},
	} {
		if got := cliCommand(tc.lookPath, func() (string, error) { return tc.exe, tc.exeErr }); got != tc.want {
			t.Errorf("%s: cliCommand = %q, want %q", tc.rule, got, tc.want)
		}
	}

	// The header uses it: this test binary was built by go test, so
	// unless sluice is installed the hint is the go run form.
	want := "go run ./cmd/sluice"
	if _, err := exec.LookPath("sluice"); err == nil {
		want = "sluice"
	}
	var b strings.Builder
	v := &demoView{d: &session{adminURL: "http://127.0.0.1:9901"}, out: &b}
	v.header()
	for _, line := range []string{"try: " + want + " health --admin http://127.0.0.1:9901", "     " + want + " dlq list --admin http://127.0.0.1:9901"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("the demo's header lacks %q:\n%s", line, b.String())
		}
	}
}
