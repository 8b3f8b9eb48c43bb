//go:build !linux

package galera

import (
	"os"
	"syscall"
)

// garbdProcAttr: steps run on Linux; elsewhere garbd is killed with the
// step's context only.
func garbdProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup signals garbd alone.
func signalGroup(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}
