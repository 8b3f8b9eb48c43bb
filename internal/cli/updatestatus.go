package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/source"
	"github.com/stash-backup/stash/internal/status"
)

func newUpdateStatusCommand() *cobra.Command {
	var (
		f                             addonFlags
		backupSession, restoreSession string
		invokerKind, invokerName      string
		target                        stashv1beta1.TargetRef
		stateDir                      string
		totalHosts                    int32
		ignored                       string
		ignoredBool                   bool
	)
	cmd := &cobra.Command{
		Use:   "update-status",
		Short: "Record a step's result (output.json) in its BackupSession or RestoreSession (the update-status Function)",
		Long: `Record a step's result (output.json) in its BackupSession or RestoreSession.

In a cluster it updates the session's status through the API server, emits
Stash's host events and, after a successful backup, runs the post-backup
actions: it verifies the repository's integrity and records its size,
snapshot count and last backup time in the Repository's status. Outside a
cluster it writes the status under --state-dir (the local runtime's store).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.outputDir == "" {
				return errors.New("--output-dir is empty: name the directory where the previous step wrote output.json")
			}
			b, err := os.ReadFile(filepath.Join(f.outputDir, OutputFile))
			if err != nil {
				return fmt.Errorf("read the previous step's result: %w (did the backup step run with the same --output-dir?)", err)
			}
			var out Output
			if err := json.Unmarshal(b, &out); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(f.outputDir, OutputFile), err)
			}
			ctx := cmd.Context()
			var (
				rec status.Recorder
				kc  client.Client
			)
			switch {
			case stateDir != "":
				rec = status.FileRecorder{Dir: stateDir}
			case clusterAvailable():
				if kc, err = clusterClient(); err != nil {
					return err
				}
				rec = status.Kube{Client: kc}
			default:
				return errors.New("no status store: outside a cluster pass --state-dir (the local runtime's state directory)")
			}
			switch {
			case backupSession != "":
				if target.Namespace == "" {
					target.Namespace = f.namespace
				}
				var conds []stashv1beta1.Condition
				if allSucceeded(out.HostBackupStats) {
					// Post-backup actions run before the stats are
					// recorded, which sets their conditions in the same
					// update. Outside a cluster only retention's outcome
					// is recorded.
					conds = append(conds, retentionCondition(out.Retention, metav1.Now()))
					if kc != nil {
						conds = append(conds, postBackup(ctx, kc, &f, invokerName, out.Retention)...)
					}
				}
				st, err := rec.RecordBackup(ctx, f.namespace, backupSession, target, totalHosts, out.HostBackupStats, conds)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "BackupSession %s/%s: %s\n", f.namespace, backupSession, st.Phase)
			case restoreSession != "":
				st, err := rec.RecordRestore(ctx, f.namespace, restoreSession, totalHosts, out.HostRestoreStats, warningConditions(out.Warnings, metav1.Now())...)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "RestoreSession %s/%s: %s\n", f.namespace, restoreSession, st.Phase)
			default:
				return errors.New("give --backupsession or --restoresession")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&backupSession, "backupsession", "", "BackupSession to update")
	fl.StringVar(&restoreSession, "restoresession", "", "RestoreSession to update")
	fl.StringVar(&invokerKind, "invoker-kind", "", "kind of the invoker")
	fl.StringVar(&invokerName, "invoker-name", "", "name of the invoker")
	fl.StringVar(&target.Kind, "target-kind", "", "kind of the target")
	fl.StringVar(&target.Name, "target-name", "", "name of the target")
	fl.StringVar(&target.Namespace, "target-namespace", "", "namespace of the target")
	fl.StringVar(&f.outputDir, "output-dir", "", "directory holding output.json")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the status store directory")
	fl.Int32Var(&totalHosts, "total-hosts", 0, "hosts the target has (0: the count the operator set, else 1)")
	// The repository, for the post-backup actions.
	fl.StringVar(&f.provider, "provider", "", "backend: local, s3, gcs, azure, b2")
	fl.StringVar(&f.bucket, "bucket", "", "bucket or container (local: the repository directory)")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint")
	fl.StringVar(&f.region, "region", "", "S3 region")
	fl.StringVar(&f.prefix, "path", "", "prefix inside the bucket")
	fl.BoolVar(&f.insecureTLS, "insecure-tls", false, "skip TLS verification of the backend")
	fl.StringVar(&f.secretName, "storage-secret-name", "", "Secret with the repository password and backend keys")
	fl.StringVar(&f.secretNamespace, "storage-secret-namespace", "", "namespace of the storage Secret")
	fl.Int64Var(&f.maxConnections, "max-connections", 0, "concurrent backend connections (0: backend default)")
	for _, n := range []string{"scratch-dir", "metrics-pushgateway-url", "license-apiservice"} {
		fl.StringVar(&ignored, n, "", "accepted for compatibility")
	}
	fl.BoolVar(&ignoredBool, "metrics-enabled", false, "accepted for compatibility (the operator exports the metrics)")
	fl.BoolVar(&ignoredBool, "enable-cache", true, "accepted for compatibility")
	return cmd
}

// warningConditions turns a restore step's warnings into conditions of
// its RestoreSession (status.Kube also emits each as a Warning event).
// Several hosts' warnings share the condition; the last one written says
// which host, in its message.
func warningConditions(warnings []string, now metav1.Time) []stashv1beta1.Condition {
	if len(warnings) == 0 {
		return nil
	}
	return []stashv1beta1.Condition{{
		Type: status.ConditionLatestOfSeveralInvokers, Status: metav1.ConditionTrue, Reason: "SeveralInvokers",
		Message: strings.Join(warnings, "; "), LastTransitionTime: now,
	}}
}

func allSucceeded(stats []stashv1beta1.HostBackupStats) bool {
	for _, s := range stats {
		if s.Phase != "Succeeded" {
			return false
		}
	}
	return len(stats) > 0
}

// retentionCondition is RetentionPolicyApplied from what the backup step's
// --retention-* flags did (ret is nil when they set no policy). A failure
// is False, which fails the session as in Stash, while the host's backup
// and its snapshot stay recorded as Succeeded.
func retentionCondition(ret *RetentionOutput, now metav1.Time) stashv1beta1.Condition {
	c := stashv1beta1.Condition{Type: "RetentionPolicyApplied", Status: metav1.ConditionTrue, Reason: "Succeeded", LastTransitionTime: now}
	switch {
	case ret == nil:
		c.Message = "No retention policy set."
	case ret.Error != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Failed", ret.Error
	case ret.DryRun:
		c.Message = fmt.Sprintf("Dry run: %d snapshots would be removed.", ret.SnapshotsRemoved)
	default:
		c.Message = fmt.Sprintf("Applied by the backup step: %d snapshots removed.", ret.SnapshotsRemoved)
	}
	return c
}

// postBackup verifies the repository and records its state in the
// invoker's Repository, with the snapshots retention removed (ret).
// Failures become False conditions, which fail the session, rather than a
// failed step.
func postBackup(ctx context.Context, c client.Client, f *addonFlags, invoker string, ret *RetentionOutput) []stashv1beta1.Condition {
	now := metav1.Now()
	cond := func(t string, err error, okMsg string) stashv1beta1.Condition {
		if err != nil {
			return stashv1beta1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: "Failed", Message: err.Error(), LastTransitionTime: now}
		}
		return stashv1beta1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: okMsg, LastTransitionTime: now}
	}
	var conds []stashv1beta1.Condition
	r, err := f.openRepository(ctx, source.Kube{Reader: c})
	if err != nil {
		return append(conds, cond("RepositoryIntegrityVerified", err, ""))
	}
	defer r.Close(ctx) //nolint:errcheck
	res, err := r.Check(ctx, false)
	if err == nil && len(res.Errors) > 0 {
		err = fmt.Errorf("repository check found %d problems, first: %s", len(res.Errors), res.Errors[0])
	}
	integrity := err == nil
	conds = append(conds, cond("RepositoryIntegrityVerified", err, "Repository metadata verified."))
	stats, err := r.Stats(ctx)
	if err == nil {
		err = recordRepositoryStatus(ctx, c, f.namespace, invoker, func(st *stashv1alpha1.RepositoryStatus) {
			t := metav1.NewTime(time.Now())
			if st.FirstBackupTime == nil {
				st.FirstBackupTime = &t
			}
			st.LastBackupTime = &t
			st.Integrity = &integrity
			st.TotalSize = stats.TotalSize
			st.SnapshotCount = int64(stats.SnapshotCount)
			if ret != nil && ret.Error == "" && !ret.DryRun {
				st.SnapshotsRemovedOnLastCleanup = int64(ret.SnapshotsRemoved)
			}
		})
	}
	return append(conds, cond("RepositoryMetricsPushed", err, "Repository status updated; the operator exports its metrics."))
}

func recordRepositoryStatus(ctx context.Context, c client.Client, ns, invoker string, update func(*stashv1alpha1.RepositoryStatus)) error {
	bc := &stashv1beta1.BackupConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: invoker}, bc); err != nil {
		return fmt.Errorf("get BackupConfiguration %s/%s: %w", ns, invoker, err)
	}
	rns := bc.Spec.Repository.Namespace
	if rns == "" {
		rns = ns
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		repo := &stashv1alpha1.Repository{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: rns, Name: bc.Spec.Repository.Name}, repo); err != nil {
			return err
		}
		update(&repo.Status)
		return c.Status().Update(ctx, repo)
	})
}
