package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// TestLocalRuntimeHooks: a preBackup exec hook runs before the dump, a
// postBackup httpPost hook gets the rendered summary, an OnFailure hook is
// skipped on success, and a failing preBackup hook fails the session.
func TestLocalRuntimeHooks(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app;")
	marker := filepath.Join(t.TempDir(), "pre-hook-ran")
	dir := localRuntimeManifests(t, pg, fmt.Sprintf(`---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: hooked, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 5, prune: true}
  hooks:
    preBackup:
      exec:
        command: ["sh", "-c", "echo '{{.Invoker.Name}}' > %s"]
    postBackup:
      httpPost:
        host: 127.0.0.1
        port: %s
        path: /notify
        body: '{"text": "{{.Invoker.Name}} {{.Status.Phase}}"}'
      executionPolicy: OnSuccess
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: on-failure-only, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 5, prune: true}
  hooks:
    postBackup:
      httpPost: {host: 127.0.0.1, port: %s, path: /failure, body: "{{.Status.Error}}"}
      executionPolicy: OnFailure
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: pre-fails, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 5, prune: true}
  hooks:
    preBackup:
      exec: {command: ["sh", "-c", "echo database is locked >&2; exit 1"]}
`, marker, port, port))
	state := t.TempDir()
	r := mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "hooked")
	if !strings.Contains(r.stdout, "Succeeded") {
		t.Fatalf("hooked backup: %+v", r)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "hooked" {
		t.Errorf("preBackup hook: %q %v", b, err)
	}
	mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "on-failure-only")
	mu.Lock()
	got := strings.Join(bodies, "\n")
	mu.Unlock()
	if got != `/notify {"text": "hooked Succeeded"}` {
		t.Errorf("hook requests: %q", got)
	}
	f := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pre-fails")
	if f.code == 0 || !strings.Contains(f.stdout, "Failed") || !strings.Contains(f.stdout+f.stderr, "database is locked") {
		t.Errorf("failing pre hook: %+v", f)
	}
	for _, s := range listSessions(t, state) {
		if s.InvokerName == "pre-fails" && s.Phase != "Failed" {
			t.Errorf("pre-fails session %+v", s)
		}
	}
}
