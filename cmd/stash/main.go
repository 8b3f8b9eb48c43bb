// Command stash is the one binary of Stash: repository CLI, addon steps,
// local runtime and operator.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stash-backup/stash/internal/cli"
	"github.com/stash-backup/stash/internal/priority"
)

func main() {
	if err := priority.FromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "stash:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stash:", err)
	}
	os.Exit(cli.ExitCode(err))
}
