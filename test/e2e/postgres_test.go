package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/testserver"
)

// pgManifests writes an AppBinding for the server, its Secret, and a local
// Repository whose mountPath is the repository directory itself, so the
// Function's --provider=local --bucket=<mountPath> flags work as they are.
func pgManifests(t *testing.T, pg *testserver.Postgres) string {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: pg-auth, namespace: demo}
stringData: {username: %s, password: %s}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg, namespace: demo}
spec:
  type: kubedb.com/postgres
  version: "15.1"
  clientConfig:
    url: postgresql://%s:%d/postgres?sslmode=disable
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
    local: {mountPath: %s}
    storageSecretName: repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: pg-backup, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: keep-2, keepLast: 2, prune: true}
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
`, pg.User, pg.Password, pg.Host, pg.Port, repoDir))
	return dir
}

// stepArgs plans the Job and returns the addon step's args, as the
// catalog's Function gives them (Stash's flags).
func stepArgs(t *testing.T, dir string, restore bool, session string) []string {
	return plannedArgs(t, dir, restore, session)[0]
}

// plannedArgs returns the args of every container of the planned Job, in
// order (init containers, then the main one: update-status).
func plannedArgs(t *testing.T, dir string, restore bool, session string) [][]string {
	t.Helper()
	set, err := manifest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	repo := set.Repositories["demo/repo"]
	if restore {
		jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: set.RestoreSessions["demo/pg-restore"], Repository: repo, Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		p := jobs[0].Spec.Template.Spec
		return [][]string{p.InitContainers[0].Args, p.Containers[0].Args}
	}
	job, err := plan.BackupJob(plan.BackupRequest{Config: set.BackupConfigurations["demo/pg-backup"], Session: session, Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	p := job.Spec.Template.Spec
	return [][]string{p.InitContainers[0].Args, p.Containers[0].Args}
}

func readOutput(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "output.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPostgresStepsWithStashFunctionFlags(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app; \\connect app\n CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;")
	dir := pgManifests(t, pg)
	out := t.TempDir()
	stateDir := t.TempDir()
	var lastSnapshot string
	for i := range 3 {
		args := stepArgs(t, dir, false, fmt.Sprintf("pg-backup-%d", i))
		if args[0] != "backup-pg" || !contains(args, "--retention-keep-last=2") || !contains(args, "--output-dir=/stash-tmp/output") {
			t.Fatalf("planned args %v", args)
		}
		args = replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out)
		args = replace(args, "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
		mustRun(t, nil, append(args, "-f", dir)...)
		res := readOutput(t, out)
		hs := res["hostBackupStats"].([]any)[0].(map[string]any)
		if hs["phase"] != "Succeeded" || hs["hostname"] != "host-0" {
			t.Fatalf("output.json %v", res)
		}
		snap := hs["snapshots"].([]any)[0].(map[string]any)
		if snap["path"] != "dumpfile.sql" || snap["name"] == "" || snap["totalSize"] == "" {
			t.Fatalf("snapshot stats %v", snap)
		}
		lastSnapshot = snap["name"].(string)
		// Retention's outcome: the third backup removes the first dump.
		if ret, _ := res["retention"].(map[string]any); ret == nil || ret["snapshotsRemoved"] != float64(max(0, i-1)) || ret["error"] != nil {
			t.Fatalf("retention in output.json after backup %d: %v", i, res["retention"])
		}
		// The Job's last container, update-status, records the result.
		status := plannedArgs(t, dir, false, fmt.Sprintf("pg-backup-%d", i))[1]
		status = replace(status, "--output-dir=/stash-tmp/output", "--output-dir="+out)
		r := mustRun(t, nil, append(status, "--state-dir", stateDir)...)
		if !strings.Contains(r.stdout, fmt.Sprintf("BackupSession demo/pg-backup-%d: Succeeded", i)) {
			t.Errorf("update-status: %s", r.stdout)
		}
		b := recordedStatus(t, stateDir, "BackupSession", fmt.Sprintf("pg-backup-%d", i))
		if !strings.Contains(string(b), `"hostname": "host-0"`) || !strings.Contains(string(b), `"path": "dumpfile.sql"`) ||
			!strings.Contains(string(b), `"kind": "AppBinding"`) {
			t.Errorf("recorded status %s", b)
		}
	}
	// A retention policy that failed after a committed backup: the host
	// stays Succeeded with its snapshot, RetentionPolicyApplied is False,
	// and that fails the session, as in Stash.
	failed := `{"hostBackupStats": [{"hostname": "host-0", "phase": "Succeeded", "snapshots": [{"name": "abc", "path": "dumpfile.sql"}]}],
  "retention": {"snapshotsRemoved": 0, "error": "prune: storage unavailable"}}`
	if err := os.WriteFile(filepath.Join(out, "output.json"), []byte(failed), 0o644); err != nil {
		t.Fatal(err)
	}
	status := plannedArgs(t, dir, false, "pg-backup-ret")[1]
	status = replace(status, "--output-dir=/stash-tmp/output", "--output-dir="+out)
	if r := mustRun(t, nil, append(status, "--state-dir", stateDir)...); !strings.Contains(r.stdout, "BackupSession demo/pg-backup-ret: Failed") {
		t.Errorf("update-status after a failed retention: %s", r.stdout)
	}
	b := recordedStatus(t, stateDir, "BackupSession", "pg-backup-ret")
	if !strings.Contains(string(b), `"type": "RetentionPolicyApplied"`) || !strings.Contains(string(b), `"message": "prune: storage unavailable"`) ||
		!strings.Contains(string(b), `"phase": "Succeeded"`) || !strings.Contains(string(b), `"name": "abc"`) {
		t.Errorf("recorded status after a failed retention: %s", b)
	}

	// Retention (keep last 2) ran after each successful backup.
	repoManifest := filepath.Join(dir, "repository.yaml")
	snaps := snapshots(t, repoManifest, "-n", "demo", "--repository", "repo")
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots after 3 backups with keepLast 2", len(snaps))
	}
	for _, s := range snaps {
		if s.Tags["backup-session"] == "" || s.Path != "dumpfile.sql" {
			t.Errorf("snapshot %+v", s)
		}
	}

	pg.SQL(t, "postgres", "DROP DATABASE app;")
	args := stepArgs(t, dir, true, "")
	if args[0] != "restore-pg" || !contains(args, "--source-hostname=host-0") || !contains(args, "--snapshot=latest") {
		t.Fatalf("planned restore args %v", args)
	}
	args = replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out)
	args = replace(args, "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
	// Empty host names, as ${HOSTNAME:=} expands without one, mean
	// host-0, not every host.
	args = append(replace(args, "--source-hostname=host-0", "--source-hostname="), "--hostname=")
	mustRun(t, nil, append(args, "-f", dir)...)
	res := readOutput(t, out)
	if hs := res["hostRestoreStats"].([]any)[0].(map[string]any); hs["phase"] != "Succeeded" || hs["hostname"] != "host-0" {
		t.Fatalf("restore output %v", res)
	}
	if got := pg.SQL(t, "app", "SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM t"); !strings.HasPrefix(got, "5000|") {
		t.Errorf("restored table: %s", got)
	}
	// A snapshot named by ID is restored whichever host took it, as
	// Stash's restic dump <id>: here into host-1's restore.
	pg.SQL(t, "postgres", "DROP DATABASE app;")
	byID := append(replace(args, "--snapshot=latest", "--snapshot="+lastSnapshot), "--hostname=host-1")
	mustRun(t, nil, append(byID, "-f", dir)...)
	if hs := readOutput(t, out)["hostRestoreStats"].([]any)[0].(map[string]any); hs["phase"] != "Succeeded" || hs["hostname"] != "host-1" {
		t.Fatalf("restore of snapshot %s by another host: %v", lastSnapshot, hs)
	}
	if got := pg.SQL(t, "app", "SELECT count(*) FROM t"); got != "5000" {
		t.Errorf("restored by ID: %s rows", got)
	}

	// A failed backup is recorded in output.json for update-status.
	pg.Stop()
	args = stepArgs(t, dir, false, "pg-backup-fail")
	args = replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out)
	args = replace(args, "--wait-timeout=300", "--wait-timeout=2")
	mustRun(t, nil, append(args, "-f", dir)...)
	hs := readOutput(t, out)["hostBackupStats"].([]any)[0].(map[string]any)
	if hs["phase"] != "Failed" || !strings.Contains(fmt.Sprint(hs["error"]), "not ready after 2s") {
		t.Errorf("failed backup output %v", hs)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func replace(list []string, old, new string) []string {
	out := append([]string{}, list...)
	for i, v := range out {
		if v == old {
			out[i] = new
		}
	}
	return out
}

func TestMariaDBStepsWithStashFunctionFlags(t *testing.T) {
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.t SELECT seq, MD5(seq) FROM app.seq_1_to_5000;")
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
  type: kubedb.com/mariadb
  version: 10.6.23
  clientConfig:
    url: tcp(%s:%d)/
  secret: {name: db-auth}
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
    local: {mountPath: %s}
    storageSecretName: repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: maria-backup, namespace: demo}
spec:
  schedule: "@daily"
  task:
    name: mariadb-backup-10.6.23
    params: [{name: args, value: --databases app}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: maria}}
  retentionPolicy: {name: keep-1, keepLast: 1, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: maria-restore, namespace: demo}
spec:
  task: {name: mariadb-restore-10.6.23}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: maria}
    rules: [{snapshots: [latest]}]
`, m.User, m.Password, m.Host, m.Port, filepath.Join(dir, "repo")))
	set, err := manifest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := catalog.Builtin()
	repo := set.Repositories["demo/repo"]
	job, err := plan.BackupJob(plan.BackupRequest{Config: set.BackupConfigurations["demo/maria-backup"], Session: "maria-1", Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := job.Spec.Template.Spec.InitContainers[0].Args
	if args[0] != "backup-mysql" || !contains(args, "--mysql-args=--databases app") {
		t.Fatalf("planned args %v", args)
	}
	args = replace(replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out), "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
	mustRun(t, nil, append(args, "-f", dir)...)
	if hs := readOutput(t, out)["hostBackupStats"].([]any)[0].(map[string]any); hs["phase"] != "Succeeded" {
		t.Fatalf("backup output %v", hs)
	}
	m.SQL(t, "DROP DATABASE app;")
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: set.RestoreSessions["demo/maria-restore"], Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	args = jobs[0].Spec.Template.Spec.InitContainers[0].Args
	args = replace(replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out), "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
	mustRun(t, nil, append(args, "-f", dir)...)
	if hs := readOutput(t, out)["hostRestoreStats"].([]any)[0].(map[string]any); hs["phase"] != "Succeeded" {
		t.Fatalf("restore output %v", hs)
	}
	if got := m.SQL(t, "SELECT COUNT(*) FROM app.t"); got != "5000" {
		t.Errorf("restored rows: %s", got)
	}
}
