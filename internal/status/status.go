// Package status turns a step's result (output.json) into BackupSession
// and RestoreSession status as Stash computes it: host stats per target,
// target phases, session phase. The merge is pure; where the status is
// kept is behind Recorder (the API server in a cluster, the local
// runtime's store on one machine).
package status

import (
	"context"
	"errors"
	"fmt"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// ErrSessionEnded is the error of a result reported into a session that
// has already ended. A step that runs after its session was failed (a
// pod that could not start for a while, then did) must not turn it
// Succeeded: the runtime acted on the failure already (retried, ran the
// next session, told the user).
var ErrSessionEnded = errors.New("the session has already ended")

// BackupEnded reports whether a BackupSession's phase is final.
func BackupEnded(p stashv1beta1.BackupSessionPhase) bool {
	switch p {
	case stashv1beta1.BackupSessionSucceeded, stashv1beta1.BackupSessionFailed, stashv1beta1.BackupSessionSkipped:
		return true
	}
	return false
}

// RestoreEnded reports whether a RestoreSession's phase is final.
func RestoreEnded(p stashv1beta1.RestorePhase) bool {
	switch p {
	case stashv1beta1.RestoreSucceeded, stashv1beta1.RestoreFailed, stashv1beta1.RestoreInvalid:
		return true
	}
	return false
}

// RecordBackupResult is MergeBackup for a step's result: it refuses, with
// ErrSessionEnded, a session whose phase is already final.
func RecordBackupResult(in stashv1beta1.BackupSessionStatus, target stashv1beta1.TargetRef, totalHosts int32, stats []stashv1beta1.HostBackupStats, conds ...stashv1beta1.Condition) (stashv1beta1.BackupSessionStatus, error) {
	if BackupEnded(in.Phase) {
		return in, fmt.Errorf("%w (%s): this result is not recorded", ErrSessionEnded, in.Phase)
	}
	return MergeBackup(in, target, totalHosts, stats, conds...), nil
}

// RecordRestoreResult is MergeRestore for a step's result: it refuses,
// with ErrSessionEnded, a session whose phase is already final.
func RecordRestoreResult(in stashv1beta1.RestoreSessionStatus, totalHosts int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) (stashv1beta1.RestoreSessionStatus, error) {
	if RestoreEnded(in.Phase) {
		return in, fmt.Errorf("%w (%s): this result is not recorded", ErrSessionEnded, in.Phase)
	}
	return MergeRestore(in, totalHosts, stats, conds...), nil
}

// Recorder stores the result of one host's backup or restore. Both
// methods refuse, with ErrSessionEnded, a session that has already ended
// (RecordBackupResult, RecordRestoreResult).
type Recorder interface {
	// RecordBackup also sets conds (the post-backup actions') and, when
	// given, the repository's state they found, in the same update, so
	// that the session turns final with them in place.
	RecordBackup(ctx context.Context, namespace, session string, target stashv1beta1.TargetRef, totalHosts int32, stats []stashv1beta1.HostBackupStats, conds []stashv1beta1.Condition, report *stashv1beta1.RepositoryReport) (*stashv1beta1.BackupSessionStatus, error)
	// RecordRestore also sets conds (warnings of the restore step, such as
	// a "latest" that matched several invokers' snapshots).
	RecordRestore(ctx context.Context, namespace, session string, totalHosts int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) (*stashv1beta1.RestoreSessionStatus, error)
}

// MergeBackup adds host stats to the target's entry of a BackupSession
// status (replacing a host's earlier stats), sets conds (replacing those of
// the same types), and recomputes the target and session phases. It returns
// a new status; the input is not changed.
func MergeBackup(in stashv1beta1.BackupSessionStatus, target stashv1beta1.TargetRef, totalHosts int32, stats []stashv1beta1.HostBackupStats, conds ...stashv1beta1.Condition) stashv1beta1.BackupSessionStatus {
	out := *in.DeepCopy()
	for _, c := range conds {
		out.Conditions = SetCondition(out.Conditions, c, c.LastTransitionTime)
	}
	idx := -1
	for i, t := range out.Targets {
		if t.Ref.Kind == target.Kind && t.Ref.Name == target.Name && t.Ref.Namespace == target.Namespace {
			idx = i
		}
	}
	if idx < 0 {
		out.Targets = append(out.Targets, stashv1beta1.BackupTargetStatus{Ref: target})
		idx = len(out.Targets) - 1
	}
	t := &out.Targets[idx]
	t.TotalHosts = hostCount(t.TotalHosts, totalHosts)
	for _, s := range stats {
		replaced := false
		for i := range t.Stats {
			if t.Stats[i].Hostname == s.Hostname {
				t.Stats[i], replaced = s, true
			}
		}
		if !replaced {
			t.Stats = append(t.Stats, s)
		}
	}
	t.Phase = targetPhase(t.TotalHosts, len(t.Stats), countFailed(t.Stats))
	out.Phase = sessionPhase(out)
	return out
}

// hostCount is a target's host count after a host reported: given, when
// the reporting step was told it (--total-hosts); else the count the
// operator set when it started the target's jobs, which a step must not
// overwrite (a restore of three replicas would turn Succeeded when the
// first host reported); else one, the job model's one host.
func hostCount(have *int32, given int32) *int32 {
	switch {
	case given > 0:
		return &given
	case have != nil:
		return have
	}
	one := int32(1)
	return &one
}

func countFailed(stats []stashv1beta1.HostBackupStats) int {
	n := 0
	for _, s := range stats {
		if s.Phase == "Failed" {
			n++
		}
	}
	return n
}

// targetPhase follows Stash: Pending until the host count is known,
// Running until every host reported, then Failed if any host failed.
func targetPhase(total *int32, reported, failed int) stashv1beta1.TargetPhase {
	switch {
	case total == nil:
		return "Pending"
	case reported < int(*total):
		return "Running"
	case failed > 0:
		return "Failed"
	}
	return "Succeeded"
}

// sessionPhase is the session's phase from its targets (Stash also waits
// for metrics and post-backup actions, which a runtime records as
// conditions; a False one of those fails the session).
func sessionPhase(s stashv1beta1.BackupSessionStatus) stashv1beta1.BackupSessionPhase {
	for _, c := range s.Conditions {
		if c.Type == "BackupSkipped" && c.Status == "True" {
			return stashv1beta1.BackupSessionSkipped
		}
	}
	if len(s.Targets) == 0 {
		return stashv1beta1.BackupSessionPending
	}
	allPending, anyRunning, anyFailed := true, false, false
	for _, t := range s.Targets {
		switch t.Phase {
		case "Running":
			anyRunning, allPending = true, false
		case "Failed":
			anyFailed, allPending = true, false
		case "Succeeded":
			allPending = false
		}
	}
	for _, c := range s.Conditions {
		switch c.Type {
		case "DeadlineExceeded":
			if c.Status == "True" {
				anyFailed = true
			}
		case "RetentionPolicyApplied", "RepositoryIntegrityVerified", "RepositoryMetricsPushed", "MetricsPushed", "BackupHistoryCleaned":
			if c.Status == "False" {
				anyFailed = true
			}
		}
	}
	switch {
	case allPending:
		return stashv1beta1.BackupSessionPending
	case anyRunning:
		return stashv1beta1.BackupSessionRunning
	case anyFailed:
		return stashv1beta1.BackupSessionFailed
	}
	return stashv1beta1.BackupSessionSucceeded
}

// MergeRestore adds host stats to a RestoreSession status, sets conds
// (replacing those of the same types) and recomputes its phase: Running
// until every host reported, then Failed if any host failed, else
// Succeeded; Failed whenever the deadline passed.
func MergeRestore(in stashv1beta1.RestoreSessionStatus, totalHosts int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) stashv1beta1.RestoreSessionStatus {
	out := *in.DeepCopy()
	for _, c := range conds {
		out.Conditions = SetCondition(out.Conditions, c, c.LastTransitionTime)
	}
	out.TotalHosts = hostCount(out.TotalHosts, totalHosts)
	for _, s := range stats {
		replaced := false
		for i := range out.Stats {
			if out.Stats[i].Hostname == s.Hostname {
				out.Stats[i], replaced = s, true
			}
		}
		if !replaced {
			out.Stats = append(out.Stats, s)
		}
	}
	failed := 0
	for _, s := range out.Stats {
		if s.Phase == "Failed" {
			failed++
		}
	}
	deadline := false
	for _, c := range out.Conditions {
		if c.Type == "DeadlineExceeded" && c.Status == "True" {
			deadline = true
		}
	}
	switch {
	case deadline:
		// The operator failed the session at its deadline (spec.timeOut);
		// a host reporting afterwards does not revive it.
		out.Phase = stashv1beta1.RestoreFailed
	case out.TotalHosts == nil:
		out.Phase = stashv1beta1.RestorePending
	case len(out.Stats) < int(*out.TotalHosts):
		out.Phase = stashv1beta1.RestoreRunning
	case failed > 0:
		out.Phase = stashv1beta1.RestoreFailed
	default:
		out.Phase = stashv1beta1.RestoreSucceeded
	}
	return out
}
