// Package tuning sets up the process of a data command (a backup or
// restore step, a repository command): how much of its cgroup's memory the
// Go runtime may use, the CPU and I/O priorities its step asks for, and the
// opt-in aids for performance work. Other commands (the operator, the
// planner, kubectl stash) run as Go runs them.
package tuning

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/stash-backup/stash/internal/cgroup"
	"github.com/stash-backup/stash/internal/priority"
)

// Start tunes this process for a data command. The returned stop ends
// what Start began (a CPU profile, the resource usage report) and is to be
// called once the command is done, whatever its outcome.
//
//   - GOMEMLIMIT, unless the environment sets it, becomes 70 % of the
//     cgroup's memory limit (SetMemoryLimit).
//   - NICE_ADJUSTMENT, IONICE_CLASS and IONICE_CLASS_DATA (a step's
//     runtimeSettings.container.nice and ionice) are applied.
//   - STASH_CPUPROFILE=file profiles the command, STASH_RUSAGE=file writes
//     its CPU time, page faults and peak RSS at the end.
func Start() (stop func(), err error) {
	SetMemoryLimit()
	if err := priority.FromEnv(); err != nil {
		return nil, err
	}
	profiling := false
	if path := os.Getenv("STASH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("STASH_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("STASH_CPUPROFILE: %w", err)
		}
		profiling = true
	}
	return func() {
		if profiling {
			pprof.StopCPUProfile()
		}
		if path := os.Getenv("STASH_RUSAGE"); path != "" {
			_ = WriteRusage(path)
		}
	}, nil
}

// SetMemoryLimit makes the Go runtime collect harder as the process nears
// its cgroup's memory limit, unless GOMEMLIMIT says otherwise: a step in a
// pod with a limit is then slowed by the collector rather than killed by
// the kernel. 70 % leaves room for memory the collector does not count
// (stacks, the runtime's own) and for the page cache of the files a step
// reads and writes, which the kernel charges to the same cgroup.
func SetMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, ok := cgroup.MemoryLimit(); ok {
		debug.SetMemoryLimit(limit / 10 * 7)
	}
}
