// Command stash is the one binary of Stash: repository CLI, addon steps,
// local runtime and operator.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/stash-backup/stash/internal/cli"
	"github.com/stash-backup/stash/internal/hugepage"
	"github.com/stash-backup/stash/internal/priority"
)

func main() {
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
	if os.Getenv("STASH_HUGEPAGES") != "off" && !isOperator(os.Args) {
		// Backups and restores touch a few hundred MiB of fresh memory;
		// the long-running operator keeps its small heap as it is.
		_, _ = hugepage.Enable(hugepage.DefaultReserve)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stash:", err)
	}
	pprof.StopCPUProfile()
	os.Exit(cli.ExitCode(err))
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
