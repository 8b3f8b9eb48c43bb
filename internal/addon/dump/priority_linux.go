package dump

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// launcher is a goroutine locked to an OS thread that keeps the priority
// the process started with, from which every tool and client is started:
// a child takes the nice value of the thread that forks it, and the other
// threads yield (yieldCPU). Go never makes new threads by cloning a locked
// one (it asks its template thread instead), so the launcher's priority
// reaches no thread but itself and the children it starts.
type launcher struct {
	tid  int
	reqs chan func()
}

var theLauncher = sync.OnceValue(func() *launcher {
	l := &launcher{reqs: make(chan func())}
	ready := make(chan int)
	go func() {
		// Never unlocked: the goroutine serves the process's whole life.
		runtime.LockOSThread()
		ready <- syscall.Gettid()
		for f := range l.reqs {
			f()
		}
	}()
	l.tid = <-ready
	return l
})

// start starts cmd from the launcher's thread.
func start(cmd *exec.Cmd) error {
	l := theLauncher()
	errc := make(chan error, 1)
	l.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

var yielded sync.Once

// yieldCPU raises the nice value of every thread of the process but the
// launcher's by inc (to at most 19), once per process. Threads made
// afterwards inherit it from the thread that makes them. Errors are
// ignored: a thread that keeps its priority only costs speed.
func yieldCPU(inc int) {
	if inc == 0 {
		return
	}
	yielded.Do(func() {
		keep := theLauncher().tid
		// The raw system call returns 20 - nice.
		raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, keep)
		if err != nil {
			return
		}
		nice := min(20-raw+inc, 19)
		done := map[int]bool{}
		// A thread made while a pass runs may have been cloned from one not
		// yet reniced; a pass that finds no new thread ends it.
		for pass := 0; pass < 10; pass++ {
			ents, err := os.ReadDir("/proc/self/task")
			if err != nil {
				return
			}
			fresh := false
			for _, e := range ents {
				tid, err := strconv.Atoi(e.Name())
				if err != nil || tid == keep || done[tid] {
					continue
				}
				fresh = true
				done[tid] = true
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			}
			if !fresh {
				return
			}
		}
	})
}
