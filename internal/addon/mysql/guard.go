package mysql

import (
	"context"
	"os/exec"
	"strings"
	"sync"
)

var sandboxes sync.Map // client path → bool

// hasSandbox reports whether the mysql client at path knows --sandbox
// (MariaDB from 10.5.25, 10.6.18, 10.11.8, 11.0.6 on), asking its --help
// once per process.
func hasSandbox(ctx context.Context, path string) bool {
	if v, ok := sandboxes.Load(path); ok {
		return v.(bool)
	}
	out, err := exec.CommandContext(ctx, path, "--no-defaults", "--help").Output()
	if err != nil {
		return false
	}
	ok := strings.Contains(string(out), "--sandbox")
	sandboxes.Store(path, ok)
	return ok
}

// clientGuardArgs are the client flags that keep a dump from running
// client commands. --binary-mode (MySQL and MariaDB alike) turns off every
// client command but charset and delimiter for piped input; --sandbox,
// where the client has it, refuses those that reach the file system
// (\!, source, tee, pager) even so. Neither changes how the SQL of a dump
// runs: mysqldump escapes NUL and CR inside strings, which is all
// binary mode reads differently.
func clientGuardArgs(ctx context.Context, client string) []string {
	args := []string{"--binary-mode"}
	if hasSandbox(ctx, client) {
		args = append(args, "--sandbox")
	}
	return args
}
