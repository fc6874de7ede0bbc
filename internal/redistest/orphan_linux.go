package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithTest kills the server if the test process dies first (a panic, a
// timeout), which runs no cleanup. The signal follows the thread that
// started the server; Go ends threads only for goroutines locked to them,
// which tests here do not do.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
