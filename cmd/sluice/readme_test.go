package main

import (
	"os"
	"strings"
	"testing"

	"github.com/sluice-go/sluice/internal/testenv"
)

// The README's install line names this module's command, and its note on
// tests names the variable the test helpers read.
func TestReadmeInstallAndTestNotes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := strings.TrimPrefix(strings.SplitN(string(mod), "\n", 2)[0], "module ")
	for _, want := range []string{
		"go install ./cmd/sluice",
		"go install " + module + "/cmd/sluice@latest",
		"go run ./cmd/sluice demo",
		"go test -race ./...",
		"(cd test/browser && go test -race ./...)",
		testenv.RequireAllEnv + "=1",
	} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
}
