//go:build !linux

package hook

import "os/exec"

// runCommand runs an exec hook; only Linux has a parent-death signal.
func runCommand(cmd *exec.Cmd) error { return cmd.Run() }
