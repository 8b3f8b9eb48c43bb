package operator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/status"
)

// A restore of several hosts ends when each has reported or can no longer
// report; a host that can no longer report fails by its own name.

// perReplicaRestore is a RestoreSession of one Job per replica.
func perReplicaRestore(name string, replicas int) string {
	return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: %s}
spec:
  task: {name: pvc-restore}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: "data-pg-${POD_ORDINAL}"}
    replicas: %d
    volumeMounts:
    - {name: data, mountPath: /restore/data}
    volumeClaimTemplates:
    - metadata: {name: "data-pg-${POD_ORDINAL}"}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
    rules:
    - snapshots: [latest]
`, name, replicas)
}

// TestRestoreJobGoneFailsItsOwnHost: of a restore's three Jobs, host-2's
// is deleted. host-2 fails, by its own name, and the others' results
// stand: the session ends when they report, not at its deadline.
func TestRestoreJobGoneFailsItsOwnHost(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	mustApply(t, c, ns, fixtures+"---"+perReplicaRestore("restore-pvc", 3))
	eventually(t, 20*time.Second, "Running with three hosts", func() error {
		rs := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
		if rs.Status.Phase != stashv1beta1.RestoreRunning || rs.Status.TotalHosts == nil || *rs.Status.TotalHosts != 3 {
			return fmt.Errorf("status %+v", rs.Status)
		}
		return nil
	})
	eventually(t, 15*time.Second, "host-2 Failed, alone", func() error {
		// A reconcile that started the session from a cache not yet
		// showing it Running may make the Job again: delete it again.
		err := c.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: plan.RestoreJobName("restore-pvc", 2), Namespace: ns}},
			client.PropagationPolicy(metav1.DeletePropagationBackground))
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		rs := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
		if len(rs.Status.Stats) != 1 || rs.Status.Stats[0].Hostname != "host-2" || rs.Status.Stats[0].Phase != "Failed" || !strings.Contains(rs.Status.Stats[0].Error, "gone") {
			return fmt.Errorf("stats %+v", rs.Status.Stats)
		}
		if rs.Status.Phase != stashv1beta1.RestoreRunning {
			return fmt.Errorf("phase %s with host-0 and host-1 still restoring", rs.Status.Phase)
		}
		return nil
	})
	rec := status.Kube{Client: c}
	for _, h := range []string{"host-0", "host-1"} {
		if _, err := rec.RecordRestore(ctx, ns, "restore-pvc", 0, []stashv1beta1.HostRestoreStats{{Hostname: h, Phase: "Succeeded"}}); err != nil {
			t.Fatal(err)
		}
	}
	rs := waitRestore(t, c, ns, "restore-pvc", stashv1beta1.RestoreFailed)
	got := map[string]stashv1beta1.HostPhase{}
	for _, s := range rs.Status.Stats {
		got[s.Hostname] = s.Phase
	}
	if got["host-0"] != "Succeeded" || got["host-1"] != "Succeeded" || got["host-2"] != "Failed" || len(got) != 3 {
		t.Errorf("hosts %v: want host-0 and host-1 Succeeded, host-2 Failed", got)
	}
}

// TestRestoreInitChannelLost: the channel of a restore into a
// StatefulSet's two pods is deleted mid-way. No host can report any more:
// both fail, and the session ends now, not at its deadline.
func TestRestoreInitChannelLost(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	sts := strings.Replace(workloadManifest("StatefulSet", "db", ""), "replicas: 1", "replicas: 2", 1)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir())+"---"+sts+"---"+restoreSession("db-restore", "StatefulSet", "db", "[{snapshots: [latest]}]"))
	waitRestore(t, c, ns, "db-restore", stashv1beta1.RestoreRunning)
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: plan.RestoreChannelName("db-restore"), Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	var rs *stashv1beta1.RestoreSession
	eventually(t, 30*time.Second, "RestoreSession Failed", func() error {
		rs = get(t, c, ns, "db-restore", &stashv1beta1.RestoreSession{})
		if rs.Status.Phase != stashv1beta1.RestoreFailed {
			return fmt.Errorf("phase %s, stats %+v", rs.Status.Phase, rs.Status.Stats)
		}
		return nil
	})
	got := map[string]string{}
	for _, s := range rs.Status.Stats {
		if s.Phase == "Failed" {
			got[s.Hostname] = s.Error
		}
	}
	if len(got) != 2 || !strings.Contains(got["host-0"], "channel") || !strings.Contains(got["host-1"], "channel") {
		t.Errorf("failed hosts %v: want host-0 and host-1, for the channel", got)
	}
}
