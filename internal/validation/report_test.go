package validation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
)

// Documents the cases below combine; each names the objects the others
// may lack.
const (
	secretDoc = `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: demo}
stringData: {RESTIC_PASSWORD: pw, GOOGLE_PROJECT_ID: p, GOOGLE_SERVICE_ACCOUNT_JSON_KEY: '{}'}
`
	repoDoc = `apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    gcs: {bucket: b}
    storageSecretName: s
`
	pvcDoc = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: demo}
`
	appBindingDoc = `apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: db, namespace: demo}
spec:
  clientConfig:
    service: {name: db, port: 5432}
  secret: {name: db-auth}
`
	pvcBackupDoc = `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: pvc-backup}
  repository: {name: repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    volumeMounts: [{name: data, mountPath: /data}]
    paths: [/data]
  retentionPolicy: {name: k, keepLast: 1, prune: true}
`
)

func docs(ds ...string) string { return strings.Join(ds, "---\n") }

// TestMissingReferencesAreWarnings: each kind of reference to an object
// the given manifests (and the catalog) lack is a warning that says what
// was not checked, never an error; --strict makes it one; and the local
// runtime, which runs from the manifests alone, is still refused by the
// objects a session needs, with the field error reconcilers show.
func TestMissingReferencesAreWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		object    string // the Result holding the warning
		field     string
		message   string
		// blocks is the field error the local runtime refuses the object
		// with, "" when the reference does not stop a run.
		blocks string
	}{
		{"Repository of a BackupConfiguration", docs(pvcDoc, pvcBackupDoc),
			"BackupConfiguration demo/bc", "spec.repository",
			"Repository demo/repo is not in the given files: not checked; pass it with -f to check it",
			`spec.repository: Not found: "demo/repo"`},
		{"Repository in another namespace", docs(pvcDoc, strings.Replace(pvcBackupDoc, "{name: repo}", "{name: repo, namespace: shared}", 1)),
			"BackupConfiguration demo/bc", "spec.repository",
			"Repository shared/repo is not in the given files: not checked (nor whether its usagePolicy lets namespace demo use it)",
			`spec.repository: Not found: "shared/repo"`},
		{"storage Secret of a Repository", repoDoc,
			"Repository demo/repo", "spec.backend.storageSecretName",
			"Secret demo/s is not in the given files: not checked (nor whether it holds RESTIC_PASSWORD and the keys the backend needs)",
			`spec.backend.storageSecretName: Not found: "Secret demo/s"`},
		{"Task in neither the files nor the catalog", docs(secretDoc, repoDoc, pvcDoc, strings.Replace(pvcBackupDoc, "pvc-backup", "my-backup", 1)),
			"BackupConfiguration demo/bc", "spec.task.name",
			"Task my-backup is not in the given files nor the built-in catalog (stash addons list): not checked (nor its Functions)",
			`spec.task.name: Not found: "my-backup"`},
		{"Function of a Task in the files", `apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: my-task}
spec:
  steps: [{name: my-function}, {name: update-status}]
`, "Task my-task", "spec.steps[0].name",
			"Function my-function is not in the given files nor the built-in catalog (stash addons list): not checked",
			`spec.steps[0].name: Not found: "my-function"`},
		{"Function of the Task a BackupConfiguration runs", docs(secretDoc, repoDoc, pvcDoc, strings.Replace(pvcBackupDoc, "pvc-backup", "my-task", 1), `apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: my-task}
spec:
  steps: [{name: my-function}, {name: update-status}]
`), "BackupConfiguration demo/bc", "spec.task.name",
			"Function my-function is not in the given files nor the built-in catalog (stash addons list): not checked (step 0 of Task my-task runs it)",
			`spec.task.name: Not found: "Task my-task step 0: Function my-function"`},
		{"AppBinding target", docs(secretDoc, repoDoc, `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-11.9}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
`), "BackupConfiguration demo/bc", "spec.target.ref",
			"AppBinding demo/db is not in the given files: not checked; pass it with -f to check it",
			`spec.target.ref: Not found: "AppBinding demo/db"`},
		{"AppBinding whose StashAddon parameters name the Task", docs(secretDoc, repoDoc, `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}
    rules: [{snapshots: [latest]}]
`), "RestoreSession demo/rs", "spec.target.ref",
			"AppBinding demo/db is not in the given files: not checked (nor the Task its StashAddon parameters name)",
			`spec.target.ref: Not found: "AppBinding demo/db"`},
		{"Secret of an AppBinding", appBindingDoc,
			"AppBinding demo/db", "spec.secret.name",
			"Secret demo/db-auth is not in the given files: not checked (nor whether it holds the credentials)",
			`spec.secret.name: Not found: "Secret demo/db-auth"`},
		{"target PVC", docs(secretDoc, repoDoc, pvcBackupDoc),
			"BackupConfiguration demo/bc", "spec.target.ref",
			"PersistentVolumeClaim demo/data is not in the given files: not checked; pass it with -f to check it", ""},
		{"target workload of a restore", docs(secretDoc, repoDoc, `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  repository: {name: repo}
  target:
    ref: {apiVersion: apps/v1, kind: StatefulSet, name: db}
    volumeMounts: [{name: data, mountPath: /data}]
    rules: [{paths: [/data]}]
`), "RestoreSession demo/rs", "spec.target.ref",
			"StatefulSet demo/db is not in the given files: not checked; pass it with -f to check it", ""},
		{"Namespace a usagePolicy selector needs", docs(secretDoc, pvcDoc, `apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: shared}
spec:
  backend:
    gcs: {bucket: b}
    storageSecretName: s
  usagePolicy:
    allowedNamespaces: {from: Selector, selector: {matchLabels: {team: a}}}
`, strings.Replace(pvcBackupDoc, "{name: repo}", "{name: repo, namespace: shared}", 1), strings.Replace(secretDoc, "demo", "shared", 1)),
			"BackupConfiguration demo/bc", "spec.repository",
			"Namespace demo is not in the given files: not checked (nor whether its labels match the usagePolicy selector of Repository shared/repo)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := validateDoc(t, tc.doc)
			var got *Result
			for i, r := range results {
				if !r.Valid() {
					t.Errorf("%s %s has errors: %v", r.Kind, r.Name, r.Findings)
				}
				if r.Kind+" "+r.Name == tc.object {
					got = &results[i]
				}
			}
			if got == nil {
				t.Fatalf("no result for %s", tc.object)
			}
			if len(got.Findings) != 1 {
				t.Fatalf("findings %v, want one warning", got.Findings)
			}
			f := got.Findings[0]
			if f.Level != LevelWarning || f.Object != tc.object || f.Field != tc.field || !strings.Contains(f.Message, tc.message) || f.Missing == nil {
				t.Fatalf("finding %+v\nwant a warning on %s %s containing %q", f, tc.object, tc.field, tc.message)
			}
			// Other objects may only miss the same object (a Task in
			// the files and its invoker miss the same Function).
			for _, r := range results {
				for _, o := range r.Findings {
					if o.Missing == nil || *o.Missing != *f.Missing {
						t.Errorf("%s %s: unexpected %v", r.Kind, r.Name, o)
					}
				}
			}
			if b := strings.Join(got.Blocking(), "; "); b != tc.blocks {
				t.Errorf("blocking %q, want %q", b, tc.blocks)
			}
			Strict(results)
			if got.Valid() || got.Findings[0].Level != LevelError || !strings.HasPrefix(got.Findings[0].String(), "error: "+tc.object+": "+tc.field+": ") {
				t.Errorf("--strict: %v", got.Findings)
			}
		})
	}
}

// TestWrongValuesAreErrors: what the files let us check and find wrong is
// an error even when references are missing, and never reads as a missing
// reference.
func TestWrongValuesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, object, field, message string
	}{
		{"schedule", strings.Replace(pvcBackupDoc, `"@daily"`, `"every day"`, 1),
			"BackupConfiguration demo/bc", "spec.schedule", `Invalid value: "every day": not a cron expression`},
		{"retention", strings.Replace(pvcBackupDoc, "keepLast: 1", "keepLast: -1", 1),
			"BackupConfiguration demo/bc", "spec.retentionPolicy.keepLast", "Invalid value: -1: must be 0 or more"},
		{"Secret without a password", docs(repoDoc, `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: demo}
stringData: {GOOGLE_PROJECT_ID: p}
`), "Repository demo/repo", "spec.backend.storageSecretName", "the Secret has no RESTIC_PASSWORD"},
		{"no backend", `apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend: {storageSecretName: s}
`, "Repository demo/repo", "spec.backend", "Invalid value"},
		{"no Task for a database", strings.Replace(strings.Replace(pvcBackupDoc, "task: {name: pvc-backup}", "", 1),
			"kind: PersistentVolumeClaim", "kind: MongoDB", 1),
			"BackupConfiguration demo/bc", "spec.task.name", "Required value"},
		{"backup into a read-only backend", docs(pvcDoc, secretDoc, strings.Replace(repoDoc, "gcs: {bucket: b}", "swift: {container: c, prefix: p}", 1), pvcBackupDoc),
			"BackupConfiguration demo/bc", "spec.repository.name", "has a swift backend, which restores, lists, checks and imports Stash's restic backups but takes no new ones"},
		{"Task without steps", `apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: t}
spec: {steps: []}
`, "Task t", "spec.steps", "Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var found bool
			for _, r := range validateDoc(t, tc.doc) {
				for _, f := range r.Findings {
					if f.Level == LevelError && f.Missing != nil {
						t.Errorf("a missing reference is an error: %s", f)
					}
					if f.Level == LevelError && f.Object == tc.object && f.Field == tc.field && strings.Contains(f.Message, tc.message) {
						found = true
						if b := strings.Join(r.Blocking(), "; "); !strings.Contains(b, tc.field+": "+f.Message) {
							t.Errorf("the local runtime is not refused: %q", b)
						}
					}
				}
				if r.Kind+" "+r.Name == tc.object && r.Valid() {
					t.Errorf("%s is valid", tc.object)
				}
			}
			if !found {
				t.Errorf("no error on %s %s containing %q", tc.object, tc.field, tc.message)
			}
		})
	}
}

// TestUnknownFieldsAreWarnings: fields Stash does not define are
// warnings on their object, of a kind validated or not, and do not stop
// the local runtime.
func TestUnknownFieldsAreWarnings(t *testing.T) {
	results := validateDoc(t, docs(strings.Replace(secretDoc, "stringData:", "strngData: {}\nstringData:", 1),
		strings.Replace(repoDoc, "  backend:", "  wipeOut: false\n  wipOut: true\n  backend:", 1)))
	var got []string
	for _, r := range results {
		for _, f := range r.Findings {
			got = append(got, f.String())
		}
		if len(r.Blocking()) > 0 {
			t.Errorf("%s %s blocks: %v", r.Kind, r.Name, r.Blocking())
		}
	}
	want := "warning: Repository demo/repo: spec.wipOut: unknown field: Stash does not define it; check its spelling and indentation\n" +
		"warning: Secret demo/s: strngData: unknown field: Stash does not define it; check its spelling and indentation"
	if strings.Join(got, "\n") != want {
		t.Errorf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// TestNotFoundErrorsReadAsBefore: the reconcilers and the webhook show the
// NotFound errors as they always have.
func TestNotFoundErrorsReadAsBefore(t *testing.T) {
	e := notFound(field.NewPath("spec", "repository"), Ref{Object: Object{Kind: "Repository", Namespace: "demo", Name: "r"}}, "demo/r")
	if got, want := e.Error(), `spec.repository: Not found: "demo/r"`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if r, ok := MissingRef(e); !ok || r.Object.String() != "Repository demo/r" {
		t.Errorf("MissingRef = %v, %v", r, ok)
	}
	if _, ok := MissingRef(field.NotFound(field.NewPath("x"), "y")); ok {
		t.Error("a plain NotFound is a missing reference")
	}
}

func validateDoc(t *testing.T, doc string) []Result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := manifest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return All(set, cat.With(set.Functions, set.Tasks))
}
