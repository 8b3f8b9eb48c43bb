package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
