// Package testenv lets tests depend on programs installed on the machine
// (chromium, redis-server): such a test is skipped where the program is
// missing, unless the environment asks for every test to run.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAllEnv is the environment variable that, set to "1", turns the
// skip of a test whose tool is missing into a failure: CI sets it so that
// a missing install cannot pass for a green run.
const RequireAllEnv = "SLUICE_REQUIRE_ALL"

// RequireTool returns the path of the program name, looked up in PATH. If
// there is none, it skips the test with "<name> not found: <installHint>",
// or fails it if RequireAllEnv is "1".
func RequireTool(t testing.TB, name, installHint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not found: " + installHint
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatal(msg + " (" + RequireAllEnv + "=1)")
		return ""
	}
	t.Skip(msg)
	return ""
}
