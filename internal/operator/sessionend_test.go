package operator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/status"
)

// Sessions that end must stay ended: a failed session's Jobs go, so that
// a step whose cause of failure clears (an image that becomes pullable, a
// pod that gets scheduled) never runs later, and a result reported into
// an ended session is refused rather than turning it Succeeded.

// stuckPod creates the pod of Job name the way the Job controller would,
// with its first container waiting on an image it may never pull: the
// step cannot start.
func stuckPod(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	ctx := context.Background()
	job := get(t, c, ns, name, &batchv1.Job{})
	labels := map[string]string{"batch.kubernetes.io/job-name": job.Name}
	for k, v := range job.Spec.Template.Labels {
		labels[k] = v
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-pod", Namespace: ns, Labels: labels}, Spec: job.Spec.Template.Spec}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	first := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)[0]
	pod.Status.Phase = corev1.PodPending
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: first.Name, Image: first.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "image is not present"}}}}
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// waitJobGone waits for Job name to be deleted (with no garbage collector
// here, a Job deleted in the background is simply gone).
func waitJobGone(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	eventually(t, 15*time.Second, "Job "+name+" deleted", func() error {
		j := &batchv1.Job{}
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, j)
		if apierrors.IsNotFound(err) || (err == nil && !j.DeletionTimestamp.IsZero()) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

func TestFailedBackupSessionStopsItsJob(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("pg-backup", ""))
	waitReady(t, c, ns, "pg-backup")
	name := createSession(t, c, ns, "pg-backup")
	waitSession(t, c, ns, name, stashv1beta1.BackupSessionRunning)
	stuckPod(t, c, ns, plan.BackupJobName(name))
	bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
	if msg := firstStatsError(bs); !strings.Contains(msg, "ErrImageNeverPull") {
		t.Errorf("session error %q, want the pod's cause", msg)
	}
	waitJobGone(t, c, ns, plan.BackupJobName(name))

	// Had the step run after all, its update-status is refused.
	rec := status.Kube{Client: c}
	target := bs.Status.Targets[0].Ref
	_, err := rec.RecordBackup(ctx, ns, name, target, 0, []stashv1beta1.HostBackupStats{{Hostname: "host-0", Phase: "Succeeded"}}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("recording into a Failed session: %v, want it refused", err)
	}
	if got := get(t, c, ns, name, &stashv1beta1.BackupSession{}); got.Status.Phase != stashv1beta1.BackupSessionFailed || firstStatsError(got) == "" {
		t.Errorf("session after a late result: %s %+v, want Failed as it was", got.Status.Phase, got.Status.Targets)
	}
}

func TestFailedRestoreSessionStopsItsJobs(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	mustApply(t, c, ns, fixtures+`---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: restore-pvc}
spec:
  task: {name: pvc-restore}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: "data-pg-${POD_ORDINAL}"}
    replicas: 2
    volumeMounts:
    - {name: data, mountPath: /restore/data}
    volumeClaimTemplates:
    - metadata: {name: "data-pg-${POD_ORDINAL}"}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
    rules:
    - snapshots: [latest]
`)
	waitRestore(t, c, ns, "restore-pvc", stashv1beta1.RestoreRunning)
	// host-1's step cannot start: host-1 fails and its Job goes, while
	// host-0's restores on.
	stuckPod(t, c, ns, plan.RestoreJobName("restore-pvc", 1))
	eventually(t, 15*time.Second, "host-1 Failed", func() error {
		rs := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
		if len(rs.Status.Stats) != 1 || rs.Status.Stats[0].Hostname != "host-1" || rs.Status.Stats[0].Phase != "Failed" {
			return fmt.Errorf("stats %+v", rs.Status.Stats)
		}
		return nil
	})
	waitJobGone(t, c, ns, plan.RestoreJobName("restore-pvc", 1))
	if j := get(t, c, ns, plan.RestoreJobName("restore-pvc", 0), &batchv1.Job{}); !j.DeletionTimestamp.IsZero() {
		t.Error("host-0's Job was deleted while it restored")
	}
	// host-0 reports (its Job then ends by itself); the session ends Failed.
	rec := status.Kube{Client: c}
	if _, err := rec.RecordRestore(ctx, ns, "restore-pvc", 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}}); err != nil {
		t.Fatal(err)
	}
	rs := waitRestore(t, c, ns, "restore-pvc", stashv1beta1.RestoreFailed)
	// host-1's step, had it run after all, cannot turn the session around.
	_, err := rec.RecordRestore(ctx, ns, "restore-pvc", 0, []stashv1beta1.HostRestoreStats{{Hostname: "host-1", Phase: "Succeeded"}})
	if err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("recording into a Failed session: %v, want it refused", err)
	}
	got := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
	if got.Status.Phase != stashv1beta1.RestoreFailed || fmt.Sprint(got.Status.Stats) != fmt.Sprint(rs.Status.Stats) {
		t.Errorf("session after a late result: %s %+v, want Failed with %+v", got.Status.Phase, got.Status.Stats, rs.Status.Stats)
	}
}

// TestEndedJobOfFailedSessionStays: a Job that has ended runs no pod
// again, so failing its session leaves it (and its pods' logs) for whoever
// looks into the failure.
func TestEndedJobOfFailedSessionStays(t *testing.T) {
	c, ns, name := runningBackup(t, "pg-backup", "")
	setJobCondition(t, c, ns, plan.BackupJobName(name), batchv1.JobFailed)
	waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
	time.Sleep(2 * time.Second)
	if j := get(t, c, ns, plan.BackupJobName(name), &batchv1.Job{}); !j.DeletionTimestamp.IsZero() {
		t.Error("the ended Job of a failed session was deleted, and its logs with it")
	}
}
