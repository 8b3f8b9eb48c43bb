//go:build !linux

package dump

import "os/exec"

func start(cmd *exec.Cmd) error { return cmd.Start() }

// yieldCPU does nothing where nice values are per process rather than per
// thread: the children would take the lower priority too.
func yieldCPU(int) {}
