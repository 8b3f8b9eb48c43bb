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

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/plan"
)

// TestStepPodsPassPodSecurityAdmission asks the API server's own Pod
// Security admission about the planner's pods: a PostgreSQL backup and
// restore are admitted where restricted is enforced; the PVC steps, which
// run as root, are refused there and admitted under baseline. The pods
// are made from the Jobs' templates directly (there is no Job controller
// here), which is what the Job controller would submit.
func TestStepPodsPassPodSecurityAdmission(t *testing.T) {
	c := newClient(t)
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	restricted := podSecurityNamespace(t, c, plan.LevelRestricted)
	baseline := podSecurityNamespace(t, c, plan.LevelBaseline)

	for _, tc := range []struct {
		task, ns string
		admit    bool
	}{
		{"postgres-backup-16.1", restricted, true},
		{"postgres-restore-16.1", restricted, true},
		{"mariadb-backup-10.6.23", restricted, true},
		{"pvc-backup", restricted, false},
		{"pvc-restore", restricted, false},
		{"pvc-backup", baseline, true},
		{"pvc-restore", baseline, true},
	} {
		t.Run(tc.task+"-in-"+tc.ns, func(t *testing.T) {
			job := stepJob(t, cat, tc.task, tc.ns)
			// The namespace's label reaches the admission plugin's cache
			// a moment after the namespace exists: retry an unexpected
			// answer until it is settled.
			eventually(t, 15*time.Second, "Pod Security admission", func() error {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: job.Name + "-", Namespace: tc.ns, Labels: job.Spec.Template.Labels},
					Spec:       job.Spec.Template.Spec,
				}
				err := c.Create(context.Background(), pod)
				switch {
				case tc.admit && err != nil:
					return fmt.Errorf("refused: %w", err)
				case !tc.admit && err == nil:
					_ = c.Delete(context.Background(), pod)
					return fmt.Errorf("admitted under %s", tc.ns)
				case !tc.admit && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`)):
					return fmt.Errorf("refused for another reason: %w", err)
				}
				return nil
			})
		})
	}
}

// podSecurityNamespace makes a namespace that enforces a Pod Security
// level, with the ServiceAccounts the planned pods name.
func podSecurityNamespace(t *testing.T, c client.Client, level string) string {
	t.Helper()
	ns := newNamespace(t, c)
	n := &corev1.Namespace{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["pod-security.kubernetes.io/enforce"] = level
	if err := c.Update(context.Background(), n); err != nil {
		t.Fatalf("label namespace %s: %v", ns, err)
	}
	for _, sa := range []string{plan.BackupServiceAccount("app-backup"), plan.RestoreServiceAccount("app-restore")} {
		if err := c.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// stepJob plans the Job of a catalog Task in ns, with an S3 repository.
func stepJob(t *testing.T, cat plan.Catalog, task, ns string) *batchv1.Job {
	t.Helper()
	repo := &stashv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
			StorageSecretName: "repo-secret", S3: &stashv1alpha1.S3Spec{Endpoint: "s3.example.com", Bucket: "b"},
		}},
	}
	target := stashv1beta1.TargetRef{APIVersion: "appcatalog.appscode.com/v1alpha1", Kind: "AppBinding", Name: "db"}
	if strings.HasPrefix(task, "pvc-") {
		target = stashv1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data"}
	}
	if strings.Contains(task, "-backup") {
		bc := &stashv1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app-backup", Namespace: ns}}
		bc.Spec.Task = stashv1beta1.TaskRef{Name: task}
		bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: target}
		bc.Spec.Repository = stashv1beta1.ObjectReference{Name: repo.Name}
		job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "app-backup-1", Repository: repo, Catalog: cat, Image: testImage})
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "app-restore", Namespace: ns}}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: task}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: target, Rules: []stashv1beta1.Rule{{Snapshots: []string{"latest"}}}}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: repo.Name}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat, Image: testImage})
	if err != nil {
		t.Fatal(err)
	}
	return jobs[0]
}
