package galera

import "syscall"

// garbdProcAttr puts garbd in its own process group, killed by the
// kernel if the step dies: garbd never stays in the cluster.
func garbdProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
