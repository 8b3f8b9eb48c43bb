package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/testserver"
)

func localRuntimeManifests(t *testing.T, pg *testserver.Postgres, extra string) string {
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: pg-auth, namespace: demo}
stringData: {username: %s, password: %s}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg, namespace: demo}
spec:
  clientConfig: {url: "postgresql://%s:%d/postgres"}
  secret: {name: pg-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: e2e}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    local:
      mountPath: /safe/data
      hostPath: {path: %s}
      subPath: pg
    storageSecretName: repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: pg-backup, namespace: demo}
spec:
  schedule: "*/5 * * * *"
  task:
    name: postgres-backup-15.1
    params: [{name: waitTimeout, value: "3"}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: keep-3, keepLast: 3, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: pg-restore, namespace: demo}
spec:
  task: {name: postgres-restore-15.1}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules: [{snapshots: [latest]}]
%s`, pg.User, pg.Password, pg.Host, pg.Port, filepath.Join(dir, "backups"), extra))
	return dir
}

func TestLocalRuntimeTriggerAndRestore(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app; \\connect app\n CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;")
	dir := localRuntimeManifests(t, pg, "")
	state := t.TempDir()
	r := mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	if !strings.Contains(r.stdout, "BackupSession demo/pg-backup-") || !strings.Contains(r.stdout, ": Succeeded") {
		t.Fatalf("trigger: %s\n%s", r.stdout, r.stderr)
	}
	// The repository landed in hostPath/subPath, as Stash puts it.
	if _, err := os.Stat(filepath.Join(dir, "backups", "pg", "kopia.repository.f")); err != nil {
		t.Errorf("repository not at hostPath/subPath: %v", err)
	}
	pg.SQL(t, "postgres", "DROP DATABASE app;")
	r = mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "pg-restore")
	if !strings.Contains(r.stdout, "RestoreSession demo/pg-restore: Succeeded") {
		t.Fatalf("restore: %s\n%s", r.stdout, r.stderr)
	}
	if got := pg.SQL(t, "app", "SELECT count(*) FROM t"); got != "2000" {
		t.Errorf("restored rows %s", got)
	}
	r = mustRun(t, nil, "local", "sessions", "--state-dir", state, "-o", "json")
	var sessions []struct {
		Name, Kind, Phase string
		Status            json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.stdout), &sessions); err != nil || len(sessions) != 2 {
		t.Fatalf("sessions %s: %v", r.stdout, err)
	}
	if sessions[0].Kind != "BackupSession" || sessions[0].Phase != "Succeeded" || !strings.Contains(string(sessions[0].Status), `dumpfile.sql`) {
		t.Errorf("backup session %s %s %s: %s", sessions[0].Name, sessions[0].Kind, sessions[0].Phase, sessions[0].Status)
	}

	// A failing backup (server down) is a Failed session and exit 1.
	pg.Stop()
	f := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	if f.code == 0 || !strings.Contains(f.stdout, ": Failed") || !strings.Contains(f.stdout, "not ready after 3s") {
		t.Errorf("trigger with the server down: %+v", f)
	}
}

func TestLocalRuntimeRefusesForeignImagesAndInvalidManifests(t *testing.T) {
	pg := &testserver.Postgres{User: "u", Password: "p", Host: "127.0.0.1", Port: 1}
	dir := localRuntimeManifests(t, pg, `---
apiVersion: stash.appscode.com/v1beta1
kind: Function
metadata: {name: custom-dump}
spec:
  image: docker.io/library/postgres:15
  args: [pg_dumpall]
---
apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: custom-task}
spec:
  steps: [{name: custom-dump}, {name: update-status}]
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: custom, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: custom-task}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
`)
	state := t.TempDir()
	// No container runtime answers: the step of another image fails the
	// session before anything runs, saying why.
	t.Setenv("CONTAINERD_ADDRESS", filepath.Join(t.TempDir(), "no-containerd.sock"))
	r := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "custom")
	if out := r.stdout + r.stderr; r.code == 0 || !strings.Contains(out, "image docker.io/library/postgres:15 is not a Stash image: only Stash's own images run locally without a container runtime") ||
		!strings.Contains(out, "install and start containerd, or run this step in a cluster") {
		t.Errorf("foreign image: %+v", r)
	}
	bad := t.TempDir()
	writeManifest(t, bad, `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: b, namespace: demo}
spec:
  schedule: "not cron"
  task: {name: postgres-backup-15.1}
  repository: {name: missing}
  target: {ref: {kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
`)
	r = run(t, nil, "local", "trigger", "-f", bad, "--state-dir", state, "-n", "demo", "b")
	if r.code == 0 || !strings.Contains(r.stderr, "nothing was started") || !strings.Contains(r.stderr, "spec.schedule: Invalid value") ||
		!strings.Contains(r.stderr, `spec.repository: Not found: "demo/missing"`) {
		t.Errorf("invalid manifests: %+v", r)
	}
}

// TestLocalRuntimeRetryAndKill: a failing session is retried as
// retryConfig says; a runtime killed mid-backup leaves a Failed session and
// the next backup succeeds.
func TestLocalRuntimeRetryAndKill(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE big; \\connect big\n CREATE TABLE b AS SELECT g, repeat(md5(g::text), 16) AS pad FROM generate_series(1, 300000) g;")
	dir := localRuntimeManifests(t, pg, `---
apiVersion: v1
kind: Secret
metadata: {name: wrong-auth, namespace: demo}
stringData: {username: postgres, password: wrong}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: wrong, namespace: demo}
spec:
  clientConfig: {url: "postgresql://127.0.0.1:1/postgres"}
  secret: {name: wrong-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: flaky, namespace: demo}
spec:
  schedule: "@daily"
  task:
    name: postgres-backup-15.1
    params: [{name: waitTimeout, value: "1"}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: wrong}}
  retentionPolicy: {name: k, keepLast: 5, prune: true}
  backupHistoryLimit: 5
  retryConfig: {maxRetry: 2, delay: 1s}
`)
	state := t.TempDir()
	r := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "flaky")
	if r.code == 0 || !strings.Contains(r.stdout, "-retry-2: Failed") {
		t.Errorf("retried trigger: %+v", r)
	}
	var flaky []string
	for _, s := range listSessions(t, state) {
		if s.InvokerName == "flaky" {
			flaky = append(flaky, s.Name+":"+s.Phase)
		}
	}
	if len(flaky) != 3 {
		t.Errorf("flaky sessions %v: want the first and two retries", flaky)
	}

	cmd := exec.Command(stashBin, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		for _, s := range listSessions(t, state) {
			if s.InvokerName == "pg-backup" && s.Phase == "Running" {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	var killed *sessionJSON
	for _, s := range listSessions(t, state) {
		if s.InvokerName == "pg-backup" {
			s := s
			killed = &s
		}
	}
	if killed == nil || killed.Phase != "Failed" || !strings.Contains(killed.Error, "stopped (killed or crashed)") {
		t.Fatalf("session of the killed runtime: %+v", killed)
	}
	r = mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	if !strings.Contains(r.stdout, "Succeeded") {
		t.Errorf("backup after the kill: %+v", r)
	}
}

func TestLocalRuntimeMariaDB(t *testing.T) {
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.t SELECT seq, MD5(seq) FROM app.seq_1_to_3000;")
	dir := mariaManifests(t, m, `---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: maria-backup, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: mariadb-backup-10.6.23}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: maria}}
  retentionPolicy: {name: k, keepLast: 3, prune: true}
`)
	state := t.TempDir()
	mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "maria-backup")
	m.SQL(t, "DROP DATABASE app;")
	mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "maria-restore")
	if got := m.SQL(t, "SELECT COUNT(*) FROM app.t"); got != "3000" {
		t.Errorf("restored rows: %s", got)
	}
	r := mustRun(t, nil, "local", "sessions", "--state-dir", state)
	if !strings.Contains(r.stdout, "maria-backup") || !strings.Contains(r.stdout, "host-0") || !strings.Contains(r.stdout, "KiB") {
		t.Errorf("sessions table:\n%s", r.stdout)
	}
}

// mariaManifests writes the AppBinding of MariaDB m and its Secret, a
// local Repository "repo" (at <dir>/backups), the RestoreSession
// maria-restore and extra, and returns the manifest directory.
func mariaManifests(t *testing.T, m *testserver.MariaDB, extra string) string {
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: db-auth, namespace: demo}
stringData: {username: %s, password: %s}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: maria, namespace: demo}
spec:
  clientConfig: {url: "tcp(%s:%d)/"}
  secret: {name: db-auth}
---
%s---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: maria-restore, namespace: demo}
spec:
  task: {name: mariadb-restore-10.6.23}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: maria}
    rules: [{snapshots: [latest]}]
%s`, m.User, m.Password, m.Host, m.Port, localRepository("repo", filepath.Join(dir, "backups")), extra))
	return dir
}
