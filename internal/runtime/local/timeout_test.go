package local

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hungManifests are a backup and a restore of a PostgreSQL database into
// a repository under dir; no server runs, and the steps never get that far.
func hungManifests(t *testing.T, dir string) string {
	t.Helper()
	m := `
apiVersion: v1
kind: Secret
metadata: {name: db-auth, namespace: demo}
stringData: {username: postgres, password: pw}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: db, namespace: demo}
spec:
  type: kubedb.com/postgres
  version: "15.1"
  clientConfig:
    url: postgresql://127.0.0.1:9/postgres?sslmode=disable
  secret: {name: db-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: pw}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    local:
      mountPath: /safe/data
      hostPath: {path: ` + filepath.Join(dir, "repo") + `}
    storageSecretName: repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: db-backup, namespace: demo}
spec:
  schedule: "*/30 * * * *"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: db-restore, namespace: demo}
spec:
  task: {name: postgres-restore-15.1}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}
    rules: [{snapshots: [latest]}]
`
	f := filepath.Join(dir, "db.yaml")
	if err := os.WriteFile(f, []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestHungStepEndsAtDefaultTimeout: an invoker without timeOut still has
// a deadline, the operator's default (here shortened), so a step that
// hangs ends its session Failed instead of keeping it Running, and every
// later trigger Skipped, for as long as the runtime lives.
func TestHungStepEndsAtDefaultTimeout(t *testing.T) {
	dir := t.TempDir()
	// Every step of the Job is this binary: it hangs.
	bin := filepath.Join(dir, "stash")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 600\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{Files: []string{hungManifests(t, dir)}, StateDir: filepath.Join(dir, "state"), Binary: bin,
		Stdout: io.Discard, Stderr: io.Discard, DefaultTimeout: 2 * time.Second}
	defer rt.Close()
	for _, run := range []struct {
		kind string
		do   func(context.Context) (*Session, error)
	}{
		{"backup", func(ctx context.Context) (*Session, error) { return rt.Trigger(ctx, "demo", "db-backup") }},
		{"restore", func(ctx context.Context) (*Session, error) { return rt.Restore(ctx, "demo", "db-restore") }},
	} {
		// The test's own bound: without a default deadline the step
		// would hang until this cancels it.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		sess, err := run.do(ctx)
		cancel()
		if sess == nil || sess.Phase != "Failed" || !strings.Contains(sess.Error, "timeOut") || !strings.Contains(sess.Error, "2s") {
			t.Errorf("%s: session %+v, error %v: want Failed for the 2s default timeOut", run.kind, sess, err)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("%s took %s with a 2s default timeOut", run.kind, took.Round(time.Second))
		}
	}
}
