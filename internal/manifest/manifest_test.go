package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const repoYAML = `apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata:
  name: gcs-repo
  namespace: demo
spec:
  backend:
    gcs:
      bucket: stash-testing
      prefix: /demo/deployment
    storageSecretName: gcs-secret
  wipeOut: false
`

func TestLoadDirectoryAndSecrets(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "repo.yaml", repoYAML)
	write(t, dir, "nested/secret.yml", `# comment only document
---
apiVersion: v1
kind: Secret
metadata:
  name: gcs-secret
  namespace: demo
data:
  RESTIC_PASSWORD: Y2hhbmdlaXQ=
stringData:
  GOOGLE_PROJECT_ID: my-project
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
`)
	write(t, dir, "README.md", "not a manifest")
	write(t, dir, ".hidden/x.yaml", "garbage: [")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Repository("demo", "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "gcs-repo" || r.Spec.Backend.GCS == nil || r.Spec.Backend.GCS.Prefix != "/demo/deployment" {
		t.Errorf("repository %+v", r.Spec.Backend)
	}
	sec, err := s.StorageSecret(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(sec["RESTIC_PASSWORD"]) != "changeit" || string(sec["GOOGLE_PROJECT_ID"]) != "my-project" {
		t.Errorf("secret data %v", sec)
	}
	if s.Other["apps/v1/Deployment"] != 1 {
		t.Errorf("other kinds %v", s.Other)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", "apiVersion and kind are required"},
		{"missing name", "apiVersion: v1\nkind: Secret\n", "Secret: metadata.name is required"},
		{"bad yaml", "apiVersion: v1\nkind: Secret\nmetadata: [\n", "document 1"},
		{"duplicate", repoYAML + "---\n" + repoYAML, "Repository demo/gcs-repo is defined twice"},
		{"wrong type", "apiVersion: stash.appscode.com/v1alpha1\nkind: Repository\nmetadata: {name: r}\nspec: {wipeOut: maybe}\n", `Repository "r"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "m.yaml", tt.content)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "m.yaml") {
				t.Errorf("error %v, want %q and the file name", err, tt.want)
			}
		})
	}
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("no paths: %v", err)
	}
	if _, err := Load("/nonexistent/manifests"); err == nil {
		t.Error("missing path accepted")
	}
}

func TestRepositorySelection(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", repoYAML)
	write(t, dir, "b.yaml", strings.Replace(repoYAML, "gcs-repo", "other", 1))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Repository("demo", ""); err == nil || !strings.Contains(err.Error(), "--repository") {
		t.Errorf("ambiguous: %v", err)
	}
	if r, err := s.Repository("demo", "other"); err != nil || r.Name != "other" {
		t.Errorf("by name: %v %v", r, err)
	}
	if _, err := s.Repository("default", "other"); err == nil {
		t.Error("wrong namespace accepted")
	}
	r, _ := s.Repository("demo", "other")
	if _, err := s.StorageSecret(r); err == nil || !strings.Contains(err.Error(), "demo/gcs-secret") {
		t.Errorf("missing secret: %v", err)
	}
}

// TestUnknownFieldWarnings: every field Stash does not define, and every
// field given twice, is a warning naming the object and the field's path,
// as the API server reports them; the object still loads.
func TestUnknownFieldWarnings(t *testing.T) {
	p := write(t, t.TempDir(), "m.yaml", `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  Schedule: "@hourly"
  retentonPolicy: {}
  retentionPolicy: {name: k, keepLastt: 3}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {a: b}
strngData: {c: d}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec: {anything: goes}
`)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string // in the order of the keys, sorted
	for _, w := range s.Warnings {
		got = append(got, w.Kind+" "+w.Key+" "+w.Field+" "+w.Source)
		if !strings.HasPrefix(w.Message, "unknown field: ") {
			t.Errorf("message %q", w.Message)
		}
	}
	want := []string{
		"BackupConfiguration demo/bc spec.Schedule " + p + "#1",
		"BackupConfiguration demo/bc spec.retentionPolicy.keepLastt " + p + "#1",
		"BackupConfiguration demo/bc spec.retentonPolicy " + p + "#1",
		"Secret default/s strngData " + p + "#2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if bc := s.BackupConfigurations["demo/bc"]; bc == nil || bc.Spec.RetentionPolicy.Name != "k" {
		t.Errorf("object with unknown fields not loaded: %+v", bc)
	}
	if s.Source("Deployment", "demo/web") != p+"#3" {
		t.Errorf("objects of other kinds are not recorded: %v", s.Sources)
	}
}
