package plan_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/plan"
)

// TestParamsThatEscalateAreRefused builds real catalog Jobs with one
// invoker param each: the refused ones yield no Job and an error naming
// the param's field and the variable; the allowed ones reach the Job.
func TestParamsThatEscalateAreRefused(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	refused := []string{
		"STASH_DOCKER_REGISTRY", "STASH_DOCKER_IMAGE", "STASH_IMAGE_TAG", "ADDON_IMAGE",
		"REPOSITORY_NAME", "REPOSITORY_NAMESPACE", "REPOSITORY_PROVIDER", "REPOSITORY_SECRET_NAME",
		"REPOSITORY_SECRET_NAMESPACE", "REPOSITORY_BUCKET", "REPOSITORY_PREFIX", "REPOSITORY_ENDPOINT",
		"REPOSITORY_REGION", "REPOSITORY_INSECURE_TLS", "REPOSITORY_SOMETHING_NEW",
		"NAMESPACE", "TARGET_NAMESPACE", "TARGET_NAME",
		"BACKUP_SESSION", "RESTORE_SESSION", "INVOKER_KIND", "INVOKER_NAME",
	}
	for _, name := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			bc := backupConfig("postgres-backup-16.1", stashv1beta1.Param{Name: "args", Value: "--clean"}, stashv1beta1.Param{Name: name, Value: "evil"})
			job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "bc-1", Repository: repo, Catalog: cat})
			if err == nil || job != nil {
				t.Fatalf("param %s: got a Job (err %v)", name, err)
			}
			for _, want := range []string{"spec.task.params[1].name: Forbidden: " + name + " ", "cannot be overridden; remove the param"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			rs := restoreSession("postgres-restore-16.1", stashv1beta1.Param{Name: name, Value: "evil"})
			jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat})
			if err == nil || len(jobs) != 0 {
				t.Fatalf("restore param %s: got %d Jobs (err %v)", name, len(jobs), err)
			}
			if !strings.Contains(err.Error(), "spec.task.params[0].name: Forbidden: "+name) {
				t.Errorf("restore error %q does not name the param", err)
			}
		})
	}
	// Stash's overrides that grant nothing, each with the Tasks whose
	// Functions use it.
	pg := [2]string{"postgres-backup-16.1", "postgres-restore-16.1"}
	pvc := [2]string{"pvc-backup", "pvc-restore"}
	allowed := []struct {
		name, value string
		tasks       [2]string
	}{
		{"args", "--clean", pg},
		{"user", "backup", pg},
		{"backupCMD", "pg_dump", pg},
		{"waitTimeout", "60", pg},
		{"outputDir", "/stash-tmp/elsewhere", pg},
		{"HOSTNAME", "primary", pg},
		{"SOURCE_HOSTNAME", "old-primary", pg},
		{"ENABLE_CACHE", "false", pg},
		{"MAX_CONNECTIONS", "4", pg},
		{"RETENTION_KEEP_LAST", "9", pg},
		{"RETENTION_PRUNE", "false", pg},
		{"RESTORE_SNAPSHOTS", "abc123", pg},
		{"TARGET_PATHS", "/data,/conf", pvc},
		{"TARGET_KIND", "PersistentVolumeClaim", pvc},
		{"DRIVER_ARGS", "--one-file-system", pvc},
		{"EXCLUDE_PATTERNS", "*.tmp", pvc},
	}
	for _, a := range allowed {
		t.Run("allowed/"+a.name, func(t *testing.T) {
			bc := backupConfig(a.tasks[0], stashv1beta1.Param{Name: a.name, Value: a.value})
			job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "bc-1", Repository: repo, Catalog: cat})
			if err != nil {
				t.Fatal(err)
			}
			rs := restoreSession(a.tasks[1], stashv1beta1.Param{Name: a.name, Value: a.value})
			jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat})
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(job.Spec.Template.Spec.InitContainers[0].Args, " ") + " " +
				strings.Join(jobs[0].Spec.Template.Spec.InitContainers[0].Args, " ")
			if !strings.Contains(all, "="+a.value) {
				t.Errorf("param %s=%s did not reach the step's args: %s", a.name, a.value, all)
			}
		})
	}
}

func restoreSession(task string, params ...stashv1beta1.Param) *stashv1beta1.RestoreSession {
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("rs", "demo")}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: task, Params: params}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: "repo"}
	return rs
}

// TestRefusedParamLeavesNoTrace checks that the Job a valid configuration
// yields is the same whether or not a refused param was tried before:
// no state leaks between plans, and the values are the operator's.
func TestRefusedParamLeavesNoTrace(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	bad := backupConfig("postgres-backup-16.1", stashv1beta1.Param{Name: "STASH_DOCKER_REGISTRY", Value: "evil.example"})
	if _, err := plan.BackupJob(plan.BackupRequest{Config: bad, Session: "bc-1", Repository: repo, Catalog: cat}); err == nil {
		t.Fatal("a registry override was planned")
	}
	job, err := plan.BackupJob(plan.BackupRequest{Config: backupConfig("postgres-backup-16.1"), Session: "bc-1", Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(job.Spec.Template.Spec.InitContainers, job.Spec.Template.Spec.Containers...) {
		if !strings.HasPrefix(c.Image, "ghcr.io/stash-backup/") {
			t.Errorf("container %s runs %s", c.Name, c.Image)
		}
		if strings.Contains(strings.Join(c.Args, " "), "evil") {
			t.Errorf("container %s args carry the refused value: %v", c.Name, c.Args)
		}
	}
	if sa := job.Spec.Template.Spec.ServiceAccountName; sa != plan.BackupServiceAccount("bc") {
		t.Errorf("ServiceAccount %s", sa)
	}
}

// TestAppBindingParamsAreChecked: a Task named by the target AppBinding's
// StashAddon parameters brings params the AppBinding's author controls.
func TestAppBindingParamsAreChecked(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ab := &appcatalogv1alpha1.AppBinding{ObjectMeta: metaNS("db", "demo")}
	ab.Spec.Parameters = &runtime.RawExtension{Raw: []byte(`{"kind":"StashAddon","stash":{"addon":{
		"backupTask":{"name":"postgres-backup-16.1","params":[{"name":"args","value":"--clean"},{"name":"REPOSITORY_BUCKET","value":"other"}]},
		"restoreTask":{"name":"postgres-restore-16.1"}}}}`)}
	bc := backupConfig("")
	_, err = plan.BackupJob(plan.BackupRequest{Config: bc, AppBinding: ab, Session: "bc-1", Repository: repo, Catalog: cat})
	if err == nil || !strings.Contains(err.Error(), "spec.target.ref: Forbidden: AppBinding demo/db spec.parameters.stash.addon.backupTask.params[1].name: REPOSITORY_BUCKET") {
		t.Fatalf("AppBinding param not refused: %v", err)
	}
	// The same param from the invoker is reported at the invoker's field,
	// once: the AppBinding's params are not used when the invoker names
	// the Task.
	errs := plan.CheckTaskParams(ab, false, stashv1beta1.TaskRef{Name: "postgres-backup-16.1", Params: []stashv1beta1.Param{{Name: "args", Value: "x"}}}, cat)
	if len(errs) != 0 {
		t.Errorf("AppBinding params checked though the invoker names the Task: %v", errs)
	}
}

// TestVolumeSourceParams: a Task whose volume source uses a variable (here
// a lower-case param, which no name list could know) cannot have it set
// by the invoker, and no param can point a Function's mount at the
// Repository's own volume.
func TestVolumeSourceParams(t *testing.T) {
	c := fakeCatalog{
		tasks: map[string]*stashv1beta1.Task{
			"vol": {ObjectMeta: metaNS("vol", ""), Spec: stashv1beta1.TaskSpec{
				Steps: []stashv1beta1.FunctionRef{{Name: "mounter", Params: []stashv1beta1.Param{{Name: "targetVolume", Value: "data"}}}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "${claim:=data-0}"}}}},
			}},
		},
		fns: map[string]*stashv1beta1.Function{"mounter": func() *stashv1beta1.Function {
			f := fn("mounter", "--x=${x:=}")
			f.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "${targetVolume}", MountPath: "${TARGET_MOUNT_PATH}"}}
			return f
		}()},
	}
	local := repo.DeepCopy()
	local.Spec.Backend = stashv1alpha1.Backend{StorageSecretName: "s", Local: &stashv1alpha1.LocalSpec{
		MountPath: "/repo", SubPath: "demo", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backups"}}}}
	tests := []struct {
		name  string
		param stashv1beta1.Param
		want  string // "" when allowed
	}{
		{"claim chosen by invoker", stashv1beta1.Param{Name: "claim", Value: "someone-elses"}, "spec.task.params[0].name: Forbidden: claim chooses the source of Task vol's volume data"},
		{"mount of the whole backend volume", stashv1beta1.Param{Name: "targetVolume", Value: plan.LocalBackendVolume}, "spec.task.params[0].name: Forbidden: targetVolume would mount the Repository's volume stash-local-backend"},
		{"mount path", stashv1beta1.Param{Name: "TARGET_MOUNT_PATH", Value: "/elsewhere"}, ""},
		{"other param", stashv1beta1.Param{Name: "x", Value: "y"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := plan.BackupJob(plan.BackupRequest{Config: backupConfig("vol", tt.param), Session: "s", Repository: local, Catalog: c})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || job != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A Function that mounts the backend volume itself is refused by the
	// planner after substitution, whatever put the name there.
	c.fns["mounter"].Spec.VolumeMounts[0].Name = plan.LocalBackendVolume
	if _, err := plan.BackupJob(plan.BackupRequest{Config: backupConfig("vol"), Session: "s", Repository: local, Catalog: c}); err == nil ||
		!strings.Contains(err.Error(), "spec.volumeMounts[0].name: stash-local-backend is the Repository's volume") {
		t.Fatalf("a Function mounting the backend volume was planned: %v", err)
	}
}

// TestProtectedVariable is the name table alone.
func TestProtectedVariable(t *testing.T) {
	for name, want := range map[string]bool{
		"NAMESPACE": true, "TARGET_NAMESPACE": true, "REPOSITORY_X": true, "STASH_IMAGE_TAG": true,
		"namespace": false, "REPOSITORY": false, "TARGET_PATHS": false, "HOSTNAME": false, "args": false, "": false,
	} {
		if _, got := plan.ProtectedVariable(name); got != want {
			t.Errorf("ProtectedVariable(%q) = %v, want %v", name, got, want)
		}
	}
	names := plan.ProtectedVariables()
	if len(names) < 10 || names[0] != "ADDON_IMAGE" {
		t.Errorf("ProtectedVariables() = %v", names)
	}
}
