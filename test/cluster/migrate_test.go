package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// fromStash restores, with the operator, a PostgreSQL dump that Stash
// took: pg_dump piped into Debian's restic 0.14 (`restic backup
// --stdin --stdin-filename dumpfile.sql --host host-0`) into its own
// prefix of the bucket. The Repository and RestoreSession are Stash's
// own; the restore step reads the restic repository as it is.
func (e *env) fromStash(minio *testserver.MinIO) func(t *testing.T) {
	return func(t *testing.T) {
		e.t = t
		e.psql("CREATE DATABASE stash_era")
		e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "/tmp", "-U", "postgres", "-d", "stash_era", "-c",
			"CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g;")
		// One database's dump with its CREATE DATABASE (Stash's backupCMD
		// pg_dump, --create in its args): a pg_dumpall here would also
		// re-create the databases the earlier subtests left.
		dump := e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/pg_dump", "-h", "/tmp", "-U", "postgres", "--create", "stash_era")
		rc := testserver.ResticCLI(t, testserver.ResticDebian)
		rc.Setenv("RESTIC_REPOSITORY", "s3:http://"+minio.Endpoint+"/stash/demo/pg-stash-era")
		rc.Setenv("RESTIC_PASSWORD", "e2e-repo-password")
		rc.Setenv("AWS_ACCESS_KEY_ID", minio.AccessKey)
		rc.Setenv("AWS_SECRET_ACCESS_KEY", minio.SecretKey)
		rc.Run(t, "", nil, "init")
		rc.Run(t, "", strings.NewReader(dump), "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "host-0")

		e.psql("DROP DATABASE stash_era")
		e.kubectlApply(fmt.Sprintf(`apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: stash-era-repo, namespace: demo}
spec:
  backend:
    s3: {endpoint: "http://%s", bucket: stash, prefix: demo/pg-stash-era}
    storageSecretName: s3-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: pg-restore-stash-era, namespace: demo}
spec:
  task: {name: postgres-restore-15.1}
  repository: {name: stash-era-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules: [{snapshots: [latest]}]
`, minio.Endpoint))
		e.waitRestore("pg-restore-stash-era")
		got := strings.TrimSpace(e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "/tmp", "-U", "postgres", "-d", "stash_era", "-tA", "-c", "SELECT count(*) FROM t"))
		if got != "500" {
			t.Fatalf("rows restored from Stash's restic repository: %q, want 500", got)
		}
		rc.Run(t, "", nil, "check") // and the restic repository is as restic left it
	}
}
