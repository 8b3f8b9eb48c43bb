package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/stash-backup/stash/internal/testserver"
)

func docs(name string) string {
	return filepath.Join(testserver.RepoRoot(), "test", "testdata", "stash-docs", name)
}

func TestValidateCLI(t *testing.T) {
	r := mustRun(t, nil, "validate", "-f", docs("postgres"))
	for _, want := range []string{"Repository demo/gcs-repo: valid", "BackupConfiguration demo/sample-postgres-backup: valid",
		"RestoreSession demo/sample-postgres-restore: valid", "AppBinding demo/sample-postgres: valid"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bc.yaml"), []byte(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "61 * * * *"
  task: {name: no-such-task}
  repository: {name: repo}
  target: {ref: {kind: AppBinding, name: db}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
  retentonPolicy: {}
`), 0o600)
	// The schedule is wrong: an error. The Task, Repository and AppBinding
	// are not in the files, and a field is misspelt: warnings.
	bad := run(t, nil, "validate", "-f", dir)
	if bad.code != 1 || !strings.Contains(bad.stdout, "error: BackupConfiguration demo/bc: spec.schedule: Invalid value") ||
		!strings.Contains(bad.stdout, "warning: BackupConfiguration demo/bc: spec.task.name: Task no-such-task is not in the given files nor the built-in catalog") ||
		!strings.Contains(bad.stdout, "warning: BackupConfiguration demo/bc: spec.repository: Repository demo/repo is not in the given files: not checked; pass it with -f to check it") ||
		!strings.Contains(bad.stdout, "warning: BackupConfiguration demo/bc: spec.retentonPolicy: unknown field") ||
		!strings.Contains(bad.stderr, "1 of 1 objects are invalid") {
		t.Errorf("invalid manifests: exit %d\n%s\n%s", bad.code, bad.stdout, bad.stderr)
	}
}

// TestValidateFilesAlone: each of Stash's example files validated alone,
// as a CI job checks them one by one, exits 0: what it references and
// does not hold is a warning. --strict fails on those warnings, naming the
// object; -o json lists every finding.
func TestValidateFilesAlone(t *testing.T) {
	files, err := filepath.Glob(docs(filepath.Join("*", "*.yaml")))
	if err != nil || len(files) < 8 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		r := run(t, nil, "validate", "-f", f)
		if r.code != 0 || strings.Contains(r.stdout, "error:") {
			t.Errorf("%s alone: exit %d\n%s%s", f, r.code, r.stdout, r.stderr)
		}
	}
	// The cluster backup's Repository names a Secret of the restore's file.
	backup := docs(filepath.Join("perconaxtradb", "backup.yaml"))
	const missing = "Repository demo/gcs-repo-xtradb-cluster: spec.backend.storageSecretName: Secret demo/gcs-secret is not in the given files: not checked"
	r := mustRun(t, nil, "validate", "-f", backup)
	if !strings.Contains(r.stdout, "warning: "+missing) || !strings.Contains(r.stdout, "Repository demo/gcs-repo-xtradb-cluster: valid, 1 warning") {
		t.Errorf("without --strict:\n%s", r.stdout)
	}
	r = run(t, nil, "validate", "--strict", "-f", backup)
	if r.code != 1 || !strings.Contains(r.stdout, "error: "+missing) || !strings.Contains(r.stderr, "--strict") {
		t.Errorf("--strict: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Given with the file that holds it, the Secret is checked.
	mustRun(t, nil, "validate", "--strict", "-f", backup, "-f", docs(filepath.Join("perconaxtradb", "restore.yaml")))

	r = run(t, nil, "validate", "--strict", "-o", "json", "-f", backup)
	var out struct {
		Valid   bool
		Objects []struct {
			Kind, Name string
			Valid      bool
		}
		Findings []struct {
			Level, Object, Field, Message string
			Missing                       struct{ Kind, Namespace, Name string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || out.Valid || len(out.Objects) != 6 || len(out.Findings) != 1 {
		t.Fatalf("json: exit %d %+v", r.code, out)
	}
	f := out.Findings[0]
	if f.Level != "error" || f.Object != "Repository demo/gcs-repo-xtradb-cluster" || f.Field != "spec.backend.storageSecretName" ||
		!strings.Contains(f.Message, "Secret demo/gcs-secret is not in the given files") ||
		f.Missing.Kind != "Secret" || f.Missing.Namespace != "demo" || f.Missing.Name != "gcs-secret" {
		t.Errorf("json finding %+v", f)
	}
}

func TestPlanCLI(t *testing.T) {
	r := mustRun(t, nil, "plan", "-f", docs("postgres"), "-n", "demo", "--backup", "sample-postgres-backup", "--session", "s-1")
	for _, want := range []string{"kind: Job", "name: stash-backup-s-1-0", "- backup-pg", "- --provider=gcs",
		"- --bucket=stash-testing", "- --appbinding=sample-postgres", "- --retention-keep-last=5", "- --retention-prune=true",
		"name: postgres-backup-11-9-0", "name: update-status-1", "restartPolicy: Never", "backoffLimit: 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	r = mustRun(t, nil, "plan", "-f", docs("perconaxtradb"), "-n", "demo", "--restore", "sample-xtradb-restore")
	if n := strings.Count(r.stdout, "kind: Job"); n != 3 {
		t.Errorf("per-replica restore planned %d Jobs, want 3", n)
	}
	if !strings.Contains(r.stdout, "- --hostname=host-2") || !strings.Contains(r.stdout, "- --source-hostname=host-0") {
		t.Errorf("restore hosts missing:\n%s", r.stdout)
	}
	// Each replica's Job mounts its own claim where the target's
	// volumeMounts say, and knows its ordinal (0 bootstraps).
	for _, want := range []string{"claimName: data-sample-xtradb-2", "mountPath: /var/lib/mysql", "- --pod-ordinal=2",
		"- --target-app-replicas=3", "- --mount-path=/var/lib/mysql", "- restore-percona-xtradb"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("per-replica restore plan lacks %q", want)
		}
	}
	r = mustRun(t, nil, "plan", "-f", docs("perconaxtradb"), "-n", "demo", "--backup", "sample-xtradb-cluster-backup", "--session", "s-1")
	for _, want := range []string{"- backup-percona-xtradb", "- --appbinding=sample-xtradb-cluster", "- --backup-mode=physical", "stash-percona-xtradb:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster backup plan lacks %q", want)
		}
	}
	if bad := run(t, nil, "plan", "-f", docs("postgres"), "-n", "demo", "--backup", "nope"); bad.code == 0 || !strings.Contains(bad.stderr, "BackupConfiguration demo/nope not found") {
		t.Errorf("unknown name: %+v", bad)
	}
}

func TestAddonsCLI(t *testing.T) {
	r := mustRun(t, nil, "addons", "list")
	for _, want := range []string{"postgres-backup-11.9", "mysql-restore-8.0.21", "mongodb-backup-4.2.3", "mariadb-backup-10.6.23", "pvc-backup"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("addons list lacks %s", want)
		}
	}
	r = mustRun(t, nil, "addons", "show", "postgres-backup-11.9")
	if strings.Count(r.stdout, "kind: Function") != 2 || !strings.Contains(r.stdout, "kind: Task") {
		t.Errorf("addons show:\n%s", r.stdout)
	}
	r = mustRun(t, nil, "addons", "manifests")
	if !strings.Contains(r.stdout, "apiVersion: stash.appscode.com/v1beta1") || strings.Count(r.stdout, "kind: Task") < 90 {
		t.Errorf("addons manifests: %d Tasks", strings.Count(r.stdout, "kind: Task"))
	}
}

// TestPlanWorkloadsCLI: manifests in the form of Stash's workload guides
// validate, and plan shows what goes into the workload's pod template.
func TestPlanWorkloadsCLI(t *testing.T) {
	for _, c := range []struct{ dir, backup, restore, kind string }{
		{"deployment", "deployment-backup", "deployment-restore", "Deployment"},
		{"statefulset", "ss-backup", "ss-restore", "StatefulSet"},
		{"daemonset", "dmn-backup", "dmn-restore", "DaemonSet"},
	} {
		r := mustRun(t, nil, "validate", "-f", docs(c.dir))
		if strings.Count(r.stdout, ": valid") != 3 {
			t.Errorf("%s: validate:\n%s", c.dir, r.stdout)
		}
		r = mustRun(t, nil, "plan", "-f", docs(c.dir), "-n", "demo", "--backup", c.backup)
		for _, want := range []string{"kind: PodTemplate", "stash.appscode.com/injected-into: " + c.kind + "/", "- run-backup",
			"- --invoker-name=" + c.backup, "- --target-kind=" + c.kind, "mountPath: /source/data", "readOnly: true", "secretName: gcs-secret",
			"mountPath: /var/run/secrets/kubernetes.io/serviceaccount"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: backup plan lacks %q:\n%s", c.dir, want, r.stdout)
			}
		}
		r = mustRun(t, nil, "plan", "-f", docs(c.dir), "-n", "demo", "--restore", c.restore)
		for _, want := range []string{"initContainers:", "name: stash-init", "- restore", "- --invoker-name=" + c.restore, "- DAC_OVERRIDE"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: restore plan lacks %q:\n%s", c.dir, want, r.stdout)
			}
		}
	}
}

// customAddon is an addon author's own Functions and Tasks for Redis: a
// third-party image running a shell script, the password from a Secret
// through runtimeSettings.env, the host a parameter each invoker sets.
const customAddon = `apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: pw, AWS_ACCESS_KEY_ID: a, AWS_SECRET_ACCESS_KEY: b}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: s3-repo, namespace: demo}
spec:
  backend:
    s3: {endpoint: 'http://minio.demo.svc:9000', bucket: stash, prefix: redis}
    storageSecretName: s3-secret
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: redis, namespace: demo}
spec:
  clientConfig:
    service: {name: redis, port: 6379}
---
apiVersion: stash.appscode.com/v1beta1
kind: Function
metadata: {name: redis-dump}
spec:
  image: localhost/redis-tools:e2e
  command: [sh, -c]
  args:
  - >-
    redis-cli -h ${host} -p ${port:=6379} -n "$${REDIS_DB:-0}" --rdb ${outputDir}/dump.rdb &&
    echo '{"hostname":"${HOSTNAME}"}' > ${outputDir}/output.json
  runtimeSettings:
    env:
    - name: REDISCLI_AUTH
      valueFrom:
        secretKeyRef: {name: redis-auth, key: password}
---
apiVersion: stash.appscode.com/v1beta1
kind: Function
metadata: {name: redis-load}
spec:
  image: localhost/redis-tools:e2e
  command: [sh, -c]
  args:
  - cp ${INTERIM_DATA_DIR}/dump.rdb /data/dump.rdb && echo '{"hostname":"${HOSTNAME}"}' > ${outputDir}/output.json
  runtimeSettings:
    env:
    - name: REDISCLI_AUTH
      valueFrom:
        secretKeyRef: {name: redis-auth, key: password}
---
apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: redis-backup}
spec:
  steps:
  - name: redis-dump
    params: [{name: outputDir, value: /stash-tmp/output}]
  - name: update-status
    params: [{name: outputDir, value: /stash-tmp/output}]
---
apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: redis-restore}
spec:
  steps:
  - name: redis-load
    params: [{name: outputDir, value: /stash-tmp/output}]
  - name: update-status
    params: [{name: outputDir, value: /stash-tmp/output}]
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: redis-backup, namespace: demo}
spec:
  schedule: "@daily"
  task:
    name: redis-backup
    params: [{name: host, value: redis.demo.svc}]
  repository: {name: s3-repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: redis}}
  retentionPolicy: {name: keep-last-3, keepLast: 3, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: redis-restore, namespace: demo}
spec:
  task: {name: redis-restore}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: redis}
    rules: [{snapshots: [latest]}]
`

// planJob runs stash plan and returns the one Job it prints.
func planJob(t *testing.T, args ...string) *batchv1.Job {
	t.Helper()
	r := mustRun(t, nil, append([]string{"plan"}, args...)...)
	docs := strings.Split(strings.TrimPrefix(r.stdout, "---\n"), "\n---\n")
	if len(docs) != 1 {
		t.Fatalf("plan printed %d documents:\n%s", len(docs), r.stdout)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &job); err != nil || job.Kind != "Job" {
		t.Fatalf("plan output is not a Job (%v):\n%s", err, r.stdout)
	}
	return &job
}

// TestPlanCustomFunctionCLI: an addon author's own Function and Task, with
// a third-party image, validate, and plan into the Job Stash would run:
// their step an init container, update-status the main container that
// records the result. Without update-status, or without the parameter its
// Function needs, validate says what to fix.
func TestPlanCustomFunctionCLI(t *testing.T) {
	dir := t.TempDir()
	writeManifest(t, dir, customAddon)
	r := mustRun(t, nil, "validate", "-f", dir)
	for _, want := range []string{"Function redis-dump: valid", "Task redis-restore: valid\n", "BackupConfiguration demo/redis-backup: valid\n",
		"RestoreSession demo/redis-restore: valid\n", "Task redis-backup: valid, 1 warning",
		"warning: Task redis-backup: spec.steps[0].params: Function redis-dump uses ${host} (spec.args[0]) with no default and this step's params do not set it: " +
			"every BackupConfiguration/RestoreSession using this Task must set it in spec.task.params"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stdout)
		}
	}

	redisAuth := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "redis-auth"}, Key: "password"}}
	for _, c := range []struct {
		flag, name, step, script string
	}{
		{"--backup", "redis-backup", "redis-dump-0",
			`redis-cli -h redis.demo.svc -p 6379 -n "${REDIS_DB:-0}" --rdb /stash-tmp/output/dump.rdb && echo '{"hostname":"host-0"}' > /stash-tmp/output/output.json`},
		{"--restore", "redis-restore", "redis-load-0",
			`cp /stash-tmp/stash-interim-volume/data/dump.rdb /data/dump.rdb && echo '{"hostname":"host-0"}' > /stash-tmp/output/output.json`},
	} {
		job := planJob(t, "-f", dir, "-n", "demo", c.flag, c.name, "--session", "s-1")
		pod := job.Spec.Template.Spec
		if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
			t.Fatalf("%s: init containers %d, containers %d, want 1 and 1", c.name, len(pod.InitContainers), len(pod.Containers))
		}
		step := pod.InitContainers[0]
		if step.Name != c.step || step.Image != "localhost/redis-tools:e2e" || !slices.Equal(step.Command, []string{"sh", "-c"}) ||
			!slices.Equal(step.Args, []string{c.script}) {
			t.Errorf("%s: step %s image %s command %q args %q", c.name, step.Name, step.Image, step.Command, step.Args)
		}
		i := slices.IndexFunc(step.Env, func(e corev1.EnvVar) bool { return e.Name == "REDISCLI_AUTH" })
		if i < 0 || step.Env[i].Value != "" || !equalJSON(step.Env[i].ValueFrom, redisAuth) {
			t.Errorf("%s: the step's env lacks REDISCLI_AUTH from Secret redis-auth: %+v", c.name, step.Env)
		}
		if !slices.ContainsFunc(step.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/stash-tmp" }) {
			t.Errorf("%s: the step does not mount /stash-tmp, where it writes output.json: %+v", c.name, step.VolumeMounts)
		}
		main := pod.Containers[0]
		if main.Name != "update-status-1" || !strings.Contains(main.Image, "/stash:") || len(main.Args) == 0 || main.Args[0] != "update-status" ||
			!slices.Contains(main.Args, "--output-dir=/stash-tmp/output") || !slices.Contains(main.Args, "--invoker-name="+c.name) {
			t.Errorf("%s: main container %s %s %q, want update-status reading /stash-tmp/output", c.name, main.Name, main.Image, main.Args)
		}
		if pod.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
			t.Errorf("%s: restartPolicy %s backoffLimit %v", c.name, pod.RestartPolicy, job.Spec.BackoffLimit)
		}
	}

	// A Task that does not end with update-status.
	noStatus := t.TempDir()
	writeManifest(t, noStatus, strings.Replace(customAddon, `  - name: update-status
    params: [{name: outputDir, value: /stash-tmp/output}]
---
apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: redis-restore}`, `---
apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: redis-restore}`, 1))
	bad := run(t, nil, "validate", "-f", noStatus)
	if bad.code != 1 || !strings.Contains(bad.stdout, `error: Task redis-backup: spec.steps[0].name: Invalid value: "redis-dump": the last step must be the Function update-status: `+
		`the last step runs as the Job's main container and is the one that records the session's result`) ||
		!strings.Contains(bad.stdout, "append `- name: update-status` with params [{name: outputDir, value: /stash-tmp/output}] to spec.steps") {
		t.Errorf("Task without update-status: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}

	// A BackupConfiguration that does not set the Function's parameter.
	noHost := t.TempDir()
	writeManifest(t, noHost, strings.Replace(customAddon, "    params: [{name: host, value: redis.demo.svc}]\n", "", 1))
	const missing = "spec.task.params: Required value: Function redis-dump (step 0 of Task redis-backup) uses the parameter ${host} (spec.args[0]) with no default, " +
		"and neither the step's params nor spec.task.params set it: add `- {name: host, value: ...}` to spec.task.params"
	bad = run(t, nil, "validate", "-f", noHost)
	if bad.code != 1 || !strings.Contains(bad.stdout, "error: BackupConfiguration demo/redis-backup: "+missing) {
		t.Errorf("BackupConfiguration without the parameter: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
	bad = run(t, nil, "plan", "-f", noHost, "-n", "demo", "--backup", "redis-backup")
	if bad.code == 0 || !strings.Contains(bad.stderr, missing) {
		t.Errorf("plan without the parameter: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}

	// An operator variable misspelt in the Function.
	typo := t.TempDir()
	writeManifest(t, typo, strings.Replace(customAddon, `{"hostname":"${HOSTNAME}"}' > ${outputDir}/output.json
  runtimeSettings`, `{"hostname":"${HOSTNAM}"}' > ${outputDir}/output.json
  runtimeSettings`, 1))
	bad = run(t, nil, "validate", "-f", typo)
	if bad.code != 1 || !strings.Contains(bad.stdout, `error: Task redis-backup: spec.steps[0].name: Invalid value: "${HOSTNAM}": Function redis-dump uses ${HOSTNAM} (spec.args[0]) with no default, `+
		`and HOSTNAM is not a variable Stash provides: did you mean HOSTNAME?`) {
		t.Errorf("misspelt variable: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestPlanRedisAddonCLI runs the guide's "check it before you run it"
// (docs/guides/write-your-own-addon.md) on its own examples: they
// validate with --strict, and plan shows the Jobs the Redis addon's Tasks
// become: its dump step and Stash's upload as init containers, or
// Stash's download and its load step, with update-status as the main
// container; the restore mounts the new claim in every step.
func TestPlanRedisAddonCLI(t *testing.T) {
	local := filepath.Join(testserver.RepoRoot(), "examples", "redis", "local.yaml")
	cluster := filepath.Join(testserver.RepoRoot(), "examples", "redis", "cluster")
	for _, f := range []string{local, cluster} {
		r := mustRun(t, nil, "validate", "-f", f, "--strict")
		if strings.Contains(r.stdout, "warning") || strings.Contains(r.stdout, "error") {
			t.Errorf("validate %s:\n%s", f, r.stdout)
		}
	}
	names := func(cs []corev1.Container) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	job := planJob(t, "-f", local, "-n", "demo", "--backup", "redis-backup")
	pod := job.Spec.Template.Spec
	if got := names(pod.InitContainers); !slices.Equal(got, []string{"redis-dump-7-0-5-0", "upload-1"}) || !slices.Equal(names(pod.Containers), []string{"update-status-2"}) {
		t.Errorf("backup Job: init %v main %v", got, names(pod.Containers))
	}
	if len(pod.InitContainers) == 2 && pod.InitContainers[0].Image != "ghcr.io/stash-backup/redis-tools:latest" {
		t.Errorf("dump step image %s", pod.InitContainers[0].Image)
	}
	job = planJob(t, "-f", local, "-n", "demo", "--restore", "redis-restore")
	pod = job.Spec.Template.Spec
	if got := names(pod.InitContainers); !slices.Equal(got, []string{"download-0", "redis-load-7-0-5-1"}) || !slices.Equal(names(pod.Containers), []string{"update-status-2"}) {
		t.Errorf("restore Job: init %v main %v", got, names(pod.Containers))
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "data-redis" && m.MountPath == "/data" }) {
			t.Errorf("restore step %s does not mount the claim at /data: %+v", c.Name, c.VolumeMounts)
		}
	}
	if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "data-redis-0"
	}) {
		t.Errorf("restore Job volumes %+v lack the claim data-redis-0", pod.Volumes)
	}
}
