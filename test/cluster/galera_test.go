package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/testserver"
)

// galera runs the MariaDB Galera addon through the operator, in the form
// of Stash's Percona XtraDB cluster guide: a two-node MariaDB Galera
// cluster on the node's address (Debian's mariadb-server and galera-4;
// the test cluster has no Galera server image), a KubeDB-style AppBinding
// with a GaleraArbitratorConfiguration, a backup Job on the
// stash-mariadb-galera image that joins the cluster as garbd from its pod,
// and a RestoreSession with replicas, volumeMounts and
// volumeClaimTemplates whose claims bind to hostPath PVs made ahead (the
// cluster has no provisioner). The restored claims' directories then
// start as a new cluster on the node.
func (e *env) galera(t *testing.T) {
	e.t = t
	g := testserver.StartGaleraOn(t, 2, e.nodeIP())
	g.Nodes[0].SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.t SELECT seq, MD5(seq) FROM app.seq_1_to_2000;")
	want := g.Nodes[0].SQL(t, "CHECKSUM TABLE app.t EXTENDED")
	e.kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: sample-galera-auth, namespace: demo}
stringData: {username: root, password: %s}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-galera, namespace: demo}
spec:
  type: kubedb.com/mariadb
  clientConfig: {url: "tcp(%s:%d)/"}
  parameters:
    apiVersion: config.kubedb.com/v1alpha2
    kind: GaleraArbitratorConfiguration
    address: %s
    group: %s
    sstMethod: mariabackup
  secret: {name: sample-galera-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-galera-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task: {name: mariadb-galera-backup-10.11}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-galera}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
`, g.Password, e.nodeIP(), g.Nodes[0].Port, g.Address(), g.Name))
	e.waitBCReady("sample-galera-backup")
	bs := e.trigger("sample-galera-backup", stashv1beta1.BackupSessionSucceeded)
	hs := bs.Status.Targets[0].Stats
	if len(hs) != 1 || hs[0].Hostname != "host-0" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Path != "xtrabackup.stream" {
		t.Fatalf("host stats %+v", hs)
	}

	var dirs []string
	var pvs string
	for i := range 2 {
		dir := filepath.Join(e.dataDir, "galera-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		pvs += fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-galera-%d}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: %s}
  claimRef: {namespace: demo, name: data-restored-galera-%d}
---
`, i, dir, i)
	}
	// The restored directories start as a cluster of the mysql user,
	// who must reach them through the test's directories.
	for _, d := range []string{e.dataDir, filepath.Dir(e.dataDir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectlApply(pvs + `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: restored-galera-restore, namespace: demo}
spec:
  task: {name: mariadb-galera-restore-10.11}
  repository: {name: s3-repo}
  target:
    replicas: 2
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: restored-galera}
    volumeMounts:
    - name: data-restored-galera
      mountPath: /var/lib/mysql
    volumeClaimTemplates:
    - metadata:
        name: data-restored-galera-${POD_ORDINAL}
      spec:
        accessModes: [ReadWriteOnce]
        storageClassName: ""
        resources: {requests: {storage: 1Gi}}
    rules:
    - targetHosts: []
      sourceHost: host-0
      snapshots: [latest]
`)
	e.waitRestore("restored-galera-restore")
	restored := testserver.StartGaleraFrom(t, dirs)
	for _, n := range restored.Nodes {
		if got := n.SQL(t, "CHECKSUM TABLE app.t EXTENDED"); got != want {
			t.Fatalf("restored node %d: %s, want %s", n.Index, got, want)
		}
	}
}
