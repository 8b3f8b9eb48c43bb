package local

import "syscall"

// stepProcAttr: the step dies with the thread that started it and leads
// its own process group (runStep).
func stepProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
