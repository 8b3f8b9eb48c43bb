//go:build unix && !linux

package local

import "syscall"

// stepProcAttr: the step leads its own process group (runStep). Only Linux
// can have the kernel kill it when the runtime dies; elsewhere a killed
// runtime may leave a step running to its end.
func stepProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
