package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/status"
)

func newUpdateStatusCommand() *cobra.Command {
	var (
		namespace, backupSession, restoreSession string
		invokerKind, invokerName                 string
		target                                   stashv1beta1.TargetRef
		outputDir, stateDir                      string
		totalHosts                               int32
		ignored                                  string
		ignoredBool                              bool
		ignoredInt                               int64
	)
	cmd := &cobra.Command{
		Use:   "update-status",
		Short: "Record a step's result (output.json) in its BackupSession or RestoreSession (the update-status Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if outputDir == "" {
				return errors.New("--output-dir is empty: name the directory where the previous step wrote output.json")
			}
			b, err := os.ReadFile(filepath.Join(outputDir, OutputFile))
			if err != nil {
				return fmt.Errorf("read the previous step's result: %w (did the backup step run with the same --output-dir?)", err)
			}
			var out Output
			if err := json.Unmarshal(b, &out); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(outputDir, OutputFile), err)
			}
			if stateDir == "" {
				return errors.New("no status store: outside a cluster pass --state-dir (the local runtime's state directory)")
			}
			rec := status.FileRecorder{Dir: stateDir}
			ctx := cmd.Context()
			switch {
			case backupSession != "":
				if target.Namespace == "" {
					target.Namespace = namespace
				}
				st, err := rec.RecordBackup(ctx, namespace, backupSession, target, totalHosts, out.HostBackupStats)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "BackupSession %s/%s: %s\n", namespace, backupSession, st.Phase)
			case restoreSession != "":
				st, err := rec.RecordRestore(ctx, namespace, restoreSession, totalHosts, out.HostRestoreStats)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "RestoreSession %s/%s: %s\n", namespace, restoreSession, st.Phase)
			default:
				return errors.New("give --backupsession or --restoresession")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&backupSession, "backupsession", "", "BackupSession to update")
	fl.StringVar(&restoreSession, "restoresession", "", "RestoreSession to update")
	fl.StringVar(&invokerKind, "invoker-kind", "", "kind of the invoker")
	fl.StringVar(&invokerName, "invoker-name", "", "name of the invoker")
	fl.StringVar(&target.Kind, "target-kind", "", "kind of the target")
	fl.StringVar(&target.Name, "target-name", "", "name of the target")
	fl.StringVar(&target.Namespace, "target-namespace", "", "namespace of the target")
	fl.StringVar(&outputDir, "output-dir", "", "directory holding output.json")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the status store directory")
	fl.Int32Var(&totalHosts, "total-hosts", 1, "hosts the target has (job model: 1)")
	// Accepted for Stash's update-status Function; the status step needs no repository.
	for _, n := range []string{"provider", "bucket", "endpoint", "region", "path", "storage-secret-name", "storage-secret-namespace", "scratch-dir", "metrics-pushgateway-url", "license-apiservice"} {
		fl.StringVar(&ignored, n, "", "accepted for compatibility")
	}
	fl.BoolVar(&ignoredBool, "insecure-tls", false, "accepted for compatibility")
	fl.BoolVar(&ignoredBool, "metrics-enabled", false, "accepted for compatibility")
	fl.BoolVar(&ignoredBool, "enable-cache", true, "accepted for compatibility")
	fl.Int64Var(&ignoredInt, "max-connections", 0, "accepted for compatibility")
	return cmd
}
