package e2e

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// TestLocalRuntimeGalera: manifests in the form of Stash's Percona XtraDB
// cluster documentation (a KubeDB-style AppBinding whose parameters are a
// GaleraArbitratorConfiguration), with the catalog's MariaDB Galera Tasks,
// back up a real two-node MariaDB Galera cluster through the arbitrator
// and restore the state snapshot into a data directory a restore rule
// names, which then starts as a new cluster.
func TestLocalRuntimeGalera(t *testing.T) {
	g := testserver.StartGalera(t, 2)
	g.Nodes[0].SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.t SELECT seq, MD5(seq) FROM app.seq_1_to_3000;")
	want := g.Nodes[0].SQL(t, "CHECKSUM TABLE app.t EXTENDED")
	dir := t.TempDir()
	restoreRoot, err := os.MkdirTemp("", "stash-e2e-galera-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(restoreRoot) })
	if err := os.Chmod(restoreRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(restoreRoot, "data")
	owner := "0:0"
	if u, err := user.Lookup("mysql"); err == nil && os.Geteuid() == 0 {
		owner = u.Uid + ":" + u.Gid
	}
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: sample-xtradb-cluster-auth, namespace: demo}
stringData: {username: root, password: %s}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-galera-cluster, namespace: demo}
spec:
  clientConfig: {url: "tcp(127.0.0.1:%d)/"}
  parameters:
    apiVersion: config.kubedb.com/v1alpha2
    kind: GaleraArbitratorConfiguration
    address: %s
    group: %s
    sstMethod: mariabackup
  secret: {name: sample-xtradb-cluster-auth}
  type: kubedb.com/mariadb
---
%s---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-galera-backup, namespace: demo}
spec:
  schedule: "*/5 * * * *"
  task: {name: mariadb-galera-backup-10.11}
  repository: {name: galera-repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-galera-cluster}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: sample-galera-restore, namespace: demo}
spec:
  task:
    name: mariadb-galera-restore-10.11
    params: [{name: dataOwner, value: "%s"}]
  repository: {name: galera-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-galera-cluster}
    rules:
    - sourceHost: host-0
      paths: [%s]
`, g.Password, g.Nodes[0].Port, g.Address(), g.Name, localRepository("galera-repo", filepath.Join(dir, "backups")), owner, dataDir))
	state := t.TempDir()
	r := mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "sample-galera-backup")
	if !strings.Contains(r.stdout, "Succeeded") {
		t.Fatalf("backup: %+v", r)
	}
	r = mustRun(t, nil, "repo", "-f", dir, "-n", "demo", "--repository", "galera-repo", "snapshots")
	if !strings.Contains(r.stdout, "xtrabackup.stream") {
		t.Fatalf("the cluster backup is not stored as xtrabackup.stream:\n%s", r.stdout)
	}
	mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "sample-galera-restore")
	restored := testserver.StartGaleraFrom(t, []string{dataDir})
	if got := restored.Nodes[0].SQL(t, "CHECKSUM TABLE app.t EXTENDED"); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}
