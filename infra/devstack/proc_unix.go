//go:build unix

package devstack

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the function in a process group of its own, so Ctrl-C in the
// terminal reaches the dev stack, which then stops its functions in order.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) { _ = cmd.Process.Signal(syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
