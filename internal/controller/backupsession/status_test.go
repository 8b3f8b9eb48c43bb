package backupsession

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
)

// TestStatusWrittenOnlyWhenChanged: setting a session's status to what it
// already is makes no write (the object's resourceVersion stays); a change
// is written.
func TestStatusWrittenOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	bs := &stashv1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "demo"}}
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(bs).WithStatusSubresource(bs).Build()
	r := &Reconciler{Client: c}
	get := func() *stashv1beta1.BackupSession {
		got := &stashv1beta1.BackupSession{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(bs), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	cur := get()
	before := cur.ResourceVersion
	if err := r.setStatus(ctx, cur, stashv1beta1.BackupSessionStatus{Phase: stashv1beta1.BackupSessionRunning}); err != nil {
		t.Fatal(err)
	}
	written := get()
	if written.Status.Phase != stashv1beta1.BackupSessionRunning || written.ResourceVersion == before {
		t.Fatalf("a changed status was not written: phase %q, resourceVersion %s → %s", written.Status.Phase, before, written.ResourceVersion)
	}
	rv := written.ResourceVersion
	if err := r.setStatus(ctx, written, *written.Status.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if again := get(); again.ResourceVersion != rv {
		t.Errorf("an unchanged status was written again: resourceVersion %s → %s", rv, again.ResourceVersion)
	}
}
