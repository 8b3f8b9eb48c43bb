package cli

import (
	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/step"
)

// newUploadCommand is the upload Function's command: the hand-over from
// a user's own dump step (another image, an init container before it) to
// the repository.
func newUploadCommand() *cobra.Command {
	var (
		f   stepFlags
		dir string
	)
	cmd := &cobra.Command{
		Use:   "upload --interim-data-dir=DIR",
		Short: "Back up the files earlier steps of the pod left in the interim directory (the upload Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return step.Upload(cmd.Context(), f.options(), dir)
		},
	}
	f.register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&dir, "interim-data-dir", "", "directory the earlier steps wrote their files to (${INTERIM_DATA_DIR})")
	for _, n := range []string{"target-kind", "target-name", "target-namespace"} {
		fl.String(n, "", "accepted for compatibility")
	}
	return cmd
}

// newDownloadCommand is the download Function's command: a snapshot put
// where a user's own load step (a later init container or the main one)
// reads it.
func newDownloadCommand() *cobra.Command {
	var (
		f     stepFlags
		dir   string
		paths string
	)
	cmd := &cobra.Command{
		Use:   "download --interim-data-dir=DIR [--paths=PATH[,PATH…]]",
		Short: "Restore a snapshot into the interim directory for the later steps of the pod (the download Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return step.Download(cmd.Context(), f.options(), dir, splitList(paths))
		},
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&dir, "interim-data-dir", "", "directory the later steps read the files from (${INTERIM_DATA_DIR})")
	fl.StringVar(&paths, "paths", "", "comma-separated snapshot paths to choose from besides "+step.InterimPath+" and "+step.StashTmpInterimPath+" (those of older backups; a stream's path is its file name, e.g. dumpfile.resp)")
	for _, n := range []string{"invoker-kind", "invoker-name", "target-kind", "target-name", "target-namespace"} {
		fl.String(n, "", "accepted for compatibility")
	}
	return cmd
}
