//go:build !linux

package redistest

import (
	"os"
	"os/exec"
)

// setParentDeath does nothing where the kernel offers no parent-death
// signal; the test's cleanup still kills the server.
func setParentDeath(*exec.Cmd) {}

// Pause and Resume need SIGSTOP and SIGCONT; elsewhere they fail the test
// (Process.Signal refuses this placeholder).
var stopSignal, contSignal os.Signal = unsupported{}, unsupported{}

type unsupported struct{}

func (unsupported) String() string { return "SIGSTOP/SIGCONT (unsupported here)" }
func (unsupported) Signal()        {}
