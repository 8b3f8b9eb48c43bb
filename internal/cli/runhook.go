package cli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/runtime/local"
	"github.com/stash-backup/stash/internal/step"
)

func newRunHookCommand() *cobra.Command {
	var (
		h        step.Hook
		files    []string
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "run-hook",
		Short: "Run an invoker's preBackup, postBackup, preRestore or postRestore hook (the hook containers of a Job)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("no object source: outside a cluster pass -f with the manifests holding the invoker")
			}
			set, err := manifest.Load(files...)
			if err != nil {
				return err
			}
			if stateDir != "" {
				h.SessionStatus = func(kind, ns, name string) []byte {
					store, err := local.OpenStore(stateDir)
					if err != nil {
						return nil
					}
					defer store.Close()
					if s, err := store.Get(kind, ns, name); err == nil && s != nil {
						return s.Status
					}
					return nil
				}
			}
			return step.RunHook(cmd.Context(), set, h)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&h.Type, "hook-type", "", "preBackup, postBackup, preRestore or postRestore")
	fl.StringVar(&h.BackupSession, "backupsession", "", "the BackupSession")
	fl.StringVar(&h.RestoreSession, "restoresession", "", "the RestoreSession")
	fl.StringVar(&h.Namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&h.InvokerKind, "invoker-kind", "", "BackupConfiguration or RestoreSession")
	fl.StringVar(&h.InvokerName, "invoker-name", "", "name of the invoker")
	fl.StringVar(&h.TargetKind, "target-kind", "", "kind of the target")
	fl.StringVar(&h.TargetName, "target-name", "", "name of the target")
	fl.String("hostname", "", "host of the session")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the local runtime's state directory, which holds the session's status")
	fl.StringSliceVarP(&files, "filename", "f", nil, "outside a cluster: manifests holding the invoker")
	return cmd
}
