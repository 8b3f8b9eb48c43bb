package plan_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// fakeCatalog is a map-backed plan.Catalog for hand-built Tasks.
type fakeCatalog struct {
	tasks map[string]*stashv1beta1.Task
	fns   map[string]*stashv1beta1.Function
}

func (c fakeCatalog) Task(n string) (*stashv1beta1.Task, bool) { t, ok := c.tasks[n]; return t, ok }
func (c fakeCatalog) Function(n string) (*stashv1beta1.Function, bool) {
	f, ok := c.fns[n]
	return f, ok
}

func fn(name string, args ...string) *stashv1beta1.Function {
	return &stashv1beta1.Function{ObjectMeta: metaNS(name, ""), Spec: stashv1beta1.FunctionSpec{Image: "img/" + name, Args: args}}
}

// templatedImage gives f an image as the catalog writes them, with a
// registry variable: ${ADDON_IMAGE} is the image after substitution.
func templatedImage(f *stashv1beta1.Function) *stashv1beta1.Function {
	f.Spec.Image = "${TEST_REGISTRY:=img}/" + f.Name
	return f
}

func testCatalog() fakeCatalog {
	return fakeCatalog{
		tasks: map[string]*stashv1beta1.Task{
			"three": {ObjectMeta: metaNS("three", ""), Spec: stashv1beta1.TaskSpec{
				Steps: []stashv1beta1.FunctionRef{
					{Name: "a.step", Params: []stashv1beta1.Param{{Name: "p", Value: "from-step"}, {Name: "NAMESPACE", Value: "step-ns"}}},
					{Name: "b"},
					{Name: "c"},
				},
				Volumes: []corev1.Volume{{Name: "secret-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "${REPOSITORY_SECRET_NAME}"}}}},
			}},
			"broken": {ObjectMeta: metaNS("broken", ""), Spec: stashv1beta1.TaskSpec{Steps: []stashv1beta1.FunctionRef{{Name: "needs-var"}}}},
			"ghost":  {ObjectMeta: metaNS("ghost", ""), Spec: stashv1beta1.TaskSpec{Steps: []stashv1beta1.FunctionRef{{Name: "missing"}}}},
		},
		fns: map[string]*stashv1beta1.Function{
			"a.step":    templatedImage(fn("a.step", "--p=${p}", "--ns=${NAMESPACE}", "--user=${user:=default-user}", "--img=${ADDON_IMAGE}")),
			"b":         fn("b", "--host=${HOSTNAME}", "--session=${BACKUP_SESSION:=}", "--keep=${RETENTION_KEEP_LAST:=0}", "--prune=${RETENTION_PRUNE:=false}"),
			"c":         fn("c", "--enable-cache=${ENABLE_CACHE}", "--interim=${INTERIM_DATA_DIR}"),
			"needs-var": fn("needs-var", "--x=${someParam}"),
		},
	}
}

func backupConfig(task string, params ...stashv1beta1.Param) *stashv1beta1.BackupConfiguration {
	bc := &stashv1beta1.BackupConfiguration{ObjectMeta: metaNS("bc", "demo")}
	bc.Spec.Task = stashv1beta1.TaskRef{Name: task, Params: params}
	bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}}
	bc.Spec.Repository = stashv1beta1.ObjectReference{Name: "repo"}
	bc.Spec.RetentionPolicy = stashv1alpha1.RetentionPolicy{Name: "k", KeepLast: 3, Prune: true}
	return bc
}

var repo = &stashv1alpha1.Repository{ObjectMeta: metaNS("repo", "demo"), Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
	StorageSecretName: "repo-secret", GCS: &stashv1alpha1.GCSSpec{Bucket: "b", Prefix: "p"},
}}}

func TestBackupJobStepsAndPrecedence(t *testing.T) {
	bc := backupConfig("three", stashv1beta1.Param{Name: "p", Value: "from-invoker"})
	bc.Spec.TempDir = stashv1beta1.EmptyDirSettings{DisableCaching: true, Medium: corev1.StorageMediumMemory}
	bc.Spec.InterimVolumeTemplate = &stashv1beta1.PersistentVolumeClaim{PartialObjectMeta: stashv1beta1.PartialObjectMeta{Name: "tmp"}}
	bc.Spec.Target.Alias = "primary"
	job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "bc-1", Repository: repo, Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 2 || len(pod.Containers) != 1 {
		t.Fatalf("init %d, main %d", len(pod.InitContainers), len(pod.Containers))
	}
	names := []string{pod.InitContainers[0].Name, pod.InitContainers[1].Name, pod.Containers[0].Name}
	if strings.Join(names, ",") != "a-step-0,b-1,c-2" {
		t.Errorf("container names %v", names)
	}
	a := strings.Join(pod.InitContainers[0].Args, " ")
	// The invoker's params beat operator variables, which beat step params.
	for _, want := range []string{"--p=from-invoker", "--ns=demo", "--user=default-user", "--img=img/a.step"} {
		if !strings.Contains(a, want) {
			t.Errorf("step a args %q lack %q", a, want)
		}
	}
	b := strings.Join(pod.InitContainers[1].Args, " ")
	for _, want := range []string{"--host=primary", "--session=bc-1", "--keep=3", "--prune=true"} {
		if !strings.Contains(b, want) {
			t.Errorf("step b args %q lack %q", b, want)
		}
	}
	c := strings.Join(pod.Containers[0].Args, " ")
	if c != "--enable-cache=false --interim=/stash-interim-volume/data" {
		t.Errorf("step c args %q", c)
	}
	if job.Name != "stash-backup-bc-1-0" || *job.Spec.BackoffLimit != 0 || pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("job %s backoff %d restart %s", job.Name, *job.Spec.BackoffLimit, pod.RestartPolicy)
	}
	if *pod.SecurityContext.RunAsUser != 65535 {
		t.Errorf("backup pod user %d", *pod.SecurityContext.RunAsUser)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if vols["secret-volume"].Secret == nil || vols["secret-volume"].Secret.SecretName != "repo-secret" {
		t.Errorf("task volume not resolved: %+v", vols["secret-volume"])
	}
	if e := vols[plan.ScratchVolume].EmptyDir; e == nil || e.Medium != corev1.StorageMediumMemory {
		t.Errorf("scratch volume %+v", vols[plan.ScratchVolume])
	}
	if p := vols[plan.InterimVolume].PersistentVolumeClaim; p == nil || p.ClaimName != "bc-1-tmp" {
		t.Errorf("interim volume %+v", vols[plan.InterimVolume])
	}
	if or := job.OwnerReferences; len(or) != 1 || or[0].Kind != "BackupSession" || or[0].Name != "bc-1" || !*or[0].Controller {
		t.Errorf("owner %+v", or)
	}
}

func TestBackupJobErrors(t *testing.T) {
	tests := []struct {
		task, want string
	}{
		{"broken", `Function "needs-var": variable ${someParam} has no value`},
		{"ghost", `Function "missing" not found`},
		{"nope", `Task "nope" not found`},
		{"", "spec.task.name is empty"},
	}
	for _, tt := range tests {
		_, err := plan.BackupJob(plan.BackupRequest{Config: backupConfig(tt.task), Session: "s", Repository: repo, Catalog: testCatalog()})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("task %q: %v, want %q", tt.task, err, tt.want)
		}
	}
	_, err := plan.BackupJob(plan.BackupRequest{Config: backupConfig("broken", stashv1beta1.Param{Name: "someParam", Value: "v"}), Session: "s", Repository: repo, Catalog: testCatalog()})
	if err != nil {
		t.Errorf("param given by the invoker: %v", err)
	}
}

func TestRuntimeSettingsAndHooks(t *testing.T) {
	bc := backupConfig("three")
	adj, class := int32(5), int32(2)
	user := int64(1000)
	bc.Spec.RuntimeSettings = stashv1beta1.RuntimeSettings{
		Container: &stashv1beta1.ContainerRuntimeSettings{
			Nice: &stashv1beta1.NiceSettings{Adjustment: &adj}, IONice: &stashv1beta1.IONiceSettings{Class: &class},
			Env: []corev1.EnvVar{{Name: "EXTRA", Value: "1"}},
		},
		Pod: &stashv1beta1.PodRuntimeSettings{
			NodeSelector: map[string]string{"disk": "ssd"}, SecurityContext: &corev1.PodSecurityContext{RunAsUser: &user},
			PodLabels: map[string]string{"team": "db"},
		},
	}
	bc.Spec.Hooks = &stashv1beta1.BackupHooks{
		PreBackup:  &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sync"}}},
		PostBackup: &stashv1beta1.PostHook{Handler: stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
	}
	job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "s", Repository: repo, Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 4 || pod.InitContainers[0].Name != "prebackup-hook" || pod.Containers[0].Name != "postbackup-hook" {
		t.Fatalf("hook containers: init %d, first %s, main %s", len(pod.InitContainers), pod.InitContainers[0].Name, pod.Containers[0].Name)
	}
	env := map[string]string{}
	for _, e := range pod.InitContainers[1].Env {
		env[e.Name] = e.Value
	}
	if env["NICE_ADJUSTMENT"] != "5" || env["IONICE_CLASS"] != "2" || env["EXTRA"] != "1" {
		t.Errorf("env %v", env)
	}
	if pod.NodeSelector["disk"] != "ssd" || *pod.SecurityContext.RunAsUser != 1000 || job.Spec.Template.Labels["team"] != "db" {
		t.Errorf("pod settings %+v labels %v", pod, job.Spec.Template.Labels)
	}
}

func TestRestoreJobsPerReplica(t *testing.T) {
	cat := testCatalog()
	cat.tasks["restore"] = &stashv1beta1.Task{ObjectMeta: metaNS("restore", ""), Spec: stashv1beta1.TaskSpec{Steps: []stashv1beta1.FunctionRef{{Name: "r"}}}}
	cat.fns["r"] = fn("r", "--host=${HOSTNAME}", "--source=${SOURCE_HOSTNAME}", "--snap=${RESTORE_SNAPSHOTS}", "--claim=data-${POD_ORDINAL}", "--target=${TARGET_NAME}")
	replicas := int32(3)
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("rs", "demo")}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: "restore"}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: "repo"}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{
		Replicas:             &replicas,
		VolumeClaimTemplates: []stashv1beta1.PersistentVolumeClaim{{PartialObjectMeta: stashv1beta1.PartialObjectMeta{Name: "data-${POD_ORDINAL}"}}},
		Rules: []stashv1beta1.Rule{
			{TargetHosts: []string{"host-2"}, SourceHost: "host-1", Snapshots: []string{"abcd1234"}},
			{SourceHost: "host-0", Snapshots: []string{"latest"}},
		},
	}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 3 {
		t.Fatalf("%d jobs", len(jobs))
	}
	want := []string{
		"--host=host-0 --source=host-0 --snap=latest --claim=data-0 --target=data-0",
		"--host=host-1 --source=host-0 --snap=latest --claim=data-1 --target=data-1",
		"--host=host-2 --source=host-1 --snap=abcd1234 --claim=data-2 --target=data-2",
	}
	for i, j := range jobs {
		if got := strings.Join(j.Spec.Template.Spec.Containers[0].Args, " "); got != want[i] {
			t.Errorf("job %d args %q, want %q", i, got, want[i])
		}
		if j.Name != "stash-restore-rs-0-"+string(rune('0'+i)) {
			t.Errorf("job %d name %s", i, j.Name)
		}
		// A restore runs as root only when its Function asks (the
		// catalog's pvc-restore does); this one does not.
		sc := j.Spec.Template.Spec.SecurityContext
		if *sc.RunAsUser != plan.StepUser || *sc.RunAsGroup != plan.StepUser || !*sc.RunAsNonRoot {
			t.Errorf("restore pod of a Function that asks nothing: %+v", sc)
		}
	}
}

func TestRestoreHosts(t *testing.T) {
	three, zero := int32(3), int32(0)
	claims := []stashv1beta1.PersistentVolumeClaim{{PartialObjectMeta: stashv1beta1.PartialObjectMeta{Name: "data-${POD_ORDINAL}"}}}
	for _, tt := range []struct {
		name   string
		target *stashv1beta1.RestoreTarget
		want   []string
	}{
		{"no target", nil, []string{"host-0"}},
		{"one Job", &stashv1beta1.RestoreTarget{}, []string{"host-0"}},
		{"one Job, alias", &stashv1beta1.RestoreTarget{Alias: "db"}, []string{"db"}},
		{"replicas without claims: one Job", &stashv1beta1.RestoreTarget{Replicas: &three}, []string{"host-0"}},
		{"per replica", &stashv1beta1.RestoreTarget{Replicas: &three, VolumeClaimTemplates: claims}, []string{"host-0", "host-1", "host-2"}},
		{"per replica, alias", &stashv1beta1.RestoreTarget{Alias: "db", Replicas: &three, VolumeClaimTemplates: claims}, []string{"db-0", "db-1", "db-2"}},
		{"zero replicas", &stashv1beta1.RestoreTarget{Replicas: &zero, VolumeClaimTemplates: claims}, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("rs", "demo")}
			rs.Spec.Target = tt.target
			if got := plan.RestoreHosts(rs); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("RestoreHosts = %v, want %v", got, tt.want)
			}
		})
	}
	// They are the hosts the Jobs are annotated with, in order.
	cat := testCatalog()
	cat.tasks["restore"] = &stashv1beta1.Task{ObjectMeta: metaNS("restore", ""), Spec: stashv1beta1.TaskSpec{Steps: []stashv1beta1.FunctionRef{{Name: "r"}}}}
	cat.fns["r"] = fn("r", "--host=${HOSTNAME}")
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("rs", "demo")}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: "restore"}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: "repo"}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Alias: "db", Replicas: &three, VolumeClaimTemplates: claims, Rules: []stashv1beta1.Rule{{Snapshots: []string{"latest"}}}}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	var annotated []string
	for _, j := range jobs {
		annotated = append(annotated, j.Annotations[plan.AnnotationHostname])
	}
	if fmt.Sprint(annotated) != fmt.Sprint(plan.RestoreHosts(rs)) {
		t.Errorf("Jobs annotated %v, RestoreHosts %v", annotated, plan.RestoreHosts(rs))
	}
}

func TestRuleForHost(t *testing.T) {
	rules := []stashv1beta1.Rule{
		{SourceHost: "any"},
		{TargetHosts: []string{"host-1", "host-3"}, SourceHost: "one"},
	}
	if r := plan.RuleForHost(rules, "host-3"); r == nil || r.SourceHost != "one" {
		t.Errorf("host-3: %+v", r)
	}
	if r := plan.RuleForHost(rules, "host-0"); r == nil || r.SourceHost != "any" {
		t.Errorf("host-0: %+v", r)
	}
	if r := plan.RuleForHost(rules[1:], "host-0"); r != nil {
		t.Errorf("no catch-all: %+v", r)
	}
}
