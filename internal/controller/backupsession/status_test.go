package backupsession

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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
	r := &Reconciler{Client: c, APIReader: c}
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

// TestTotalHosts: a StatefulSet has a host per replica, a DaemonSet one per
// node, the other kinds one; a workload with no pod is refused whatever
// its kind, since no host would ever take the session.
func TestTotalHosts(t *testing.T) {
	n := func(v int32) *int32 { return &v }
	meta := metav1.ObjectMeta{Name: "app"}
	for _, tt := range []struct {
		name    string
		obj     client.Object
		want    int32
		refused string
	}{
		{"StatefulSet of 3", &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: n(3)}}, 3, ""},
		{"StatefulSet, replicas unset", &appsv1.StatefulSet{ObjectMeta: meta}, 1, ""},
		{"StatefulSet of 0", &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: n(0)}}, 0, "StatefulSet app has 0 replicas"},
		{"Deployment of 3", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: n(3)}}, 1, ""},
		{"Deployment of 0", &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: n(0)}}, 0, "Deployment app has 0 replicas"},
		{"ReplicaSet of 0", &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Replicas: n(0)}}, 0, "ReplicaSet app has 0 replicas"},
		{"ReplicationController of 2", &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Replicas: n(2)}}, 1, ""},
		{"ReplicationController of 0", &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Replicas: n(0)}}, 0, "ReplicationController app has 0 replicas"},
		{"DaemonSet on 4 nodes", &appsv1.DaemonSet{ObjectMeta: meta, Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 4}}, 4, ""},
		{"DaemonSet on none", &appsv1.DaemonSet{ObjectMeta: meta}, 0, "DaemonSet app runs on no node"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := totalHosts(tt.obj)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Errorf("totalHosts = %d, %v; want refused with %q", got, err, tt.refused)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("totalHosts = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
