package cli

import (
	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/step"
)

func newBackupPVCCommand() *cobra.Command {
	var (
		f                                stepFlags
		paths, exclude                   string
		targetKind, targetName, targetNS string
	)
	cmd := &cobra.Command{
		Use:   "backup-pvc --backup-paths=DIR[,DIR…]",
		Short: "Back up directories of a mounted volume (the pvc-backup Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return step.BackupPaths(cmd.Context(), f.options(), splitList(paths), splitList(exclude))
		},
	}
	f.register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&paths, "backup-paths", "", "comma-separated directories to back up")
	fl.StringVar(&exclude, "exclude", "", "comma-separated patterns of files not to back up")
	fl.String("args", "", "accepted for compatibility")
	fl.StringVar(&targetKind, "target-kind", "", "accepted for compatibility")
	fl.StringVar(&targetName, "target-name", "", "accepted for compatibility")
	fl.StringVar(&targetNS, "target-namespace", "", "accepted for compatibility")
	return cmd
}

func newRestorePVCCommand() *cobra.Command {
	var (
		f                                  stepFlags
		paths, snapshots, include, exclude string
	)
	cmd := &cobra.Command{
		Use:   "restore-pvc (--restore-paths=DIR[,DIR…] | --snapshots=ID[,ID…])",
		Short: "Restore directories into a mounted volume (the pvc-restore Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return step.RestorePaths(cmd.Context(), f.options(), step.PathsRestore{
				Paths: splitList(paths), Snapshots: splitList(snapshots), Include: splitList(include), Exclude: splitList(exclude),
			})
		},
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&paths, "restore-paths", "", "comma-separated directories to restore (their latest snapshots of --source-hostname)")
	fl.StringVar(&snapshots, "snapshots", "", "comma-separated snapshot IDs, or latest (every path's newest)")
	fl.StringVar(&include, "include", "", "comma-separated patterns: restore only these")
	fl.StringVar(&exclude, "exclude", "", "comma-separated patterns not to restore")
	for _, n := range []string{"args", "invoker-kind", "invoker-name", "target-kind", "target-name"} {
		fl.String(n, "", "accepted for compatibility")
	}
	return cmd
}
