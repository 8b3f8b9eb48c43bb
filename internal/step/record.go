package step

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/source"
	"github.com/stash-backup/stash/internal/status"
)

// Session names what update-status records a step's result in.
type Session struct {
	// BackupSession or RestoreSession: one of them is set.
	BackupSession, RestoreSession string
	Target                        stashv1beta1.TargetRef
	// TotalHosts is how many hosts the target has (0: the count the
	// operator set, else 1).
	TotalHosts int32
}

// Record is the body of update-status: it reads the output.json the
// previous step wrote into o.OutputDir and records it in the session
// through rec. In a cluster (kc set) a successful backup first runs the
// post-backup actions on the repository the options name. It returns a
// line saying the session's phase.
func Record(ctx context.Context, o Options, rec status.Recorder, kc client.Client, s Session) (string, error) {
	out, err := ReadOutput(o.OutputDir)
	if err != nil {
		return "", err
	}
	switch {
	case s.BackupSession != "":
		target := s.Target
		if target.Namespace == "" {
			target.Namespace = o.Namespace
		}
		var (
			conds  []stashv1beta1.Condition
			report *stashv1beta1.RepositoryReport
		)
		if allSucceeded(out.HostBackupStats) {
			// Post-backup actions run before the stats are recorded,
			// which sets their conditions and findings in the same
			// update. Outside a cluster only retention's outcome is
			// recorded (the local runtime checks the repository itself).
			conds = append(conds, RetentionCondition(out.Retention, metav1.Now()))
			if kc != nil {
				var pc []stashv1beta1.Condition
				pc, report = o.PostBackup(ctx, source.Kube{Reader: kc}, out.Retention)
				conds = append(conds, pc...)
			}
		}
		st, err := rec.RecordBackup(ctx, o.Namespace, s.BackupSession, target, totalHosts(s.TotalHosts, len(out.HostBackupStats)), out.HostBackupStats, conds, report)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("BackupSession %s/%s: %s", o.Namespace, s.BackupSession, st.Phase), nil
	case s.RestoreSession != "":
		st, err := rec.RecordRestore(ctx, o.Namespace, s.RestoreSession, totalHosts(s.TotalHosts, len(out.HostRestoreStats)), out.HostRestoreStats, warningConditions(out.Warnings, metav1.Now())...)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("RestoreSession %s/%s: %s", o.Namespace, s.RestoreSession, st.Phase), nil
	}
	return "", errors.New("give --backupsession or --restoresession")
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

// totalHosts is the session's host count: the one given, else, when the
// step reported several hosts (a sharded cluster's components, success
// or failure each), that many; zero leaves the count the operator set.
func totalHosts(given int32, reported int) int32 {
	if given == 0 && reported > 1 {
		return int32(reported)
	}
	return given
}

func allSucceeded(stats []stashv1beta1.HostBackupStats) bool {
	for _, s := range stats {
		if s.Phase != "Succeeded" {
			return false
		}
	}
	return len(stats) > 0
}

// RetentionCondition is RetentionPolicyApplied from what the backup step's
// --retention-* flags did (ret is nil when they set no policy). A failure
// is False, which fails the session as in Stash, while the host's backup
// and its snapshot stay recorded as Succeeded.
func RetentionCondition(ret *RetentionOutput, now metav1.Time) stashv1beta1.Condition {
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

// PostBackup verifies the repository and reports its state, with the
// snapshots retention removed (ret), for the session's status: the
// operator, the Repository status's one writer, copies it there. Failures
// become False conditions, which fail the session, rather than a failed
// step. src finds the Repository and its Secret.
func (o *Options) PostBackup(ctx context.Context, src source.Source, ret *RetentionOutput) ([]stashv1beta1.Condition, *stashv1beta1.RepositoryReport) {
	now := metav1.Now()
	cond := func(t string, err error, okMsg string) stashv1beta1.Condition {
		if err != nil {
			return stashv1beta1.Condition{Type: t, Status: metav1.ConditionFalse, Reason: "Failed", Message: err.Error(), LastTransitionTime: now}
		}
		return stashv1beta1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: okMsg, LastTransitionTime: now}
	}
	r, err := o.OpenReader(ctx, src)
	if err != nil {
		return []stashv1beta1.Condition{cond("RepositoryIntegrityVerified", err, "")}, nil
	}
	defer r.Close(ctx) //nolint:errcheck
	res, err := r.Check(ctx, false)
	if err == nil && len(res.Errors) > 0 {
		err = fmt.Errorf("repository check found %d problems, first: %s", len(res.Errors), res.Errors[0])
	}
	integrity := err == nil
	conds := []stashv1beta1.Condition{cond("RepositoryIntegrityVerified", err, "Repository metadata verified.")}
	report := &stashv1beta1.RepositoryReport{Integrity: &integrity, Time: metav1.NewTime(time.Now())}
	stats, err := r.Stats(ctx)
	if err == nil {
		report.TotalSize = stats.TotalSize
		report.SnapshotCount = int64(stats.SnapshotCount)
		if ret != nil && ret.Error == "" && !ret.DryRun {
			report.SnapshotsRemovedOnLastCleanup = int64(ret.SnapshotsRemoved)
		}
	}
	return append(conds, cond("RepositoryMetricsPushed", err, "Repository state reported; the operator records it in the Repository and exports its metrics.")), report
}
