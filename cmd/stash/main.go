// Command stash is the one binary of Stash: repository CLI, addon steps,
// local runtime and operator.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/stash-backup/stash/internal/cgroup"
	"github.com/stash-backup/stash/internal/cli"
	"github.com/stash-backup/stash/internal/hugepage"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/priority"
)

func main() {
	makeScratchDirs()
	setMemoryLimit()
	if err := priority.FromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "stash:", err)
		os.Exit(1)
	}
	// STASH_CPUPROFILE=file profiles a whole command, for performance work
	// on the binary as users run it.
	if path := os.Getenv("STASH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	if os.Getenv("STASH_HUGEPAGES") == "on" && !isOperator(os.Args) {
		// Opt-in: huge pages make the first touch of fresh memory cheaper
		// on virtual machines, but the kernel's compaction for them can
		// stall other work on a busy node (golang/go#61718). The
		// long-running operator keeps its small heap as it is.
		_, _ = hugepage.Enable(hugepage.DefaultReserve)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stash:", err)
	}
	pprof.StopCPUProfile()
	if path := os.Getenv("STASH_RUSAGE"); path != "" {
		writeRusage(path)
	}
	os.Exit(cli.ExitCode(err))
}

// makeScratchDirs makes the TMPDIR and HOME the planner gives a step
// (plan.StepTempDir, plan.StepHomeDir): the step's root filesystem is
// read-only and the /stash-tmp emptyDir they are on starts empty. The
// first step of a pod makes them for all; the steps may run as different
// users, so they are world-writable and sticky, like /tmp. Only
// directories right under plan.ScratchDir are made: a user's HOME that is
// missing elsewhere is not this binary's to create.
func makeScratchDirs() {
	for _, k := range []string{"TMPDIR", "HOME"} {
		d := os.Getenv(k)
		if d == "" || filepath.Dir(filepath.Clean(d)) != plan.ScratchDir {
			continue
		}
		if err := os.Mkdir(d, 0o777); err == nil {
			// Mkdir's mode passes through the umask; chmod does not.
			_ = os.Chmod(d, os.ModeSticky|0o777)
		}
	}
}

// writeRusage writes the process's own CPU time, minor page faults and
// peak RSS to path (STASH_RUSAGE=file), for performance work: a shell's
// time of a backup adds the dump tool's CPU to stash's, and on a machine
// whose speed swings stash's own CPU is a steadier figure than the wall
// time (hack/bench/db.sh, docs/benchmarks.md).
func writeRusage(path string) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return
	}
	line := fmt.Sprintf("user %.3f system %.3f minflt %d maxrss_kib %d\n",
		float64(ru.Utime.Nano())/1e9, float64(ru.Stime.Nano())/1e9, ru.Minflt, ru.Maxrss)
	_ = os.WriteFile(path, []byte(line), 0o644)
}

// isOperator reports whether the command is `stash operator`: its first
// argument that is neither a flag nor the value of the root's --kubeconfig.
func isOperator(args []string) bool {
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--kubeconfig":
			i++
		case !strings.HasPrefix(a, "-"):
			return a == "operator"
		}
	}
	return false
}

// setMemoryLimit makes the Go runtime collect harder as the process nears
// its cgroup's memory limit, unless GOMEMLIMIT says otherwise: a step in a
// pod with a limit is then slowed by the collector rather than killed by
// the kernel. 70 % leaves room for memory the collector does not count
// (stacks, the runtime's own) and for the page cache of the files a step
// reads and writes, which the kernel charges to the same cgroup.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit, ok := cgroup.MemoryLimit(); ok {
		debug.SetMemoryLimit(limit / 10 * 7)
	}
}
