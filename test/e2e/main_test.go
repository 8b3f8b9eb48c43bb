// Package e2e drives the stash binary end to end: real processes, real
// repositories on local disk and MinIO, real signals.
package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

var stashBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stash-e2e-bin-")
	if err != nil {
		panic(err)
	}
	stashBin = filepath.Join(dir, "stash")
	// Built as users get it (hack/build-stash.sh).
	build := exec.Command(filepath.Join(testserver.RepoRoot(), "hack", "build-stash.sh"), stashBin)
	build.Dir = testserver.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build stash:", err)
		os.Exit(1)
	}
	code := m.Run()
	shared.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result of one stash run.
type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(stashBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run stash %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func mustRun(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	r := run(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("stash %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// localRepo writes a Repository and its Secret for a local repository and
// returns the manifest directory.
func localRepo(t *testing.T, password string) string {
	t.Helper()
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: repo-secret
  namespace: e2e
data:
  RESTIC_PASSWORD: %s
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata:
  name: repo
  namespace: e2e
spec:
  backend:
    storageSecretName: repo-secret
    local:
      mountPath: /safe/data
      hostPath:
        path: %s
      subPath: repo
`, base64.StdEncoding.EncodeToString([]byte(password)), filepath.Join(dir, "storage")))
	return dir
}

func s3Repo(t *testing.T, m *testserver.MinIO, bucket, endpoint string) string {
	t.Helper()
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: s3-secret
stringData:
  RESTIC_PASSWORD: e2e-password
  AWS_ACCESS_KEY_ID: %s
  AWS_SECRET_ACCESS_KEY: %s
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata:
  name: s3-repo
spec:
  backend:
    storageSecretName: s3-secret
    s3:
      endpoint: http://%s
      bucket: %s
      prefix: e2e/postgres
`, m.AccessKey, m.SecretKey, endpoint, bucket))
	return dir
}

func writeManifest(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "repository.yaml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// localRepository is the manifests of a Repository name on a local
// backend at dir (the runtime mounts it at /safe/data) and its Secret,
// repo-secret; the caller puts the document separator after it.
func localRepository(name, dir string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: e2e}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: %s, namespace: demo}
spec:
  backend:
    local: {mountPath: /safe/data, hostPath: {path: %s}}
    storageSecretName: repo-secret
`, name, dir)
}
