//go:build !linux

package galera

import (
	"os"
	"syscall"
)

// garbdProcAttr: steps run on Linux; elsewhere garbd is killed with the
// step's context only.
func garbdProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
