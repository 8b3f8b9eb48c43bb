package status

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

var db = stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}

func host(name, phase string) stashv1beta1.HostBackupStats {
	return stashv1beta1.HostBackupStats{Hostname: name, Phase: stashv1beta1.HostPhase(phase)}
}

func TestMergeBackup(t *testing.T) {
	tests := []struct {
		name        string
		start       stashv1beta1.BackupSessionStatus
		total       int32
		stats       []stashv1beta1.HostBackupStats
		wantTarget  stashv1beta1.TargetPhase
		wantSession stashv1beta1.BackupSessionPhase
		wantHosts   int
	}{
		{"one host succeeds", stashv1beta1.BackupSessionStatus{}, 1, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Succeeded", "Succeeded", 1},
		{"one host fails", stashv1beta1.BackupSessionStatus{}, 1, []stashv1beta1.HostBackupStats{host("host-0", "Failed")}, "Failed", "Failed", 1},
		{"two of three hosts", stashv1beta1.BackupSessionStatus{}, 3, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded"), host("host-1", "Failed")}, "Running", "Running", 2},
		{"host count given nowhere: one host", stashv1beta1.BackupSessionStatus{}, 0, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Succeeded", "Succeeded", 1},
		{
			"the operator's host count is kept",
			stashv1beta1.BackupSessionStatus{Targets: []stashv1beta1.BackupTargetStatus{{Ref: db, TotalHosts: ptr(3)}}},
			0, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Running", "Running", 1,
		},
		{
			"a retried host replaces its stats",
			stashv1beta1.BackupSessionStatus{Targets: []stashv1beta1.BackupTargetStatus{{Ref: db, Stats: []stashv1beta1.HostBackupStats{host("host-0", "Failed")}}}},
			1, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Succeeded", "Succeeded", 1,
		},
		{
			"deadline exceeded fails the session",
			stashv1beta1.BackupSessionStatus{Conditions: []stashv1beta1.Condition{{Type: "DeadlineExceeded", Status: "True"}}},
			1, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Succeeded", "Failed", 1,
		},
		{
			"failed retention fails the session",
			stashv1beta1.BackupSessionStatus{Conditions: []stashv1beta1.Condition{{Type: "RetentionPolicyApplied", Status: "False"}}},
			1, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, "Succeeded", "Failed", 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeBackup(tt.start, db, tt.total, tt.stats)
			if len(got.Targets) != 1 || got.Targets[0].Phase != tt.wantTarget || got.Phase != tt.wantSession || len(got.Targets[0].Stats) != tt.wantHosts {
				t.Errorf("got %+v", got)
			}
		})
	}
	// Conditions given with the stats count in the same merge.
	failedRetention := stashv1beta1.Condition{Type: "RetentionPolicyApplied", Status: "False"}
	if got := MergeBackup(stashv1beta1.BackupSessionStatus{}, db, 1, []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}, failedRetention); got.Phase != "Failed" || len(got.Conditions) != 1 {
		t.Errorf("stats with a failed retention: %+v", got)
	}
	in := stashv1beta1.BackupSessionStatus{}
	MergeBackup(in, db, 1, []stashv1beta1.HostBackupStats{host("h", "Succeeded")})
	if len(in.Targets) != 0 {
		t.Error("input changed")
	}
}

func ptr(n int32) *int32 { return &n }

func TestMergeRestore(t *testing.T) {
	// The operator set three hosts (one job per replica); a step that
	// is not told the count keeps it.
	three := stashv1beta1.RestoreSessionStatus{TotalHosts: ptr(3)}
	if st := MergeRestore(three, 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}}); st.Phase != stashv1beta1.RestoreRunning || *st.TotalHosts != 3 {
		t.Errorf("one of three: %s, %d hosts", st.Phase, *st.TotalHosts)
	}
	if st := MergeRestore(stashv1beta1.RestoreSessionStatus{}, 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}}); st.Phase != stashv1beta1.RestoreSucceeded {
		t.Errorf("no count anywhere, one host: %s", st.Phase)
	}
	late := stashv1beta1.RestoreSessionStatus{TotalHosts: ptr(1), Conditions: []stashv1beta1.Condition{{Type: "DeadlineExceeded", Status: "True"}}}
	if st := MergeRestore(late, 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}}); st.Phase != stashv1beta1.RestoreFailed {
		t.Errorf("a host reporting after the deadline: %s, want Failed", st.Phase)
	}

	st := MergeRestore(stashv1beta1.RestoreSessionStatus{}, 2, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}})
	if st.Phase != stashv1beta1.RestoreRunning {
		t.Errorf("one of two: %s", st.Phase)
	}
	st = MergeRestore(st, 2, []stashv1beta1.HostRestoreStats{{Hostname: "host-1", Phase: "Failed"}})
	if st.Phase != stashv1beta1.RestoreFailed || len(st.Stats) != 2 {
		t.Errorf("two of two, one failed: %+v", st)
	}
}

// A restore step's warning is a condition of its RestoreSession, which does
// not change the phase.
func TestMergeRestoreConditions(t *testing.T) {
	now := metav1.Now()
	st := MergeRestore(stashv1beta1.RestoreSessionStatus{}, 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}},
		stashv1beta1.Condition{Type: ConditionLatestOfSeveralInvokers, Status: "True", Reason: "SeveralInvokers", Message: "m", LastTransitionTime: now})
	if st.Phase != stashv1beta1.RestoreSucceeded || !IsConditionTrue(st.Conditions, ConditionLatestOfSeveralInvokers) || FindCondition(st.Conditions, ConditionLatestOfSeveralInvokers).Message != "m" {
		t.Errorf("status %+v", st)
	}
}

// TestRecordIntoEndedSession: a step's result changes a session that is
// still open and never one that has ended, whatever it reports.
func TestRecordIntoEndedSession(t *testing.T) {
	ok := []stashv1beta1.HostBackupStats{host("host-0", "Succeeded")}
	for _, tt := range []struct {
		phase   stashv1beta1.BackupSessionPhase
		refused bool
	}{
		{"", false},
		{stashv1beta1.BackupSessionPending, false},
		{stashv1beta1.BackupSessionRunning, false},
		{stashv1beta1.BackupSessionUnknown, false},
		{stashv1beta1.BackupSessionSucceeded, true},
		{stashv1beta1.BackupSessionFailed, true},
		{stashv1beta1.BackupSessionSkipped, true},
	} {
		t.Run("backup "+string(tt.phase), func(t *testing.T) {
			in := stashv1beta1.BackupSessionStatus{Phase: tt.phase, Targets: []stashv1beta1.BackupTargetStatus{{Ref: db, TotalHosts: ptr(1),
				Stats: []stashv1beta1.HostBackupStats{{Hostname: "host-0", Phase: "Failed", Error: "the operator's reason"}}}}}
			got, err := RecordBackupResult(in, db, 1, ok)
			if refused := errors.Is(err, ErrSessionEnded); refused != tt.refused {
				t.Fatalf("error %v, want refused=%v", err, tt.refused)
			}
			if tt.refused && (got.Phase != tt.phase || got.Targets[0].Stats[0].Error != "the operator's reason") {
				t.Errorf("an ended session changed: %+v", got)
			}
			if !tt.refused && got.Phase != stashv1beta1.BackupSessionSucceeded {
				t.Errorf("an open session did not take the result: %+v", got)
			}
		})
	}
	for _, tt := range []struct {
		phase   stashv1beta1.RestorePhase
		refused bool
	}{
		{"", false},
		{stashv1beta1.RestorePending, false},
		{stashv1beta1.RestoreRunning, false},
		{stashv1beta1.RestoreUnknown, false},
		{stashv1beta1.RestoreSucceeded, true},
		{stashv1beta1.RestoreFailed, true},
		{stashv1beta1.RestoreInvalid, true},
	} {
		t.Run("restore "+string(tt.phase), func(t *testing.T) {
			in := stashv1beta1.RestoreSessionStatus{Phase: tt.phase, TotalHosts: ptr(1),
				Stats: []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Failed", Error: "the operator's reason"}}}
			got, err := RecordRestoreResult(in, 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}})
			if refused := errors.Is(err, ErrSessionEnded); refused != tt.refused {
				t.Fatalf("error %v, want refused=%v", err, tt.refused)
			}
			if tt.refused && (got.Phase != tt.phase || got.Stats[0].Error != "the operator's reason") {
				t.Errorf("an ended session changed: %+v", got)
			}
			if !tt.refused && got.Phase != stashv1beta1.RestoreSucceeded {
				t.Errorf("an open session did not take the result: %+v", got)
			}
		})
	}
}
