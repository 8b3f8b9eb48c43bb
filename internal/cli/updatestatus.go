package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/runtime/local"
	"github.com/stash-backup/stash/internal/status"
	"github.com/stash-backup/stash/internal/step"
)

func newUpdateStatusCommand() *cobra.Command {
	var (
		o        step.Options
		s        step.Session
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "update-status",
		Short: "Record a step's result (output.json) in its BackupSession or RestoreSession (the update-status Function)",
		Long: `Record a step's result (output.json) in its BackupSession or RestoreSession.

In a cluster it updates the session's status through the API server, emits
Stash's host events and, after a successful backup, runs the post-backup
actions: it verifies the repository's integrity and records its size,
snapshot count and last backup time in the Repository's status. Outside a
cluster it records the status in the local runtime's store in --state-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				rec status.Recorder
				kc  client.Client
				err error
			)
			switch {
			case stateDir != "":
				rec = local.StoreRecorder{Dir: stateDir}
			case clusterAvailable():
				if kc, err = clusterClient(); err != nil {
					return err
				}
				rec = status.Kube{Client: kc}
			default:
				return errors.New("no status store: outside a cluster pass --state-dir (the local runtime's state directory)")
			}
			msg, err := step.Record(cmd.Context(), o, rec, kc, s)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, msg)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&s.BackupSession, "backupsession", "", "BackupSession to update")
	fl.StringVar(&s.RestoreSession, "restoresession", "", "RestoreSession to update")
	fl.String("invoker-kind", "", "kind of the invoker")
	fl.String("invoker-name", "", "name of the invoker (accepted for compatibility; the operator knows it)")
	fl.StringVar(&s.Target.Kind, "target-kind", "", "kind of the target")
	fl.StringVar(&s.Target.Name, "target-name", "", "name of the target")
	fl.StringVar(&s.Target.Namespace, "target-namespace", "", "namespace of the target")
	fl.StringVar(&o.OutputDir, "output-dir", "", "directory holding output.json")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the local runtime's state directory, whose store holds the session")
	fl.Int32Var(&s.TotalHosts, "total-hosts", 0, "hosts the target has (0: the count the operator set, else 1)")
	// The repository, for the post-backup actions.
	registerBackendFlags(fl, &o)
	for _, n := range []string{"scratch-dir", "metrics-pushgateway-url", "license-apiservice"} {
		fl.String(n, "", "accepted for compatibility")
	}
	fl.Bool("metrics-enabled", false, "accepted for compatibility (the operator exports the metrics)")
	fl.Bool("enable-cache", true, "accepted for compatibility")
	return cmd
}
