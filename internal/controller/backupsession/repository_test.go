package backupsession

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
)

// TestRepositoryStatusFromReport: the operator copies a session's report
// into its Repository's status (in another namespace too); a report older
// than the Repository's last backup, from a session that finished late,
// changes nothing; a Repository that is gone is no error, and one the
// invoker may not use takes nothing.
func TestRepositoryStatusFromReport(t *testing.T) {
	ctx := context.Background()
	all := stashv1alpha1.FromNamespaces("All")
	repo := &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "backups"}}
	repo.Spec.UsagePolicy = &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{From: &all}}
	private := &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "private", Namespace: "backups"}}
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(repo, private).WithStatusSubresource(repo, private).Build()
	r := &Reconciler{Client: c, APIReader: c}
	bc := &stashv1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bc", Namespace: "demo"},
		Spec: stashv1beta1.BackupConfigurationSpec{Repository: stashv1beta1.ObjectReference{Name: "repo", Namespace: "backups"}}}
	yes := true
	t1 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	report := func(at time.Time, count int64) *stashv1beta1.RepositoryReport {
		return &stashv1beta1.RepositoryReport{Integrity: &yes, TotalSize: "1.000 MiB", SnapshotCount: count, SnapshotsRemovedOnLastCleanup: 1, Time: metav1.NewTime(at)}
	}
	get := func() stashv1alpha1.RepositoryStatus {
		got := &stashv1alpha1.Repository{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(repo), got); err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	if err := r.recordRepository(ctx, bc, report(t1, 3)); err != nil {
		t.Fatal(err)
	}
	st := get()
	if st.SnapshotCount != 3 || st.Integrity == nil || !*st.Integrity || st.TotalSize != "1.000 MiB" || st.SnapshotsRemovedOnLastCleanup != 1 ||
		st.FirstBackupTime == nil || !st.FirstBackupTime.Time.Equal(t1) || st.LastBackupTime == nil || !st.LastBackupTime.Time.Equal(t1) {
		t.Fatalf("Repository status %+v, want the report's figures at %s", st, t1)
	}
	if err := r.recordRepository(ctx, bc, report(t1.Add(time.Hour), 4)); err != nil {
		t.Fatal(err)
	}
	if st := get(); st.SnapshotCount != 4 || !st.FirstBackupTime.Time.Equal(t1) || !st.LastBackupTime.Time.Equal(t1.Add(time.Hour)) {
		t.Errorf("after a newer report: %+v", st)
	}
	if err := r.recordRepository(ctx, bc, report(t1.Add(30*time.Minute), 9)); err != nil {
		t.Fatal(err)
	}
	if st := get(); st.SnapshotCount != 4 {
		t.Errorf("an older report overwrote a newer one: %+v", st)
	}
	// A Repository the invoker may not use (its spec was pointed there
	// while the session ran) takes no report.
	other := bc.DeepCopy()
	other.Spec.Repository.Name = "private"
	if err := r.recordRepository(ctx, other, report(t1, 5)); err != nil {
		t.Fatal(err)
	}
	got := &stashv1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(private), got); err != nil || got.Status.LastBackupTime != nil {
		t.Errorf("a Repository of another namespace that does not allow demo took the report: %+v %v", got.Status, err)
	}
	gone := bc.DeepCopy()
	gone.Spec.Repository.Name = "deleted"
	if err := r.recordRepository(ctx, gone, report(t1, 1)); err != nil {
		t.Errorf("a Repository that is gone: %v", err)
	}
}
