// Package cluster is the end-to-end suite on a real single-node
// Kubernetes cluster (hack/cluster/cluster.sh: etcd, kube-apiserver,
// controller-manager, scheduler, kubelet, kube-proxy, containerd, runc).
// Stash is installed with the Helm chart, its images are built locally
// (hack/images.sh) and imported into containerd, and a PostgreSQL server
// runs in the cluster. Nothing is faked: Jobs run the real backup-pg,
// restore-pg, backup-pvc, restore-pvc and update-status containers.
package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/testserver"
)

type env struct {
	t          *testing.T
	root       string
	kubeconfig string
	kubectl    string
	stash      string
	c          client.Client
	// dataDir holds the PVC's hostPath volume. It belongs to the whole
	// suite, not to the pvc subtest: the scheduled subtest backs up the
	// same PVC later, and a missing hostPath is created again (empty, by
	// the container runtime) and left behind.
	dataDir string
	// minio is the S3 server the suite's Repositories use.
	minio *testserver.MinIO
}

func (e *env) run(stdin string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *env) must(stdin string, name string, args ...string) string {
	e.t.Helper()
	out, err := e.run(stdin, name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) kubectlApply(manifest string) {
	e.t.Helper()
	e.must(manifest, e.kubectl, "apply", "-f", "-")
}

func (e *env) psql(sql string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql",
		"-h", "/tmp", "-U", "postgres", "-d", "postgres", "-tA", "-c", sql))
}

func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
}

func (e *env) debug() {
	out, _ := e.run("", e.kubectl, "get", "pods,jobs,backupsessions,restoresessions", "-A", "-o", "wide")
	e.t.Log(out)
	out, _ = e.run("", e.kubectl, "logs", "-n", "stash", "-l", "app.kubernetes.io/name=stash-operator", "--tail=60")
	e.t.Log(out)
}

var sessionName = regexp.MustCompile(`BackupSession (\S+)/(\S+) created`)

// trigger starts a backup with `kubectl stash trigger` and waits for it to
// end in want.
func (e *env) trigger(bc string, want stashv1beta1.BackupSessionPhase) *stashv1beta1.BackupSession {
	e.t.Helper()
	out := e.must("", e.stash, "trigger", bc, "-n", "demo")
	m := sessionName.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("trigger output %q", out)
	}
	return e.waitSession(m[2], want)
}

func (e *env) waitSession(name string, want stashv1beta1.BackupSessionPhase) *stashv1beta1.BackupSession {
	e.t.Helper()
	return e.waitSessionIn("demo", name, want)
}

func (e *env) waitSessionIn(ns, name string, want stashv1beta1.BackupSessionPhase) *stashv1beta1.BackupSession {
	e.t.Helper()
	bs := &stashv1beta1.BackupSession{}
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, bs); err == nil {
			switch bs.Status.Phase {
			case want:
				return bs
			case stashv1beta1.BackupSessionFailed, stashv1beta1.BackupSessionSucceeded, stashv1beta1.BackupSessionSkipped:
				e.debug()
				e.t.Fatalf("BackupSession %s ended %s, want %s: %+v", name, bs.Status.Phase, want, bs.Status)
			}
		}
		time.Sleep(time.Second)
	}
	e.debug()
	e.t.Fatalf("BackupSession %s not %s within 4m: %+v", name, want, bs.Status)
	return nil
}

func (e *env) waitRestore(name string) {
	e.t.Helper()
	rs := &stashv1beta1.RestoreSession{}
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: name}, rs); err == nil {
			switch rs.Status.Phase {
			case stashv1beta1.RestoreSucceeded:
				return
			case stashv1beta1.RestoreFailed, stashv1beta1.RestoreInvalid:
				e.debug()
				e.t.Fatalf("RestoreSession %s %s: %+v", name, rs.Status.Phase, rs.Status)
			}
		}
		time.Sleep(time.Second)
	}
	e.debug()
	e.t.Fatalf("RestoreSession %s not Succeeded within 4m: %+v", name, rs.Status)
}

func (e *env) repository(name string) *stashv1alpha1.Repository {
	e.t.Helper()
	r := &stashv1alpha1.Repository{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: name}, r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func TestClusterEndToEnd(t *testing.T) {
	testserver.NeedIntegration(t)
	ctrl.SetLogger(logr.Discard())
	root := testserver.RepoRoot()
	if os.Geteuid() != 0 {
		t.Fatal("the cluster suite runs as root (it starts containerd and a kubelet)")
	}
	if os.Getenv("STASH_SKIP_CLUSTER") == "1" {
		t.Skip("STASH_SKIP_CLUSTER=1")
	}
	e := &env{t: t, root: root, kubectl: filepath.Join(root, "bin", "kube", testserver.KubeVersion, "kubectl")}
	start := time.Now()
	e.must("", "hack/build-kube.sh", "all")
	e.must("", "hack/images.sh")
	t.Logf("binaries and images ready in %s", time.Since(start).Round(time.Second))
	// Every run starts from an empty cluster: objects of an earlier run
	// would otherwise come back with etcd's data.
	e.must("", "hack/cluster/cluster.sh", "down", "--purge")
	// Made before the cluster starts, so that it is removed after the
	// cluster is down (cleanups run last first) and no pod recreates it.
	e.dataDir = t.TempDir()
	up := time.Now()
	out := e.must("", "hack/cluster/cluster.sh", "up")
	t.Cleanup(func() {
		if os.Getenv("STASH_KEEP_CLUSTER") == "1" {
			return
		}
		if out, err := e.run("", "hack/cluster/cluster.sh", "down", "--purge"); err != nil {
			t.Errorf("cluster down: %v\n%s", err, out)
		}
	})
	e.kubeconfig = strings.TrimSpace(e.must("", "hack/cluster/cluster.sh", "kubeconfig"))
	t.Logf("cluster up in %s: %s", time.Since(up).Round(time.Second), lastLine(out))
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if e.c, err = client.New(cfg, client.Options{Scheme: kube.NewScheme()}); err != nil {
		t.Fatal(err)
	}
	// kubectl stash: the stash binary installed as a kubectl plugin.
	plugins := t.TempDir()
	e.stash = filepath.Join(plugins, "kubectl-stash")
	e.must("", filepath.Join(e.root, "hack", "build-stash.sh"), e.stash)

	t.Run("install with the Helm chart", e.install)
	if t.Failed() {
		return
	}
	nodeIP := e.nodeIP()
	minio := testserver.StartMinIOOn(t, nodeIP)
	minio.MakeBucket(t, "stash")
	e.minio = minio
	e.deployPostgres(minio)
	t.Run("postgres backup, data loss, restore, retention", e.postgres)
	t.Run("postgres restore from Stash's restic repository", e.fromStash(minio))
	t.Run("mongodb backup, data loss, restore", e.mongodb)
	t.Run("mongodb replica set and sharded", e.mongodbTopologies)
	t.Run("elasticsearch backup, data loss, restore", e.elasticsearch)
	t.Run("galera cluster backup through garbd, per-replica restore", e.galera)
	t.Run("redis addon written as a user writes one", e.redis)
	t.Run("operator killed mid-session", e.operatorRestart)
	t.Run("pvc backup and restore", e.pvc)
	t.Run("workloads by sidecar and init container", e.workloads)
	t.Run("scheduled backup and pause", e.scheduled)
	t.Run("restricted Pod Security, quota, lost pod", e.podSecurity)
}

// scheduled lets the trigger CronJob start a backup (its pod runs
// `stash create-backupsession` with the trigger's own RBAC), then pauses
// the BackupConfiguration with kubectl stash.
func (e *env) scheduled(t *testing.T) {
	e.t = t
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: data-every-minute, namespace: demo}
spec:
  schedule: "* * * * *"
  task: {name: pvc-backup}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    paths: [/source/data]
    volumeMounts: [{name: data, mountPath: /source/data}]
  retentionPolicy: {name: keep-last-3, keepLast: 3, prune: true}
`)
	e.waitBCReady("data-every-minute")
	var name string
	eventually(t, 150*time.Second, "a BackupSession from the CronJob", func() error {
		var list stashv1beta1.BackupSessionList
		if err := e.c.List(context.Background(), &list, client.InNamespace("demo")); err != nil {
			return err
		}
		for _, bs := range list.Items {
			if bs.Spec.Invoker.Name == "data-every-minute" {
				name = bs.Name
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	bs := e.waitSession(name, stashv1beta1.BackupSessionSucceeded)
	// The PVC still holds what the pvc subtest restored: two files.
	if st := bs.Status.Targets[0].Stats; len(st) != 1 || len(st[0].Snapshots) != 1 ||
		st[0].Snapshots[0].FileStats.TotalFiles == nil || *st[0].Snapshots[0].FileStats.TotalFiles != 2 {
		t.Errorf("scheduled backup of the PVC: stats %+v, want one snapshot of 2 files", st)
	}
	e.must("", e.stash, "pause", "backup", "--backupconfig", "data-every-minute", "-n", "demo")
	eventually(t, 30*time.Second, "CronJob suspended", func() error {
		out := e.must("", e.kubectl, "get", "cronjob", "-n", "demo", "stash-trigger-data-every-minute", "-o", "jsonpath={.spec.suspend}")
		if out != "true" {
			return fmt.Errorf("suspend %q", out)
		}
		return nil
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (e *env) nodeIP() string {
	e.t.Helper()
	var nodes corev1.NodeList
	if err := e.c.List(context.Background(), &nodes); err != nil || len(nodes.Items) == 0 {
		e.t.Fatalf("nodes: %v", err)
	}
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	e.t.Fatal("node has no InternalIP")
	return ""
}

func (e *env) install(t *testing.T) {
	e.t = t
	manifests := e.must("", filepath.Join(e.root, "bin", "helm"), "template", "stash", "charts/stash", "--namespace", "stash", "--include-crds",
		"--set", "image.registry=localhost", "--set", "image.tag=e2e", "--set", "image.pullPolicy=Never",
		// The test reads /metrics through the API server's service proxy,
		// which forwards no token; secure serving is tested in
		// internal/operator (TestSecureMetrics).
		"--set", "metrics.secure=false")
	if err := e.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stash"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	e.kubectlApply(manifests)
	out, err := e.run("", e.kubectl, "rollout", "status", "-n", "stash", "deployment/stash-operator", "--timeout=180s")
	if err != nil {
		e.debug()
		t.Fatalf("operator rollout: %v\n%s", err, out)
	}
	// The webhook is live: an invalid object is refused by the operator.
	_, err = e.run(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bad, namespace: default}
spec:
  schedule: "every minute"
  repository: {name: none}
  target: {ref: {apiVersion: apps/v1, kind: Deployment, name: x}, paths: [/data]}
  retentionPolicy: {name: k, keepLast: 1}
`, e.kubectl, "apply", "-f", "-")
	if err == nil {
		t.Error("an invalid BackupConfiguration was admitted: the validating webhook is not serving")
	}
}

func (e *env) deployPostgres(minio *testserver.MinIO) {
	t := e.t
	e.kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Secret
metadata: {name: pg-auth, namespace: demo}
stringData: {username: postgres, password: e2e-pg-password}
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: demo}
spec:
  selector: {app: pg}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: demo}
spec:
  serviceName: pg
  replicas: 1
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      securityContext: {runAsUser: 999, runAsGroup: 999, fsGroup: 999}
      containers:
      - name: postgres
        image: localhost/postgres:15-e2e
        imagePullPolicy: Never
        env:
        - name: POSTGRES_PASSWORD
          valueFrom: {secretKeyRef: {name: pg-auth, key: password}}
        args:
        - |
          set -e
          D=/var/lib/postgresql/data/pgdata
          if [ ! -s $D/PG_VERSION ]; then
            echo "$POSTGRES_PASSWORD" > /tmp/pw
            /usr/lib/postgresql/15/bin/initdb -D $D -U postgres --pwfile=/tmp/pw --auth-host=scram-sha-256 --auth-local=trust
            rm /tmp/pw
            echo "host all all 0.0.0.0/0 scram-sha-256" >> $D/pg_hba.conf
          fi
          exec /usr/lib/postgresql/15/bin/postgres -D $D -c listen_addresses='*' -c unix_socket_directories=/tmp
        readinessProbe:
          exec: {command: [/usr/lib/postgresql/15/bin/pg_isready, -h, /tmp]}
          periodSeconds: 2
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: e2e-repo-password, AWS_ACCESS_KEY_ID: %s, AWS_SECRET_ACCESS_KEY: %s}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: s3-repo, namespace: demo}
spec:
  backend:
    s3: {endpoint: "http://%s", bucket: stash, prefix: demo/pg}
    storageSecretName: s3-secret
`, minio.AccessKey, minio.SecretKey, minio.Endpoint))
	out, err := e.run("", e.kubectl, "rollout", "status", "-n", "demo", "statefulset/pg", "--timeout=180s")
	if err != nil {
		e.debug()
		t.Fatalf("postgres: %v\n%s", err, out)
	}
	svc := &corev1.Service{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "pg"}, svc); err != nil {
		t.Fatal(err)
	}
	// No DNS add-on: the AppBinding names the Service's ClusterIP.
	e.kubectlApply(fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg, namespace: demo}
spec:
  type: kubedb.com/postgres
  version: "15.1"
  clientConfig:
    url: postgresql://%s:5432/postgres?sslmode=disable
  secret: {name: pg-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: pg-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task: {name: postgres-backup-15.1}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
  retentionPolicy: {name: keep-last-2, keepLast: 2, prune: true}
  # Runs in the database's pod (found through the AppBinding's Service),
  # from the Job's hook container, through pods/exec.
  hooks:
    preBackup:
      exec: {command: [/bin/sh, -c, "echo {{ .Name }} > /tmp/pre-backup"]}
`, svc.Spec.ClusterIP))
}

func (e *env) waitBCReady(name string) {
	e.t.Helper()
	eventually(e.t, 60*time.Second, "BackupConfiguration "+name+" Ready", func() error {
		bc := &stashv1beta1.BackupConfiguration{}
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: name}, bc); err != nil {
			return err
		}
		if bc.Status.Phase != stashv1beta1.InvokerReady {
			return fmt.Errorf("phase %q %+v", bc.Status.Phase, bc.Status.Conditions)
		}
		// Ready for the spec as it is now: the operator's cache, which
		// a session triggered next is made from, holds this generation.
		if bc.Status.ObservedGeneration != bc.Generation {
			return fmt.Errorf("generation %d, the operator has seen %d", bc.Generation, bc.Status.ObservedGeneration)
		}
		return nil
	})
}

func (e *env) postgres(t *testing.T) {
	e.t = t
	e.psql("CREATE DATABASE app")
	e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "/tmp", "-U", "postgres", "-d", "app", "-c",
		"CREATE TABLE t (id int primary key, v text, j jsonb); INSERT INTO t SELECT g, md5(g::text), jsonb_build_object('g', g) FROM generate_series(1, 2000) g;")
	sum := func() string {
		return strings.TrimSpace(e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "/usr/lib/postgresql/15/bin/psql", "-h", "/tmp", "-U", "postgres", "-d", "app", "-tA", "-c",
			`SELECT count(*), md5(string_agg(v || j::text, ',' ORDER BY id)) FROM t`))
	}
	before := sum()
	e.waitBCReady("pg-backup")
	cj := e.must("", e.kubectl, "get", "cronjob", "-n", "demo", "stash-trigger-pg-backup", "-o", "jsonpath={.spec.schedule}")
	if cj != "0 0 1 1 *" {
		t.Errorf("trigger CronJob schedule %q", cj)
	}

	bs := e.trigger("pg-backup", stashv1beta1.BackupSessionSucceeded)
	if out := strings.TrimSpace(e.must("", e.kubectl, "exec", "-n", "demo", "pg-0", "--", "cat", "/tmp/pre-backup")); out != bs.Name {
		t.Errorf("preBackup exec hook wrote %q in the database pod, want the session's name %s", out, bs.Name)
	}
	hs := bs.Status.Targets[0].Stats
	if len(hs) != 1 || hs[0].Phase != "Succeeded" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Name == "" || hs[0].Snapshots[0].Path != "dumpfile.sql" {
		t.Fatalf("host stats %+v", hs)
	}
	t.Logf("backup %s: %s uploaded of %s in %s", bs.Name, hs[0].Snapshots[0].Uploaded, hs[0].Snapshots[0].TotalSize, hs[0].Duration)
	// The step reports the repository's state to its session; the
	// operator, as the session finishes, copies it to the Repository.
	if r := bs.Status.Repository; r == nil || r.SnapshotCount != 1 || r.Integrity == nil || !*r.Integrity {
		t.Errorf("the session's repository report: %+v", r)
	}
	eventually(t, 30*time.Second, "Repository status from the session's report", func() error {
		repo := e.repository("s3-repo")
		if repo.Status.SnapshotCount != 1 || repo.Status.Integrity == nil || !*repo.Status.Integrity || repo.Status.LastBackupTime == nil {
			return fmt.Errorf("Repository status %+v", repo.Status)
		}
		return nil
	})
	desc := e.must("", e.stash, "describe", "backupsession", bs.Name, "-n", "demo")
	if !strings.Contains(desc, "Succeeded") || !strings.Contains(desc, "dumpfile.sql") {
		t.Errorf("kubectl stash describe:\n%s", desc)
	}

	// Data loss, then restore.
	e.psql("DROP DATABASE app")
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: pg-restore, namespace: demo}
spec:
  task: {name: postgres-restore-15.1}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}
    rules: [{snapshots: [latest]}]
`)
	e.waitRestore("pg-restore")
	if after := sum(); after != before {
		t.Fatalf("restored data %q, want %q", after, before)
	}

	// Retention keeps the last 2.
	e.trigger("pg-backup", stashv1beta1.BackupSessionSucceeded)
	e.trigger("pg-backup", stashv1beta1.BackupSessionSucceeded)
	if r := e.repository("s3-repo"); r.Status.SnapshotCount != 2 {
		t.Errorf("snapshotCount %d after 3 backups with keepLast 2", r.Status.SnapshotCount)
	}
	// backupHistoryLimit (default 1) cleaned old sessions.
	var list stashv1beta1.BackupSessionList
	if err := e.c.List(context.Background(), &list, client.InNamespace("demo")); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) > 2 {
		t.Errorf("%d BackupSessions kept, want at most 2 with backupHistoryLimit 1", len(list.Items))
	}
	metrics := e.must("", e.kubectl, "get", "--raw", "/api/v1/namespaces/stash/services/stash-operator:metrics/proxy/metrics")
	if !strings.Contains(metrics, `stash_appscode_com_backupsession_success{driver="Restic",invoker_kind="BackupConfiguration",invoker_name="pg-backup",namespace="demo",repository="s3-repo"} 1`) {
		t.Errorf("operator /metrics lacks the session's success gauge")
	}
}

func (e *env) operatorRestart(t *testing.T) {
	e.t = t
	out := e.must("", e.stash, "trigger", "pg-backup", "-n", "demo")
	m := sessionName.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("trigger output %q", out)
	}
	e.waitSession(m[2], stashv1beta1.BackupSessionRunning)
	e.must("", e.kubectl, "delete", "pod", "-n", "stash", "-l", "app.kubernetes.io/name=stash-operator", "--wait=false")
	bs := e.waitSession(m[2], stashv1beta1.BackupSessionSucceeded)
	t.Logf("session %s finished %s across an operator restart", bs.Name, bs.Status.Phase)
}

func (e *env) pvc(t *testing.T) {
	e.t = t
	hostDir := filepath.Join(e.dataDir, "pv")
	if err := os.MkdirAll(hostDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hostDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(hostDir), 0o755); err != nil {
		t.Fatal(err)
	}
	e.kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: %s}
  claimRef: {namespace: demo, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: demo}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-data
  resources: {requests: {storage: 1Gi}}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: data-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task: {name: pvc-backup}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    paths: [/source/data]
    volumeMounts: [{name: data, mountPath: /source/data}]
  retentionPolicy: {name: keep-last-3, keepLast: 3, prune: true}
`, hostDir))
	files := map[string]string{"a.txt": "alpha\n", "dir/b.txt": "beta\n"}
	for name, content := range files {
		p := filepath.Join(hostDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.waitBCReady("data-backup")
	bs := e.trigger("data-backup", stashv1beta1.BackupSessionSucceeded)
	if s := bs.Status.Targets[0].Stats[0].Snapshots; len(s) != 1 || s[0].Path != "/source/data" {
		t.Fatalf("PVC snapshot stats %+v", s)
	}
	if err := os.RemoveAll(filepath.Join(hostDir, "dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "a.txt"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: data-restore, namespace: demo}
spec:
  task: {name: pvc-restore}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    volumeMounts: [{name: data, mountPath: /source/data}]
    rules: [{paths: [/source/data]}]
`)
	e.waitRestore("data-restore")
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(hostDir, name))
		if err != nil || string(b) != content {
			t.Errorf("%s after restore: %q %v", name, b, err)
		}
	}
}
