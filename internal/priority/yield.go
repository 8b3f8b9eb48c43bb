package priority

import (
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// A child process starts with the nice value of the thread that forked it
// (Linux keeps it per thread). Once Yield has lowered this process's
// threads, an unprivileged process cannot raise them again, so the tools
// it starts later would inherit the lowered priority. The launcher is one
// OS thread, locked before anything is lowered and never lowered itself,
// from which Start forks: every tool starts at the process's own priority.
type launcher struct {
	tid  int
	reqs chan func()
}

var theLauncher = sync.OnceValue(func() *launcher {
	l := &launcher{reqs: make(chan func())}
	ready := make(chan int)
	go func() {
		// Never unlocked: the thread lives as long as the process.
		runtime.LockOSThread()
		ready <- syscall.Gettid()
		for f := range l.reqs {
			f()
		}
	}()
	l.tid = <-ready
	return l
})

// Start starts cmd from the launcher thread, at this process's own
// priority whatever Yield has done to its other threads.
func Start(cmd *exec.Cmd) error {
	l := theLauncher()
	done := make(chan error, 1)
	l.reqs <- func() { done <- cmd.Start() }
	return <-done
}

// Yield sets the nice value of every thread of this process but the
// launcher's to the process's own plus by (at most 19), so that a tool
// started with Start gets the CPU first when the two compete for one.
// Threads the Go runtime makes later inherit the priority of the thread
// that makes them, a lowered one but for the few the runtime makes on the
// launcher's behalf; calling Yield again lowers those too. A by of 0 or
// less does nothing.
func Yield(by int) error {
	if by <= 0 {
		return nil
	}
	l := theLauncher()
	base, err := niceOf(l.tid)
	if err != nil {
		return fmt.Errorf("read the launcher thread's nice value: %w", err)
	}
	nice := min(base+by, 19)
	err = eachThread(func(tid int) error {
		if tid == l.tid {
			return nil
		}
		return syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
	})
	if err != nil {
		return fmt.Errorf("set nice %d: %w", nice, err)
	}
	return nil
}

// niceOf returns the nice value of thread tid.
func niceOf(tid int) (int, error) {
	// getpriority(2) returns 20-nice through the raw syscall.
	r, _, errno := syscall.Syscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, uintptr(tid), 0)
	if errno != 0 {
		return 0, errno
	}
	return 20 - int(r), nil
}
