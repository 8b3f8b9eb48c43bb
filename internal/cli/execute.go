package cli

import (
	"context"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/keytable"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/tuning"
)

// dataCommand is the annotation of the commands that move data (see
// NewRootCommand).
const dataCommand = "stash.dataCommand"

// Execute runs the command line args (without the program's name): the
// step's scratch directories are made first, and a data command runs in a
// process tuned for it (internal/tuning); other commands, the operator
// among them, run as Go runs them.
func Execute(ctx context.Context, args []string) error {
	makeScratchDirs()
	root := NewRootCommand()
	root.SetArgs(args)
	if cmd, _, err := root.Find(args); err == nil && isDataCommand(cmd) {
		stop, err := tuning.Start()
		if err != nil {
			return err
		}
		defer stop()
		// Data commands open a repository within milliseconds; the
		// pages its key derivation takes are faulted in meanwhile, if
		// the command line did not start that already (keytable).
		keytable.Start()
	}
	return root.ExecuteContext(ctx)
}

// isDataCommand reports whether cmd or a command above it is a data
// command.
func isDataCommand(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Annotations[dataCommand] == "true" {
			return true
		}
	}
	return false
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
