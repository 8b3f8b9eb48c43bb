//go:build linux

// Command pipesink runs a command with its stdout on a 1 MiB pipe and
// discards what it writes, doing nothing else: the floor for any data
// mover in another process, which hack/bench/db.sh compares stash with.
// `| cat` is not that floor: its pipe holds 64 KiB, and a tool writing 1
// MiB at a time then waits for cat 16 times per write (mysqldump took
// 1.13-1.21x its time into /dev/null that way; docs/benchmarks.md).
//
// Usage: pipesink COMMAND [ARG...]; it exits with the command's status.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipesink COMMAND [ARG...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "pipesink: pipe:", err)
		return 2
	}
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, 1<<20); err != nil {
		fmt.Fprintln(os.Stderr, "pipesink: a 1 MiB pipe:", err)
		return 2
	}
	w := os.NewFile(uintptr(fds[1]), "|1")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "pipesink:", err)
		return 2
	}
	w.Close()
	// Blocking reads, as the pipe's read end was made blocking: no poller.
	buf := make([]byte, 1<<20)
	for {
		n, err := syscall.Read(fds[0], buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipesink: read:", err)
			return 2
		}
		if n == 0 {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "pipesink:", err)
		return 2
	}
	return 0
}
