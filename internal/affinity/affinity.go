// Package affinity keeps this process's threads off the CPU another
// process runs on, for as long as that process is busy.
//
// A backup step streams a dump tool's output into the repository. On a
// node with few CPUs a busy tool such as mysqldump, which computes all the
// time, is the backup's critical path, and part of the data mover's work
// lands on its CPU when left to the kernel (docs/benchmarks.md measures
// it). Rewriting every thread's CPU mask is a process-wide change, so it
// is off unless STASH_AFFINITY=on asks for it (Enabled), and it never
// raises GOMAXPROCS above what Go chose from the pod's CPU quota.
package affinity

import (
	"os"
	"runtime"
	"time"
)

// poll is how often the tool's CPU is read: the kernel moves a busy
// process seldom, and each change costs one system call per thread.
const poll = 5 * time.Millisecond

// idlePolls is how many polls in a row must find the tool asleep before
// the process may use its CPU again: a busy tool sleeps briefly all the
// time (waiting for its server or its pipe), a tool that waits for its
// children (pg_dumpall) sleeps throughout.
const idlePolls = 4

// Enabled says whether STASH_AFFINITY=on asks backup steps to keep off
// their dump tool's CPU.
func Enabled() bool { return os.Getenv("STASH_AFFINITY") == "on" }

// Avoid keeps the calling process off the CPU that process pid runs on
// while pid is busy, until stop is called. The first time it leaves a CPU
// out it pins GOMAXPROCS at its value before (Go would otherwise lower it
// to the CPUs left, and with one processor the goroutine that empties the
// tool's pipe waits behind the chunker); it never raises it. It does
// nothing where the process may use fewer than two CPUs or affinity is not
// supported, and leaves GOMAXPROCS alone where the GOMAXPROCS environment
// variable is set. stop restores the process's CPUs and GOMAXPROCS; call
// it once.
// It changes every thread of the process, so it is for a process that
// runs one step, as every backup step is (locally too, the local runtime
// runs each step as a process of its own).
func Avoid(pid int) (stop func()) {
	all, ok := allowed()
	if !ok || count(all) < 2 {
		return func() {}
	}
	_, fixedProcs := os.LookupEnv("GOMAXPROCS")
	procs := runtime.GOMAXPROCS(0)
	pinned := false // GOMAXPROCS, once a CPU is left out
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		f := follower{all: all, cur: all}
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-done:
				if f.cur != all {
					setAll(all)
				}
				return
			case <-t.C:
			}
			state, cpu, ok := procState(pid)
			if !ok {
				continue
			}
			if want, changed := f.next(state, cpu); changed {
				if !pinned && !fixedProcs && want != all {
					runtime.GOMAXPROCS(procs)
					pinned = true
				}
				setAll(want)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if pinned {
			runtime.SetDefaultGOMAXPROCS()
		}
	}
}

// follower decides, poll by poll, which CPUs the process may use.
type follower struct {
	all, cur cpuSet
	asleep   int // polls in a row that found the tool not running
}

// next returns the CPUs to use after a poll that found the tool in state
// (as /proc/PID/stat gives it: 'R' running or runnable) on cpu, and
// whether that differs from the CPUs in use.
func (f *follower) next(state byte, cpu int) (cpuSet, bool) {
	want := f.cur
	if state == 'R' {
		f.asleep = 0
		want = f.all
		if cpu >= 0 && cpu < len(want)*64 {
			want = without(want, cpu)
		}
		if count(want) == 0 {
			want = f.all
		}
	} else {
		f.asleep++
		if f.asleep >= idlePolls {
			want = f.all
		}
	}
	if want == f.cur {
		return f.cur, false
	}
	f.cur = want
	return want, true
}
