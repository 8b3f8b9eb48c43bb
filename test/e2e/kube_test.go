package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/testserver"
)

// startKube starts a real kube-apiserver and etcd for one test and returns
// a client and a kubeconfig for the stash binary.
func startKube(t *testing.T) (client.Client, string) {
	t.Helper()
	testserver.NeedIntegration(t)
	ctrl.SetLogger(logr.Discard())
	k, err := testserver.StartKubeAPI()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Stop() })
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := k.WriteKubeconfig(kc); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(k.Config, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, kc
}

// runIn runs stash with KUBECONFIG set, as a step in a pod sees its
// cluster (and with no -f, so every object comes from the API).
func runIn(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	cmd := exec.Command(stashBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("stash %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return result{out.String(), errb.String(), code}
}

// applyDir creates every object of the manifest directory in the cluster.
func applyDir(t *testing.T, c client.Client, dir string) {
	t.Helper()
	dec := serializer.NewCodecFactory(c.Scheme()).UniversalDeserializer()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if err := c.Create(context.Background(), obj.(client.Object)); err != nil {
				t.Fatalf("create from %s: %v", f, err)
			}
		}
	}
}

// TestPostgresStepsInCluster runs the backup and restore steps of a Job
// the way its containers run in a pod: the AppBinding, Secrets and
// Repository come from a real API server, and update-status records the
// result in the BackupSession, RestoreSession and Repository there.
func TestPostgresStepsInCluster(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app; \\connect app\n CREATE TABLE t (id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;")
	c, kc := startKube(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}); err != nil {
		t.Fatal(err)
	}
	dir := pgManifests(t, pg)
	applyDir(t, c, dir)
	bs := &stashv1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: "pg-backup-1", Namespace: "demo"},
		Spec:       stashv1beta1.BackupSessionSpec{Invoker: stashv1beta1.BackupInvokerRef{APIGroup: "stash.appscode.com", Kind: "BackupConfiguration", Name: "pg-backup"}},
	}
	if err := c.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	steps := plannedArgs(t, dir, false, "pg-backup-1")
	for _, args := range steps {
		args = replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out)
		args = replace(args, "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
		runIn(t, kc, args...)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(bs), bs); err != nil {
		t.Fatal(err)
	}
	if bs.Status.Phase != stashv1beta1.BackupSessionSucceeded || len(bs.Status.Targets) != 1 || len(bs.Status.Targets[0].Stats) != 1 {
		t.Fatalf("BackupSession status %+v", bs.Status)
	}
	snap := bs.Status.Targets[0].Stats[0].Snapshots[0]
	if snap.Path != "dumpfile.sql" || snap.Name == "" || snap.TotalSize == "" {
		t.Errorf("snapshot stats %+v", snap)
	}
	for _, typ := range []string{"RetentionPolicyApplied", "RepositoryIntegrityVerified", "RepositoryMetricsPushed"} {
		found := false
		for _, cd := range bs.Status.Conditions {
			if cd.Type == typ && cd.Status == metav1.ConditionTrue {
				found = true
			}
		}
		if !found {
			t.Errorf("post-backup condition %s not True: %+v", typ, bs.Status.Conditions)
		}
	}
	repo := &stashv1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "repo"}, repo); err != nil {
		t.Fatal(err)
	}
	// The step reports the repository's state to its session only; the
	// operator (not running here) is the Repository status's one writer.
	if r := bs.Status.Repository; r == nil || r.SnapshotCount != 1 || r.Integrity == nil || !*r.Integrity || r.TotalSize == "" || r.Time.IsZero() {
		t.Errorf("the session's repository report %+v", r)
	}
	if repo.Status.SnapshotCount != 0 || repo.Status.LastBackupTime != nil {
		t.Errorf("a step wrote the Repository's status: %+v", repo.Status)
	}
	var events corev1.EventList
	if err := c.List(ctx, &events, client.InNamespace("demo")); err != nil {
		t.Fatal(err)
	}
	if len(events.Items) == 0 || events.Items[0].Reason != "Host Backup Succeeded" {
		t.Errorf("events %+v", events.Items)
	}

	// Restore from the cluster's objects into an emptied server.
	pg.SQL(t, "postgres", "DROP DATABASE app;")
	rs := &stashv1beta1.RestoreSession{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "pg-restore"}, rs); err != nil {
		t.Fatal(err)
	}
	for _, args := range plannedArgs(t, dir, true, "") {
		args = replace(args, "--output-dir=/stash-tmp/output", "--output-dir="+out)
		args = replace(args, "--scratch-dir=/stash-tmp", "--scratch-dir="+t.TempDir())
		runIn(t, kc, args...)
	}
	if got := pg.SQL(t, "app", "SELECT count(*) FROM t"); strings.TrimSpace(got) != "3000" {
		t.Errorf("restored rows: %s", got)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
		t.Fatal(err)
	}
	if rs.Status.Phase != stashv1beta1.RestoreSucceeded {
		t.Errorf("RestoreSession status %+v", rs.Status)
	}

	// `stash repo` finds the Repository in the cluster too.
	r := runIn(t, kc, "repo", "snapshots", "-n", "demo", "--repository", "repo", "-o", "json")
	if !strings.Contains(r.stdout, "dumpfile.sql") {
		t.Errorf("repo snapshots from the cluster: %s", r.stdout)
	}
}
