package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// tenant creates namespace ns (with extra namespace labels and objects)
// holding its own copy of the PostgreSQL AppBinding, a Repository under its
// own prefix and a BackupConfiguration of them, all pointing at demo's
// server and bucket.
func (e *env) tenant(ns, labels, extra string) {
	e.t.Helper()
	svc := &corev1.Service{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "pg"}, svc); err != nil {
		e.t.Fatal(err)
	}
	s3 := &corev1.Secret{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "s3-secret"}, s3); err != nil {
		e.t.Fatal(err)
	}
	repo := e.repository("s3-repo")
	e.kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s, labels: {%[2]s}}
---
apiVersion: v1
kind: Secret
metadata: {name: pg-auth, namespace: %[1]s}
stringData: {username: postgres, password: e2e-pg-password}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {RESTIC_PASSWORD: e2e-repo-password, AWS_ACCESS_KEY_ID: %[3]s, AWS_SECRET_ACCESS_KEY: %[4]s}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: s3-repo, namespace: %[1]s}
spec:
  backend:
    s3: {endpoint: "%[5]s", bucket: stash, prefix: %[1]s/pg}
    storageSecretName: s3-secret
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg, namespace: %[1]s}
spec:
  type: kubedb.com/postgres
  version: "15.1"
  clientConfig:
    url: postgresql://%[6]s:5432/postgres?sslmode=disable
  secret: {name: pg-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: pg-backup, namespace: %[1]s}
spec:
  schedule: "0 0 1 1 *"
  task: {name: postgres-backup-15.1}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
  retentionPolicy: {name: keep-last-2, keepLast: 2, prune: true}
%[7]s`, ns, labels, s3.Data["AWS_ACCESS_KEY_ID"], s3.Data["AWS_SECRET_ACCESS_KEY"], repo.Spec.Backend.S3.Endpoint, svc.Spec.ClusterIP, extra))
	eventually(e.t, 60*time.Second, "BackupConfiguration Ready in "+ns, func() error {
		bc := &stashv1beta1.BackupConfiguration{}
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "pg-backup"}, bc); err != nil {
			return err
		}
		if bc.Status.Phase != stashv1beta1.InvokerReady {
			return fmt.Errorf("phase %q %+v", bc.Status.Phase, bc.Status.Conditions)
		}
		return nil
	})
}

func (e *env) triggerIn(ns string) string {
	e.t.Helper()
	out := e.must("", e.stash, "trigger", "pg-backup", "-n", ns)
	m := sessionName.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("trigger output %q", out)
	}
	return m[2]
}

// podSecurity: a PostgreSQL backup runs in a namespace that enforces the
// restricted Pod Security Standard; a namespace whose ResourceQuota refuses
// the Job's pod ends the session Failed with the quota named, and the next
// session runs once the quota allows it; a step pod deleted mid-backup
// ends its session Failed.
func (e *env) podSecurity(t *testing.T) {
	e.t = t
	e.tenant("restricted", "pod-security.kubernetes.io/enforce: restricted", "")
	bs := e.waitSessionIn("restricted", e.triggerIn("restricted"), stashv1beta1.BackupSessionSucceeded)
	t.Logf("backup %s under restricted Pod Security: %s", bs.Name, bs.Status.Phase)

	e.tenant("quota", `team: q`, `---
apiVersion: v1
kind: ResourceQuota
metadata: {name: no-pods, namespace: quota}
spec:
  hard: {pods: "0"}
`)
	start := time.Now()
	name := e.triggerIn("quota")
	failed := e.waitSessionIn("quota", name, stashv1beta1.BackupSessionFailed)
	msg := ""
	for _, tg := range failed.Status.Targets {
		for _, st := range tg.Stats {
			msg += st.Error
		}
	}
	if !strings.Contains(msg, "exceeded quota: no-pods") {
		t.Errorf("session failed with %q, want the quota named", msg)
	}
	t.Logf("quota-refused session failed in %s: %s", time.Since(start).Round(time.Second), msg)
	e.must("", e.kubectl, "delete", "resourcequota", "-n", "quota", "no-pods")
	e.waitSessionIn("quota", e.triggerIn("quota"), stashv1beta1.BackupSessionSucceeded)

	// A step pod deleted mid-backup: a lock on the table holds pg_dump
	// (it waits for its share lock) while the pod is deleted.
	locker := exec.Command(e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql",
		"-h", "/tmp", "-U", "postgres", "-d", "app", "-c", "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300);")
	locker.Env = append(locker.Environ(), "KUBECONFIG="+e.kubeconfig)
	if err := locker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = locker.Process.Kill()
		_ = locker.Wait()
		e.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()")
	}()
	name = e.triggerIn("demo")
	e.waitSession(name, stashv1beta1.BackupSessionRunning)
	var pod string
	eventually(t, 2*time.Minute, "the backup step running", func() error {
		var pods corev1.PodList
		if err := e.c.List(context.Background(), &pods, client.InNamespace("demo"), client.HasLabels{"batch.kubernetes.io/job-name"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if !strings.Contains(p.Labels["batch.kubernetes.io/job-name"], name) {
				continue
			}
			// The backup step is an init container: the pod is Pending
			// while it runs.
			for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
				if cs.State.Running != nil {
					pod = p.Name
					return nil
				}
			}
		}
		return fmt.Errorf("no running pod of %s", name)
	})
	e.must("", e.kubectl, "delete", "pod", "-n", "demo", pod, "--wait=false")
	lost := e.waitSession(name, stashv1beta1.BackupSessionFailed)
	t.Logf("session %s with its pod deleted: %+v", name, lost.Status.Targets[0].Stats)
}
