package galera

import "syscall"

// garbdProcAttr puts garbd in its own process group, killed by the
// kernel if the step dies: garbd never stays in the cluster.
func garbdProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals garbd's process group.
func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
