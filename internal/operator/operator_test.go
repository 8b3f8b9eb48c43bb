package operator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/backupconfiguration"
	"github.com/stash-backup/stash/internal/controller/backupsession"
	repocontroller "github.com/stash-backup/stash/internal/controller/repository"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/status"
	"github.com/stash-backup/stash/internal/testserver"
)

// fixtures: a PostgreSQL AppBinding, an S3 Repository and its Secret, and
// a BackupConfiguration of them (Stash's documented shapes).
const fixtures = `
apiVersion: v1
kind: Secret
metadata: {name: pg-auth}
stringData: {username: postgres, password: pw}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg}
spec:
  type: kubedb.com/postgres
  version: "14.0"
  clientConfig:
    service: {name: pg, port: 5432, scheme: postgresql, query: sslmode=disable}
  secret: {name: pg-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-secret}
stringData: {RESTIC_PASSWORD: pw, AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: key}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: s3-repo}
spec:
  backend:
    s3: {endpoint: "http://127.0.0.1:9", bucket: stash, prefix: pg}
    storageSecretName: s3-secret
`

func backupConfiguration(name, extra string) string {
	return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: %s}
spec:
  schedule: "*/5 * * * *"
  task: {name: postgres-backup-14.0}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
%s`, name, extra)
}

func get[T client.Object](t testing.TB, c client.Client, ns, name string, obj T) T {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return obj
}

func waitReady(t *testing.T, c client.Client, ns, bc string) {
	t.Helper()
	eventually(t, 20*time.Second, "BackupConfiguration Ready", func() error {
		o := &stashv1beta1.BackupConfiguration{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: bc}, o); err != nil {
			return err
		}
		if o.Status.Phase != stashv1beta1.InvokerReady {
			return fmt.Errorf("phase %q, conditions %+v", o.Status.Phase, o.Status.Conditions)
		}
		return nil
	})
}

func waitSession(t *testing.T, c client.Client, ns, name string, want stashv1beta1.BackupSessionPhase) *stashv1beta1.BackupSession {
	t.Helper()
	bs := &stashv1beta1.BackupSession{}
	eventually(t, 20*time.Second, "BackupSession "+string(want), func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, bs); err != nil {
			return err
		}
		if bs.Status.Phase != want {
			return fmt.Errorf("phase %q: %+v", bs.Status.Phase, bs.Status)
		}
		return nil
	})
	return bs
}

// runningBackup starts the operator, applies the fixtures and a
// BackupConfiguration named bcName (with extra spec lines) into a new
// namespace, and returns a session of it once Running.
func runningBackup(t *testing.T, bcName, extra string) (c client.Client, ns, session string) {
	t.Helper()
	startOperator(t)
	c = newClient(t)
	ns = newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration(bcName, extra))
	waitReady(t, c, ns, bcName)
	session = createSession(t, c, ns, bcName)
	waitSession(t, c, ns, session, stashv1beta1.BackupSessionRunning)
	return c, ns, session
}

func createSession(t *testing.T, c client.Client, ns, bcName string) string {
	t.Helper()
	bc := get(t, c, ns, bcName, &stashv1beta1.BackupConfiguration{})
	bs := plan.NewBackupSession(bc, time.Now(), 0)
	bs.Name, bs.GenerateName = "", bcName+"-"
	if err := c.Create(context.Background(), bs); err != nil {
		t.Fatal(err)
	}
	return bs.Name
}

// setJobCondition does what the Job controller would.
func setJobCondition(t *testing.T, c client.Client, ns, name string, typ batchv1.JobConditionType) {
	t.Helper()
	job := get(t, c, ns, name, &batchv1.Job{})
	now := metav1.Now()
	job.Status.StartTime = &now
	if typ == batchv1.JobComplete {
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
		job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now})
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now})
	}
	job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now})
	if err := c.Status().Update(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

func TestBackupConfigurationCronJobAndPause(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("pg-backup", ""))
	waitReady(t, c, ns, "pg-backup")

	bc := get(t, c, ns, "pg-backup", &stashv1beta1.BackupConfiguration{})
	for _, typ := range []string{backupconfiguration.CondRepositoryFound, backupconfiguration.CondBackendSecretFound, backupconfiguration.CondBackupTargetFound, backupconfiguration.CondCronJobCreated, backupconfiguration.CondValidationPassed} {
		if !status.IsConditionTrue(bc.Status.Conditions, typ) {
			t.Errorf("condition %s not True: %+v", typ, bc.Status.Conditions)
		}
	}
	// The defaulting webhook filled in the repository's namespace.
	if bc.Spec.Repository.Namespace != ns {
		t.Errorf("spec.repository.namespace = %q, want %q (defaulting webhook)", bc.Spec.Repository.Namespace, ns)
	}
	cj := get(t, c, ns, backupconfiguration.TriggerName("pg-backup"), &batchv1.CronJob{})
	if cj.Spec.Schedule != "*/5 * * * *" || cj.Spec.Suspend == nil || *cj.Spec.Suspend {
		t.Errorf("CronJob schedule %q suspend %v", cj.Spec.Schedule, cj.Spec.Suspend)
	}
	ctr := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if ctr.Image != testImage.String() || strings.Join(ctr.Args, " ") != "create-backupsession --invoker-kind=BackupConfiguration --invoker-name=pg-backup --namespace="+ns {
		t.Errorf("trigger container %s %v", ctr.Image, ctr.Args)
	}
	if v := plan.PodSecurityViolations(plan.LevelRestricted, &cj.Spec.JobTemplate.Spec.Template.Spec); len(v) > 0 {
		t.Errorf("trigger pod does not meet restricted Pod Security: %v", v)
	}
	// A trigger pod that never runs (Pending, ImagePullBackOff) must not
	// hold the ForbidConcurrent CronJob's every later schedule.
	if d := cj.Spec.JobTemplate.Spec.ActiveDeadlineSeconds; d == nil || *d != int64(backupconfiguration.TriggerJobDeadline.Seconds()) || *d <= 0 {
		t.Errorf("trigger Job activeDeadlineSeconds %v, want %v", d, backupconfiguration.TriggerJobDeadline)
	}
	if cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName != "stash-trigger-pg-backup" {
		t.Errorf("CronJob service account %q", cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName)
	}
	role := get(t, c, ns, "stash-trigger-pg-backup", &rbacv1.Role{})
	if !grants(role, "stash.appscode.com", "backupsessions", "create") || grants(role, "", "secrets", "get") {
		t.Errorf("trigger Role is not least privilege: %+v", role.Rules)
	}
	get(t, c, ns, "stash-trigger-pg-backup", &rbacv1.RoleBinding{})

	// paused suspends the CronJob; resuming lifts it.
	for _, paused := range []bool{true, false} {
		bc := get(t, c, ns, "pg-backup", &stashv1beta1.BackupConfiguration{})
		patch := client.MergeFrom(bc.DeepCopy())
		bc.Spec.Paused = paused
		if err := c.Patch(context.Background(), bc, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, fmt.Sprintf("CronJob suspend=%v", paused), func() error {
			cj := get(t, c, ns, backupconfiguration.TriggerName("pg-backup"), &batchv1.CronJob{})
			if cj.Spec.Suspend == nil || *cj.Spec.Suspend != paused {
				return fmt.Errorf("suspend %v", cj.Spec.Suspend)
			}
			return nil
		})
	}
}

func grants(r *rbacv1.Role, group, resource, verb string) bool {
	for _, rule := range r.Rules {
		if contains(rule.APIGroups, group) && contains(rule.Resources, resource) && contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestBackupConfigurationNotReadyUntilRepositoryExists(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	// The BackupConfiguration comes first: admitted with a warning, then
	// NotReady until its Repository appears.
	mustApply(t, c, ns, backupConfiguration("early", ""))
	eventually(t, 10*time.Second, "NotReady", func() error {
		bc := get(t, c, ns, "early", &stashv1beta1.BackupConfiguration{})
		if bc.Status.Phase != stashv1beta1.InvokerNotReady {
			return fmt.Errorf("phase %q", bc.Status.Phase)
		}
		if cd := status.FindCondition(bc.Status.Conditions, backupconfiguration.CondRepositoryFound); cd == nil || cd.Status != metav1.ConditionFalse {
			return fmt.Errorf("RepositoryFound: %+v", cd)
		}
		return nil
	})
	mustApply(t, c, ns, fixtures)
	waitReady(t, c, ns, "early")

	// A Task that does not exist is also a missing reference: NotReady,
	// with the validation condition naming it.
	mustApply(t, c, ns, strings.Replace(backupConfiguration("typo", ""), "postgres-backup-14.0", "postgres-backup-0.0", 1))
	eventually(t, 10*time.Second, "NotReady for a missing Task", func() error {
		bc := get(t, c, ns, "typo", &stashv1beta1.BackupConfiguration{})
		cd := status.FindCondition(bc.Status.Conditions, backupconfiguration.CondValidationPassed)
		if bc.Status.Phase != stashv1beta1.InvokerNotReady || cd == nil || cd.Status != metav1.ConditionFalse || !strings.Contains(cd.Message, "postgres-backup-0.0") {
			return fmt.Errorf("phase %q, ValidationPassed %+v", bc.Status.Phase, cd)
		}
		return nil
	})
}

func TestWebhooksRejectInvalidObjects(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures)
	cases := []struct {
		name, manifest, want string
	}{
		{"bad schedule", strings.Replace(backupConfiguration("bad-cron", ""), `"*/5 * * * *"`, `"every five minutes"`, 1), "spec.schedule"},
		{"workload without paths", `
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: no-paths}
spec:
  schedule: "@hourly"
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: apps/v1, kind: Deployment, name: app}
  retentionPolicy: {name: keep-last-5, keepLast: 5}
`, "spec.target.paths"},
		{"secret without password", `
apiVersion: v1
kind: Secret
metadata: {name: nopw}
stringData: {AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: key}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: nopw}
spec:
  backend:
    s3: {endpoint: "http://127.0.0.1:9", bucket: stash}
    storageSecretName: nopw
`, "RESTIC_PASSWORD"},
		{"two catch-all restore rules", `
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: two-rules}
spec:
  task: {name: postgres-restore-14.0}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules:
    - snapshots: [latest]
    - snapshots: [abc]
`, "rules"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := apply(t, c, ns, tc.manifest)
			if err == nil {
				t.Fatalf("admitted; want a rejection naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestWebhookOutageDoesNotBlock(t *testing.T) {
	op := startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	op.stop()
	// failurePolicy Ignore: with the operator down, Stash objects are
	// still admitted, and other kinds never go through the webhook.
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("while-down", ""))
	if err := c.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	// When the operator returns, it reconciles what was admitted.
	startOperator(t)
	waitReady(t, c, ns, "while-down")
}

func TestBackupSessionSucceeds(t *testing.T) {
	op := startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("pg-backup", ""))
	waitReady(t, c, ns, "pg-backup")
	name := createSession(t, c, ns, "pg-backup")
	bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionRunning)
	if len(bs.Status.Targets) != 1 || bs.Status.Targets[0].TotalHosts == nil || *bs.Status.Targets[0].TotalHosts != 1 || bs.Status.Targets[0].Phase != "Running" {
		t.Fatalf("targets %+v", bs.Status.Targets)
	}

	job := get(t, c, ns, plan.BackupJobName(name), &batchv1.Job{})
	spec := job.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Args[0] != "backup-pg" || spec.Containers[0].Args[0] != "update-status" {
		t.Fatalf("Job steps: init %v main %v", spec.InitContainers, spec.Containers)
	}
	if spec.Containers[0].Image != testImage.String() {
		t.Errorf("update-status image %q, want the operator's %q", spec.Containers[0].Image, testImage)
	}
	if spec.ServiceAccountName != "stash-backup-pg-backup" {
		t.Errorf("service account %q", spec.ServiceAccountName)
	}
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].UID != bs.UID {
		t.Errorf("Job owner %+v, want the BackupSession", job.OwnerReferences)
	}
	role := get(t, c, ns, "stash-backup-pg-backup", &rbacv1.Role{})
	if !grants(role, "stash.appscode.com", "backupsessions/status", "update") || !grants(role, "", "secrets", "get") || grants(role, "", "secrets", "list") {
		t.Errorf("backup Role: %+v", role.Rules)
	}

	// What update-status does in the Job's last container, with what the
	// post-backup actions found in the repository.
	rec := status.Kube{Client: c}
	n := int64(1)
	yes := true
	report := &stashv1beta1.RepositoryReport{Integrity: &yes, TotalSize: "2.000 MiB", SnapshotCount: 1, Time: metav1.Now()}
	if _, err := rec.RecordBackup(context.Background(), ns, name, bs.Status.Targets[0].Ref, 1, []stashv1beta1.HostBackupStats{{
		Hostname: "host-0", Phase: "Succeeded", Duration: "3s",
		Snapshots: []stashv1beta1.SnapshotStats{{Name: "abcd1234", Path: "/dumpfile.sql", TotalSize: "2.000 MiB", Uploaded: "1.000 MiB", FileStats: stashv1beta1.FileStats{TotalFiles: &n}}},
	}}, nil, report); err != nil {
		t.Fatal(err)
	}
	setJobCondition(t, c, ns, job.Name, batchv1.JobComplete)
	eventually(t, 10*time.Second, "history cleaned and metrics", func() error {
		bs := get(t, c, ns, name, &stashv1beta1.BackupSession{})
		if bs.Status.Phase != stashv1beta1.BackupSessionSucceeded || !status.IsConditionTrue(bs.Status.Conditions, backupsession.CondHistoryCleaned) ||
			!status.IsConditionTrue(bs.Status.Conditions, backupsession.CondMetricsPushed) || bs.Status.SessionDuration == "" {
			return fmt.Errorf("%+v", bs.Status)
		}
		return nil
	})
	// The operator, the Repository status's one writer, copied the report.
	eventually(t, 10*time.Second, "Repository status from the session's report", func() error {
		repo := get(t, c, ns, "s3-repo", &stashv1alpha1.Repository{})
		if repo.Status.SnapshotCount != 1 || repo.Status.Integrity == nil || !*repo.Status.Integrity || repo.Status.TotalSize != "2.000 MiB" || repo.Status.LastBackupTime == nil {
			return fmt.Errorf("%+v", repo.Status)
		}
		return nil
	})
	body := scrape(t, op.metricsAddr)
	for _, want := range []string{
		`stash_appscode_com_backupsession_success{driver="Restic",invoker_kind="BackupConfiguration",invoker_name="pg-backup",namespace="` + ns + `",repository="s3-repo"} 1`,
		`stash_backup_host_data_size_bytes{driver="Restic",hostname="host-0",invoker_kind="BackupConfiguration",invoker_name="pg-backup",kind="AppBinding",name="pg",namespace="` + ns + `",repository="s3-repo"} 2.097152e+06`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	assertEvent(t, c, ns, name, "Host Backup Succeeded")
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertEvent(t *testing.T, c client.Client, ns, obj, reason string) {
	t.Helper()
	assertEventWithin(t, c, ns, obj, reason, 10*time.Second)
}

func assertEventWithin(t *testing.T, c client.Client, ns, obj, reason string, d time.Duration) {
	t.Helper()
	eventually(t, d, "event "+reason, func() error {
		var evs corev1.EventList
		if err := c.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == obj && e.Reason == reason {
				return nil
			}
			seen = append(seen, e.InvolvedObject.Name+":"+e.Reason)
		}
		return fmt.Errorf("events: %v", seen)
	})
}

func TestBackupSessionFailsWithStepError(t *testing.T) {
	c, ns, name := runningBackup(t, "pg-backup", "")
	jobName := plan.BackupJobName(name)
	// The step crashed: its pod shows the termination message (last log
	// lines, by the planner's FallbackToLogsOnError).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: jobName + "-x", Namespace: ns, Labels: map[string]string{"batch.kubernetes.io/job-name": jobName}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	if err := c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodFailed
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "postgres-backup-14-0-0", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "dumping table big\nkilled"}}}}
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	setJobCondition(t, c, ns, jobName, batchv1.JobFailed)
	bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
	st := bs.Status.Targets[0].Stats
	if len(st) != 1 || st[0].Phase != "Failed" || !strings.Contains(st[0].Error, "exited with code 137") || !strings.Contains(st[0].Error, "killed") {
		t.Fatalf("host stats %+v", st)
	}
	assertEvent(t, c, ns, name, "BackupSession Failed")
}

func TestBackupSessionNeverStuckRunning(t *testing.T) {
	op := startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("pg-backup", ""))
	waitReady(t, c, ns, "pg-backup")
	name := createSession(t, c, ns, "pg-backup")
	waitSession(t, c, ns, name, stashv1beta1.BackupSessionRunning)

	// A second session while one runs is skipped, as in Stash.
	second := createSession(t, c, ns, "pg-backup")
	bs := waitSession(t, c, ns, second, stashv1beta1.BackupSessionSkipped)
	if cd := status.FindCondition(bs.Status.Conditions, backupsession.CondBackupSkipped); cd == nil || cd.Reason != "SkippedTakingNewBackup" {
		t.Errorf("skip condition %+v", cd)
	}

	// The operator goes away; meanwhile the Job disappears (deleted by
	// hand, or lost with its node). The next operator fails the session
	// instead of leaving it Running (Stash #1170, #1488).
	op.stop()
	if err := c.Delete(context.Background(), &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: plan.BackupJobName(name), Namespace: ns}},
		client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	startOperator(t)
	bs = waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
	if e := bs.Status.Targets[0].Stats[0].Error; !strings.Contains(e, "gone") {
		t.Errorf("error %q", e)
	}
}

func TestBackupSessionTimeOutAndHistory(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+"---"+backupConfiguration("pg-backup", "  timeOut: 2s\n  backupHistoryLimit: 1\n"))
	waitReady(t, c, ns, "pg-backup")
	var names []string
	for i := 0; i < 3; i++ {
		name := createSession(t, c, ns, "pg-backup")
		bs := waitSession(t, c, ns, name, stashv1beta1.BackupSessionFailed)
		if !status.IsConditionTrue(bs.Status.Conditions, backupsession.CondDeadlineExceeded) {
			t.Fatalf("no DeadlineExceeded: %+v", bs.Status.Conditions)
		}
		names = append(names, name)
		eventually(t, 10*time.Second, "finished", func() error {
			bs := get(t, c, ns, name, &stashv1beta1.BackupSession{})
			if status.FindCondition(bs.Status.Conditions, backupsession.CondHistoryCleaned) == nil {
				return fmt.Errorf("not finished")
			}
			return nil
		})
	}
	// backupHistoryLimit 1: of three finished sessions, the newest stays
	// with the one before it kept as the limit's history; the oldest goes.
	eventually(t, 10*time.Second, "oldest session deleted", func() error {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: names[0]}, &stashv1beta1.BackupSession{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("session %s still there (%v)", names[0], err)
		}
		return nil
	})
	get(t, c, ns, names[2], &stashv1beta1.BackupSession{})
}

func TestRestoreSessionPerReplica(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
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
  interimVolumeTemplate:
    metadata: {name: stash-tmp-storage}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`)
	var jobs batchv1.JobList
	eventually(t, 20*time.Second, "two restore Jobs", func() error {
		if err := c.List(context.Background(), &jobs, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(jobs.Items) != 2 {
			return fmt.Errorf("%d Jobs", len(jobs.Items))
		}
		return nil
	})
	for ord := 0; ord < 2; ord++ {
		pvc := get(t, c, ns, fmt.Sprintf("data-pg-%d", ord), &corev1.PersistentVolumeClaim{})
		if len(pvc.OwnerReferences) != 0 {
			t.Errorf("restored PVC %s is owned by %v: deleting the session would delete the data", pvc.Name, pvc.OwnerReferences)
		}
	}
	claims := map[string]bool{}
	for _, j := range jobs.Items {
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claims[v.PersistentVolumeClaim.ClaimName] = true
			}
		}
	}
	if !claims["data-pg-0"] || !claims["data-pg-1"] || !claims["restore-pvc-stash-tmp-storage"] {
		t.Errorf("Jobs mount %v, want data-pg-0, data-pg-1 and the interim volume", claims)
	}
	// The interim volume the Jobs mount exists, owned by the session.
	interim := get(t, c, ns, "restore-pvc-stash-tmp-storage", &corev1.PersistentVolumeClaim{})
	if len(interim.OwnerReferences) != 1 || interim.OwnerReferences[0].Name != "restore-pvc" {
		t.Errorf("interim PVC owners %v, want the RestoreSession", interim.OwnerReferences)
	}
	// The Jobs exist before the status that counts them is written.
	eventually(t, 10*time.Second, "RestoreSession Running with two hosts", func() error {
		rs := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
		if rs.Status.Phase != stashv1beta1.RestoreRunning || rs.Status.TotalHosts == nil || *rs.Status.TotalHosts != 2 {
			return fmt.Errorf("status %+v", rs.Status)
		}
		return nil
	})
	rec := status.Kube{Client: c}
	for _, h := range []string{"host-0", "host-1"} {
		if _, err := rec.RecordRestore(context.Background(), ns, "restore-pvc", 0, []stashv1beta1.HostRestoreStats{{Hostname: h, Phase: "Succeeded", Duration: "1s"}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "RestoreSession Succeeded", func() error {
		rs := get(t, c, ns, "restore-pvc", &stashv1beta1.RestoreSession{})
		if rs.Status.Phase != stashv1beta1.RestoreSucceeded || !status.IsConditionTrue(rs.Status.Conditions, "MetricsPushed") {
			return fmt.Errorf("%+v", rs.Status)
		}
		return nil
	})
	assertEvent(t, c, ns, "restore-pvc", "RestoreSession Succeeded")
}

func TestRestoreSessionFailsWhenJobFails(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+`---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: restore-pg}
spec:
  task: {name: postgres-restore-14.0}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules:
    - snapshots: [latest]
`)
	if rs := get(t, c, ns, "restore-pg", &stashv1beta1.RestoreSession{}); rs.Spec.Repository.Namespace != ns {
		t.Errorf("spec.repository.namespace = %q, want %q (defaulting webhook)", rs.Spec.Repository.Namespace, ns)
	}
	jobName := "stash-restore-restore-pg-0"
	eventually(t, 20*time.Second, "restore Job", func() error {
		return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: jobName}, &batchv1.Job{})
	})
	setJobCondition(t, c, ns, jobName, batchv1.JobFailed)
	eventually(t, 10*time.Second, "RestoreSession Failed", func() error {
		rs := get(t, c, ns, "restore-pg", &stashv1beta1.RestoreSession{})
		if rs.Status.Phase != stashv1beta1.RestoreFailed || len(rs.Status.Stats) != 1 || !strings.Contains(rs.Status.Stats[0].Error, "failed") {
			return fmt.Errorf("%+v", rs.Status)
		}
		return nil
	})
}

func TestRepositoryWipeOut(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fixtures+`---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: wiped}
spec:
  wipeOut: true
  backend:
    local:
      mountPath: /safe/data
      hostPath: {path: /var/stash/wiped}
    storageSecretName: s3-secret
`)
	eventually(t, 10*time.Second, "finalizer", func() error {
		r := get(t, c, ns, "wiped", &stashv1alpha1.Repository{})
		if !contains(r.Finalizers, repocontroller.Finalizer) {
			return fmt.Errorf("finalizers %v", r.Finalizers)
		}
		return nil
	})
	// Without wipeOut a Repository goes at once and its data stays.
	if err := c.Delete(context.Background(), &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "s3-repo", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "s3-repo deleted", func() error {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "s3-repo"}, &stashv1alpha1.Repository{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	if err := c.Delete(context.Background(), &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "wiped", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	jobName := repocontroller.WipeJobName("wiped")
	var job *batchv1.Job
	eventually(t, 10*time.Second, "wipe Job", func() error {
		job = &batchv1.Job{}
		return c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: jobName}, job)
	})
	ctr := job.Spec.Template.Spec.Containers[0]
	if strings.Join(ctr.Args, " ") != "repo wipe --yes --namespace="+ns+" --repository=wiped" || len(ctr.VolumeMounts) != 2 || ctr.VolumeMounts[0].MountPath != "/var/stash/wiped" || ctr.VolumeMounts[1].MountPath != "/stash-tmp" {
		t.Fatalf("wipe container %v %v", ctr.Args, ctr.VolumeMounts)
	}
	// The Repository waits for the wipe.
	time.Sleep(time.Second)
	get(t, c, ns, "wiped", &stashv1alpha1.Repository{})
	setJobCondition(t, c, ns, jobName, batchv1.JobComplete)
	eventually(t, 15*time.Second, "wiped Repository deleted", func() error {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "wiped"}, &stashv1alpha1.Repository{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}

// TestRepositoryWipeOutLongName: a Repository whose name leaves no room
// for the wipe Job's prefix within a Job name's 63 characters is still
// wiped and deleted; a wipe Job the API server refuses for good (here an
// admission policy) is a failed wipe, with an event, and wipeOut: false
// still lets the Repository go.
func TestRepositoryWipeOutLongName(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	repo := func(name string) string {
		return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: %s}
spec:
  wipeOut: true
  backend:
    s3: {endpoint: "http://127.0.0.1:9", bucket: stash, prefix: pg}
    storageSecretName: s3-secret
`, name)
	}
	long := strings.Repeat("r", 60)
	refused := "refused-" + strings.Repeat("x", 50)
	mustApply(t, c, ns, fixtures+"---"+repo(long)+"---"+repo(refused))
	for _, name := range []string{long, refused} {
		eventually(t, 10*time.Second, "finalizer of "+name, func() error {
			if r := get(t, c, ns, name, &stashv1alpha1.Repository{}); !contains(r.Finalizers, repocontroller.Finalizer) {
				return fmt.Errorf("finalizers %v", r.Finalizers)
			}
			return nil
		})
	}

	jobName := repocontroller.WipeJobName(long)
	if len(jobName) > 63 {
		t.Errorf("wipe Job name %q is %d characters, over the 63 of a job-name label", jobName, len(jobName))
	}
	if err := c.Delete(ctx, &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: long, Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "wipe Job of the long-named Repository", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: jobName}, &batchv1.Job{})
	})
	setJobCondition(t, c, ns, jobName, batchv1.JobComplete)
	eventually(t, 15*time.Second, "long-named Repository deleted", func() error {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: long}, &stashv1alpha1.Repository{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})

	// An admission policy refuses the other Repository's wipe Job.
	refusedJob := repocontroller.WipeJobName(refused)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-no-wipe"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptrTo(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.namespace != '%s' || object.metadata.name != '%s'", ns, refusedJob),
				Message:    "wipe Jobs are not allowed here",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
	// The API server loads a new policy asynchronously.
	eventually(t, 30*time.Second, "admission policy in force", func() error {
		probe := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: refusedJob, Namespace: ns}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
		err := c.Create(ctx, probe, client.DryRunAll)
		if err == nil {
			return fmt.Errorf("admitted")
		}
		if !strings.Contains(err.Error(), "wipe Jobs are not allowed here") {
			return err
		}
		return nil
	})
	if err := c.Delete(ctx, &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: refused, Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	assertEventWithin(t, c, ns, refused, "Repository WipeOut Failed", 15*time.Second)
	// The escape: without wipeOut, the Repository goes and its data stays.
	r := get(t, c, ns, refused, &stashv1alpha1.Repository{})
	r.Spec.WipeOut = false
	if err := c.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "refused Repository deleted after wipeOut: false", func() error {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: refused}, &stashv1alpha1.Repository{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestCrossNamespaceRepository checks usagePolicy: a Repository of
// another namespace is refused unless it allows it, and an allowed one gets
// the backup Job's ServiceAccount a Role in the Repository's namespace.
func TestCrossNamespaceRepository(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	repoNS := newNamespace(t, c)
	ns := newNamespace(t, c)
	mustApply(t, c, repoNS, fixtures)
	mustApply(t, c, ns, appBinding)
	bc := strings.Replace(backupConfiguration("shared", ""), "repository: {name: s3-repo}", "repository: {name: s3-repo, namespace: "+repoNS+"}", 1)
	err := apply(t, c, ns, bc)
	if err == nil || !strings.Contains(err.Error(), "usagePolicy") {
		t.Fatalf("BackupConfiguration using a Repository that allows only its own namespace: %v", err)
	}
	repo := get(t, c, repoNS, "s3-repo", &stashv1alpha1.Repository{})
	all := stashv1alpha1.NamespacesFromAll
	repo.Spec.UsagePolicy = &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{From: &all}}
	if err := c.Update(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
	mustApply(t, c, ns, bc)
	eventually(t, 20*time.Second, "Ready", func() error {
		o := get(t, c, ns, "shared", &stashv1beta1.BackupConfiguration{})
		if o.Status.Phase != stashv1beta1.InvokerReady {
			return fmt.Errorf("phase %q %+v", o.Status.Phase, o.Status.Conditions)
		}
		return nil
	})
	name := createSession(t, c, ns, "shared")
	waitSession(t, c, ns, name, stashv1beta1.BackupSessionRunning)
	role := grantOf(t, c, repoNS)
	if role == nil {
		t.Fatalf("no grant in the Repository's namespace: %v", rbacIn(t, c, repoNS))
	}
	if !grants(role, "", "secrets", "get") || !grants(role, "stash.appscode.com", "repositories", "get") {
		t.Errorf("Role in the Repository's namespace: %+v", role.Rules)
	}
	rb := get(t, c, repoNS, role.Name, &rbacv1.RoleBinding{})
	if len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != ns {
		t.Errorf("RoleBinding subjects %+v", rb.Subjects)
	}

	// Deleting the BackupConfiguration takes its grants in the other
	// namespace with it.
	if err := c.Delete(context.Background(), get(t, c, ns, "shared", &stashv1beta1.BackupConfiguration{})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "grants in the Repository's namespace removed", func() error {
		if got := rbacIn(t, c, repoNS); len(got) > 0 {
			return fmt.Errorf("still there: %v", got)
		}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "shared"}, &stashv1beta1.BackupConfiguration{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("BackupConfiguration still there (%v)", err)
		}
		return nil
	})
}

// TestUnverifiedLocalRepositoryIsNotWiped: without the admission policy
// the operator cannot know who put a Repository on a hostPath, so it never
// runs the wipe Job (root, with that volume) for it; the wipe fails with
// the reason, and wipeOut: false still lets the Repository go.
func TestUnverifiedLocalRepositoryIsNotWiped(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	if err := c.Delete(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "stash-runtime-settings"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testserver.InstallAdmissionPolicy(ctx, c) })
	mustApply(t, c, ns, fixtures+`---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: host}
spec:
  wipeOut: true
  backend:
    local: {mountPath: /repo, hostPath: {path: /}}
    storageSecretName: s3-secret
`)
	eventually(t, 10*time.Second, "finalizer", func() error {
		if r := get(t, c, ns, "host", &stashv1alpha1.Repository{}); !contains(r.Finalizers, repocontroller.Finalizer) {
			return fmt.Errorf("finalizers %v", r.Finalizers)
		}
		return nil
	})
	if err := c.Delete(ctx, &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "host", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	assertEventWithin(t, c, ns, "host", controller.ReasonRepositoryWipeOutFailed, 15*time.Second)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: repocontroller.WipeJobName("host")}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("wipe Job of an unverified hostPath Repository: %v", err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := get(t, c, ns, "host", &stashv1alpha1.Repository{})
		r.Spec.WipeOut = false
		return c.Update(ctx, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "Repository deleted", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "host"}, &stashv1alpha1.Repository{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
}
