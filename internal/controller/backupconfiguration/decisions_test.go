package backupconfiguration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/status"
)

// The reconciler's decisions, one case at a time on a fake client; the
// envtest suite (internal/operator) runs them against a real API server.

func pvcConfig(name string, mutate func(*stashv1beta1.BackupConfiguration)) *stashv1beta1.BackupConfiguration {
	bc := &stashv1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Generation: 1},
		Spec: stashv1beta1.BackupConfigurationSpec{
			Schedule:        "*/5 * * * *",
			Repository:      stashv1beta1.ObjectReference{Name: "missing"},
			RetentionPolicy: stashv1alpha1.RetentionPolicy{Name: "keep-last-5", KeepLast: 5},
		},
	}
	bc.Spec.Task = stashv1beta1.TaskRef{Name: "pvc-backup"}
	bc.Spec.Target = &stashv1beta1.BackupTarget{
		Ref:   stashv1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data"},
		Paths: []string{"/stash-data"},
	}
	if mutate != nil {
		mutate(bc)
	}
	return bc
}

func reconcileOnce(t *testing.T, c client.Client, bc *stashv1beta1.BackupConfiguration) (ctrl.Result, *stashv1beta1.BackupConfiguration) {
	t.Helper()
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Client: c, Events: record.NewFakeRecorder(10), Config: controller.Config{Catalog: cat, Now: func() time.Time { return time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC) }}}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bc)})
	if err != nil {
		t.Fatal(err)
	}
	got := &stashv1beta1.BackupConfiguration{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(bc), got); err != nil {
		t.Fatal(err)
	}
	return res, got
}

// TestDecisions: a reference that may appear later leaves the invoker
// NotReady and looked at again; a spec no retry can mend is Invalid, with
// the field named, and not requeued; a second reconcile of an unchanged
// object writes nothing.
func TestDecisions(t *testing.T) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "demo"}}
	for _, tc := range []struct {
		name      string
		bc        *stashv1beta1.BackupConfiguration
		phase     stashv1beta1.BackupInvokerPhase
		requeue   time.Duration
		condition string // a False condition's type
		message   string // part of its message
	}{
		{"missing repository", pvcConfig("a", nil), stashv1beta1.InvokerNotReady, 15 * time.Second, CondRepositoryFound, "demo/missing does not exist"},
		{"sidecar target without volume mounts", pvcConfig("b", func(bc *stashv1beta1.BackupConfiguration) {
			bc.Spec.Task.Name = ""
			bc.Spec.Target.Ref = stashv1beta1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
			bc.Spec.Target.Paths = []string{"/data"}
		}), stashv1beta1.InvokerInvalid, 0, CondValidationPassed, "spec.target.volumeMounts"},
		{"sidecar target with a Repository of another namespace", pvcConfig("c", func(bc *stashv1beta1.BackupConfiguration) {
			bc.Spec.Task.Name = ""
			bc.Spec.Target.Ref = stashv1beta1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
			bc.Spec.Target.Paths = []string{"/data"}
			bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			bc.Spec.Repository.Namespace = "shared"
		}), stashv1beta1.InvokerInvalid, 0, CondValidationPassed, "spec.repository.namespace"},
		{"sidecar target of an unknown kind", pvcConfig("d", func(bc *stashv1beta1.BackupConfiguration) {
			bc.Spec.Task.Name = ""
			bc.Spec.Target.Ref = stashv1beta1.TargetRef{APIVersion: "apps.openshift.io/v1", Kind: "DeploymentConfig", Name: "web"}
			bc.Spec.Target.Paths = []string{"/data"}
			bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}), stashv1beta1.InvokerInvalid, 0, CondValidationPassed, "spec.target.ref.kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(tc.bc, pvc.DeepCopy()).WithStatusSubresource(tc.bc).Build()
			res, got := reconcileOnce(t, c, tc.bc)
			if got.Status.Phase != tc.phase || res.RequeueAfter != tc.requeue {
				t.Errorf("phase %q, requeue after %s; want %q, %s", got.Status.Phase, res.RequeueAfter, tc.phase, tc.requeue)
			}
			cond := status.FindCondition(got.Status.Conditions, tc.condition)
			if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, tc.message) {
				t.Errorf("condition %s = %+v, want False naming %q", tc.condition, cond, tc.message)
			}
			if got.Status.ObservedGeneration != 1 {
				t.Errorf("observedGeneration %d, want 1", got.Status.ObservedGeneration)
			}
			rv := got.ResourceVersion
			if _, again := reconcileOnce(t, c, tc.bc); again.ResourceVersion != rv {
				t.Errorf("an unchanged status was written again: resourceVersion %s → %s", rv, again.ResourceVersion)
			}
		})
	}
}
