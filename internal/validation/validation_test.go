package validation

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
)

func docsDir() string { return filepath.Join("..", "..", "test", "testdata", "stash-docs") }

// TestStashDocExamplesAreValid validates every example modeled on Stash's
// documentation (PostgreSQL, MySQL, MariaDB, MongoDB, Elasticsearch,
// Percona XtraDB, PVC and workload backups).
func TestStashDocExamplesAreValid(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(docsDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 8 {
		t.Fatalf("only %d example directories", len(entries))
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			set, err := manifest.Load(filepath.Join(docsDir(), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Warnings) > 0 {
				t.Errorf("warnings: %v", set.Warnings)
			}
			results := All(set, cat.With(set.Functions, set.Tasks))
			if len(results) < 2 {
				t.Fatalf("only %d objects validated", len(results))
			}
			for _, r := range results {
				if !r.Valid() {
					t.Errorf("%s %s: %v", r.Kind, r.Name, r.Findings)
				}
			}
		})
	}
}

// TestStashDocExamplesValidateAlone: each object of the examples, in a
// file of its own as Stash's guides give them, has no errors: what it
// references is a warning that it was not checked.
func TestStashDocExamplesValidateAlone(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(docsDir(), "*", "*.yaml"))
	if err != nil || len(files) < 8 {
		t.Fatalf("examples: %v %v", files, err)
	}
	warned := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			set, err := manifest.Load(dir)
			if err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			for _, r := range All(set, cat.With(set.Functions, set.Tasks)) {
				if !r.Valid() {
					t.Errorf("%s document %d: %s %s: %v", file, i+1, r.Kind, r.Name, r.Findings)
				}
				warned += r.Count(LevelWarning)
			}
		}
	}
	if warned == 0 {
		t.Error("no object alone warned of a reference it could not check")
	}
}

const base = `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: demo}
stringData: {RESTIC_PASSWORD: pw}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    gcs: {bucket: b}
    storageSecretName: s
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: db, namespace: demo}
spec:
  clientConfig:
    service: {name: db, port: 5432}
---
`

// TestInvalidManifests: wrong values are errors; references to objects
// the manifests lack, in the same manifests, only warnings.
func TestInvalidManifests(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string // each must appear in some error
		warn      []string // each must appear in some warning
	}{
		{"unknown task and bad schedule", `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "every day"
  task: {name: postgres-backup-99}
  repository: {name: repo}
  target: {ref: {kind: AppBinding, name: db}}
  retentionPolicy: {name: k, keepLast: 5, prune: true}
`, []string{"spec.schedule: Invalid value: \"every day\""},
			[]string{"spec.task.name: Task postgres-backup-99 is not in the given files nor the built-in catalog"}},
		{"missing repository, target, retention name", `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: pvc-backup}
  repository: {name: nowhere}
  retentionPolicy: {keepLast: -1, prune: true}
`, []string{"spec.target: Required value", "spec.retentionPolicy.name: Required value", "spec.retentionPolicy.keepLast: Invalid value: -1"},
			[]string{"spec.repository: Repository demo/nowhere is not in the given files: not checked"}},
		{"missing AppBinding and a hook with two actions", `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-11.9}
  repository: {name: repo}
  target: {ref: {kind: AppBinding, name: other-db}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
  hooks:
    preBackup:
      exec: {command: [sync]}
      tcpSocket: {port: 5432}
`, []string{"spec.hooks.preBackup: Invalid value: 2: set exactly one of exec"},
			[]string{"spec.target.ref: AppBinding demo/other-db is not in the given files"}},
		{"restore rules", `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  task: {name: postgres-restore-11.9}
  repository: {name: repo}
  target:
    ref: {kind: AppBinding, name: db}
    rules:
    - snapshots: [latest]
      paths: [/data]
    - sourceHost: host-1
    - targetHosts: [host-0]
    - targetHosts: [host-0]
`, []string{"spec.target.rules[0].paths: Invalid value", "set snapshots or paths, not both",
			"spec.target.rules[1].targetHosts: Duplicate value", "spec.target.rules[3].targetHosts[0]: Duplicate value"}, nil},
		{"sidecar backup without mounts, init-container restore with hooks", `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  repository: {name: repo, namespace: shared}
  target: {ref: {kind: Deployment, name: web}, paths: [/data]}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: repo}
  target:
    ref: {kind: StatefulSet, name: db}
    rules: [{paths: [/data]}]
  hooks:
    postRestore:
      exec: {command: [sync]}
`, []string{"spec.target.volumeMounts: Required value", "spec.repository.namespace: Invalid value: \"shared\"",
			"spec.hooks: Forbidden: a restore into a StatefulSet runs in its pods' init container"},
			[]string{"spec.target.ref: Deployment demo/web is not in the given files", "spec.target.ref: StatefulSet demo/db is not in the given files"}},
		{"cross-namespace repository", `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: other}
spec:
  task: {name: postgres-restore-11.9}
  repository: {name: repo, namespace: demo}
  target: {ref: {kind: AppBinding, name: db, namespace: demo}}
`, []string{"spec.repository: Forbidden", "usagePolicy.allowedNamespaces.from to All or Selector"}, nil},
		{"repository secret without password, two backends", `apiVersion: v1
kind: Secret
metadata: {name: nopw, namespace: demo}
stringData: {AWS_ACCESS_KEY_ID: a}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: bad, namespace: demo}
spec:
  backend:
    s3: {endpoint: s3.amazonaws.com, bucket: b}
    gcs: {bucket: c}
    storageSecretName: nopw
`, []string{"spec.backend.storageSecretName: Invalid value: \"nopw\": the Secret has no RESTIC_PASSWORD", "spec.backend: Invalid value: ", "set exactly one backend"}, nil},
		{"restore into an AppBinding-to-be names no Task", `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: repo}
  target:
    ref: {kind: AppBinding, name: not-yet}
    volumeClaimTemplates:
    - metadata:
        name: data-${POD_ORDINAL}
`, []string{"spec.task.name: Required value"}, nil},
	}
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(base+tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			set, err := manifest.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var errs, warns []string
			for _, r := range All(set, cat.With(set.Functions, set.Tasks)) {
				for _, f := range r.Findings {
					if f.Level == LevelError {
						errs = append(errs, f.String())
					} else {
						warns = append(warns, f.String())
					}
					if f.Level == LevelError && f.Missing != nil {
						t.Errorf("a missing reference is an error: %s", f)
					}
				}
			}
			for _, c := range []struct {
				level     string
				want, got []string
			}{{"error", tt.want, errs}, {"warning", tt.warn, warns}} {
				joined := strings.Join(c.got, "\n")
				for _, w := range c.want {
					if !strings.Contains(joined, w) {
						t.Errorf("no %s contains %q; %ss:\n%s", c.level, w, c.level, joined)
					}
				}
				if len(c.want) == 0 && len(c.got) > 0 {
					t.Errorf("unexpected %ss:\n%s", c.level, joined)
				}
			}
		})
	}
}
