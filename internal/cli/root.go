// Package cli holds the cobra commands of the stash binary. Commands are
// thin: they parse flags and call the packages under internal/.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/repository"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// NewRootCommand builds the stash command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "stash",
		Short:         "Backup and recovery for Kubernetes workloads and databases",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to use (default: $KUBECONFIG, or the pod's service account in a cluster)")
	// Data commands move data to or from a repository; the process is
	// tuned for them (Execute).
	data := append([]*cobra.Command{newRepoCommand()}, driverCommands()...)
	for _, c := range append(data, newBackupPVCCommand(), newRestorePVCCommand(), newUploadCommand(), newDownloadCommand(), newRunBackupCommand(), newRestoreInitCommand()) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[dataCommand] = "true"
		root.AddCommand(c)
	}
	root.AddCommand(newValidateCommand(), newPlanCommand(), newAddonsCommand(), newUpdateStatusCommand(), newLocalCommand(), newRunHookCommand(),
		newOperatorCommand(), newCreateBackupSessionCommand(), newTriggerCommand(), newPauseResumeCommand(true), newPauseResumeCommand(false), newDescribeCommand())
	if IsKubectlPlugin() {
		root.Use = "kubectl stash"
	}
	return root
}

// Exit codes, following restic's where they overlap, so scripts and the
// runtimes can tell failures apart.
const (
	ExitOK             = 0
	ExitError          = 1
	ExitNoRepository   = 10
	ExitWrongPassword  = 12
	ExitUnreachable    = 13
	ExitSnapshotAbsent = 14
)

// ExitCode maps an error to the process exit status.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, repository.ErrNotInitialized):
		return ExitNoRepository
	case errors.Is(err, repository.ErrWrongPassword):
		return ExitWrongPassword
	case errors.Is(err, repository.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, repository.ErrSnapshotNotFound):
		return ExitSnapshotAbsent
	}
	return ExitError
}

// output formats.
const (
	outputText = "text"
	outputJSON = "json"
)

func checkOutput(o string) error {
	if o != outputText && o != outputJSON {
		return fmt.Errorf("--output %q: use text or json", o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stdout is where command results go; a variable for tests.
var stdout io.Writer = os.Stdout
