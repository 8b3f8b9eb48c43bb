package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// stashDump takes a dump the way Stash's addons did: the dump tool's
// output piped into `restic backup --stdin --stdin-filename dumpfile.sql
// --host host-0`, by Debian's restic 0.14, into the restic repository a
// Stash Repository at repoDir named.
func stashDump(t *testing.T, repoDir string, dump *exec.Cmd) {
	t.Helper()
	rc := testserver.ResticCLI(t, testserver.ResticDebian)
	rc.Setenv("RESTIC_REPOSITORY", repoDir)
	rc.Setenv("RESTIC_PASSWORD", "e2e")
	if _, err := rc.Try("", nil, "cat", "config"); err != nil {
		rc.Run(t, "", nil, "init")
	}
	out, err := dump.Output()
	if err != nil {
		t.Fatalf("%v: %v", dump.Args, err)
	}
	rc.Run(t, "", bytes.NewReader(out), "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "host-0")
}

// TestMigrateFromStash walks docs/migrating-from-stash.md: backups a
// Stash deployment took with restic are listed, checked and restored by
// the unchanged RestoreSession in the local runtime (PostgreSQL and
// MariaDB), a backup into the old prefix is refused with the way on, and
// `stash repo import` copies the snapshots into a new prefix where
// backups go on.
func TestMigrateFromStash(t *testing.T) {
	testserver.NeedIntegration(t)
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app; \\connect app\n CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;")
	dir := localRuntimeManifests(t, pg, `---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo-new, namespace: demo}
spec:
  backend:
    local: {mountPath: /safe/data, hostPath: {path: `+filepath.Join(t.TempDir(), "new")+`}, subPath: pg}
    storageSecretName: repo-secret
`)
	old := filepath.Join(dir, "backups", "pg") // hostPath/subPath, where Stash's restic wrote
	dumpall := exec.Command(filepath.Join(pg.BinDir, "pg_dumpall"), "-h", pg.Host, "-p", fmt.Sprint(pg.Port), "-U", pg.User)
	dumpall.Env = append(dumpall.Environ(), "PGPASSWORD="+pg.Password)
	stashDump(t, old, dumpall)

	// The old snapshot, as restic listed it.
	var snaps []struct {
		ID, Host, Path, Format string
		Stream                 bool
	}
	r := mustRun(t, nil, "repo", "-f", dir, "--repository", "repo", "-n", "demo", "snapshots", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots of the restic repository: %s %v", r.stdout, err)
	}
	if s := snaps[0]; s.Host != "host-0" || s.Path != "dumpfile.sql" || !s.Stream || s.Format != "restic" {
		t.Errorf("restic snapshot listed as %+v", s)
	}
	mustRun(t, nil, "repo", "-f", dir, "--repository", "repo", "-n", "demo", "check", "--read-data")
	r = mustRun(t, nil, "repo", "-f", dir, "--repository", "repo", "-n", "demo", "restore", "--stdout", "dumpfile.sql")
	if !strings.Contains(r.stdout, "CREATE TABLE public.t") {
		t.Errorf("restored dump does not hold the table: %.200s", r.stdout)
	}

	// The unchanged RestoreSession restores Stash's dump.
	state := t.TempDir()
	pg.SQL(t, "postgres", "DROP DATABASE app;")
	r = mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "pg-restore")
	if !strings.Contains(r.stdout, "RestoreSession demo/pg-restore: Succeeded") {
		t.Fatalf("restore: %s\n%s", r.stdout, r.stderr)
	}
	if got := pg.SQL(t, "app", "SELECT count(*) FROM t"); got != "2000" {
		t.Errorf("rows restored from Stash's backup: %s", got)
	}

	// A backup into the restic prefix is refused, saying what to do.
	f := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	if f.code == 0 || !strings.Contains(f.stdout+f.stderr, "stash repo import") {
		t.Errorf("backup into the restic prefix: %+v", f)
	}

	// Import, twice: the second copies nothing.
	r = mustRun(t, nil, "repo", "-f", dir, "-n", "demo", "import", "--from", "repo", "--to", "repo-new", "-o", "json")
	var res struct {
		Imported []struct{ From, To, Host, Path string }
		Skipped  int
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Imported) != 1 || res.Imported[0].From != snaps[0].ID || res.Imported[0].Path != "dumpfile.sql" {
		t.Fatalf("import: %s %v", r.stdout, err)
	}
	r = mustRun(t, nil, "repo", "-f", dir, "-n", "demo", "import", "--from", "repo", "--to", "repo-new")
	if !strings.Contains(r.stdout, "imported 0 snapshots") || !strings.Contains(r.stdout, "1 imported before") {
		t.Errorf("second import: %s", r.stdout)
	}
	r = mustRun(t, nil, "repo", "-f", dir, "--repository", "repo-new", "-n", "demo", "restore", "--stdout", "dumpfile.sql")
	if !strings.Contains(r.stdout, "CREATE TABLE public.t") {
		t.Errorf("dump restored from the import does not hold the table")
	}
}

// TestMariaDBFromStash: a MariaDB dump Stash took restores through the
// unchanged RestoreSession.
func TestMariaDBFromStash(t *testing.T) {
	testserver.NeedIntegration(t)
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.t SELECT seq, MD5(seq) FROM app.seq_1_to_3000;")
	dir := mariaManifests(t, m, "")
	dump := exec.Command("mariadb-dump", "-h", m.Host, "-P", fmt.Sprint(m.Port), "-u", m.User, "--all-databases", "--single-transaction")
	dump.Env = append(dump.Environ(), "MYSQL_PWD="+m.Password)
	stashDump(t, filepath.Join(dir, "backups"), dump)
	m.SQL(t, "DROP DATABASE app;")
	state := t.TempDir()
	mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "maria-restore")
	if got := m.SQL(t, "SELECT COUNT(*) FROM app.t"); got != "3000" {
		t.Errorf("rows restored from Stash's backup: %s", got)
	}
}
