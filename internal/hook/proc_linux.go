package hook

import (
	"os/exec"
	"runtime"
	"syscall"
)

// runCommand runs an exec hook so that it dies with its step: the local
// runtime kills its steps when it dies (parent-death signal), and a hook
// command left behind would go on running what was meant to run inside a
// session. The signal is tied to the thread that started the command, so
// that thread is kept until the command is reaped.
func runCommand(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Run()
}
