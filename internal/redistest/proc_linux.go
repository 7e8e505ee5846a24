package redistest

import (
	"os/exec"
	"syscall"
)

// setParentDeath asks the kernel to kill the server if the test binary dies
// before its cleanup runs, so that no redis-server outlives a crashed test.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// The signals of Pause and Resume.
var stopSignal, contSignal = syscall.SIGSTOP, syscall.SIGCONT
