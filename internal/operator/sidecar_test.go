package operator_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller/backupsession"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/sidecar"
)

// The sidecar model's envtest tests: injection and removal for every
// workload kind, re-apply and pause without a rollout, the webhook's
// outage, and sessions run by in-process sidecars acting as the
// workload's ServiceAccount (so the Role the operator made is what they
// have). No kubelet runs here: pods are API objects the tests create;
// the real cluster test (test/cluster) runs the sidecar in real pods.

const sidecarRepo = `
apiVersion: v1
kind: Secret
metadata: {name: repo-secret}
stringData: {RESTIC_PASSWORD: sidecar-pw}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: local-repo}
spec:
  backend:
    local: {mountPath: %s}
    storageSecretName: repo-secret
`

func workloadManifest(kind, name string, extra string) string {
	api := "apps/v1"
	selector := "selector: {matchLabels: {app: " + name + "}}"
	if kind == "ReplicationController" {
		api, selector = "v1", "selector: {app: "+name+"}"
	}
	replicas := "replicas: 1"
	if kind == "DaemonSet" {
		replicas = ""
	}
	return fmt.Sprintf(`
apiVersion: %s
kind: %s
metadata: {name: %s}
spec:
  %s
  %s
  template:
    metadata: {labels: {app: %s}}
    spec:
      %s
      containers:
      - name: app
        image: busybox
        volumeMounts: [{name: data, mountPath: /source/data}]
      volumes:
      - {name: data, emptyDir: {}}
`, api, kind, name, selector, replicas, name, extra)
}

func sidecarBackup(name, kind, target string) string {
	return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: %s}
spec:
  schedule: "*/5 * * * *"
  repository: {name: local-repo}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
  target:
    ref: {kind: %s, name: %s}
    paths: [/source/data]
    volumeMounts: [{name: data, mountPath: /source/data}]
`, name, kind, target)
}

func workload(t *testing.T, c client.Client, ns, kind, name string) client.Object {
	t.Helper()
	obj := sidecar.NewWorkload(kind)
	return get(t, c, ns, name, obj)
}

func waitSidecar(t *testing.T, c client.Client, ns, kind, name string, want bool) client.Object {
	t.Helper()
	var obj client.Object
	eventually(t, 20*time.Second, fmt.Sprintf("%s %s sidecar present=%v", kind, name, want), func() error {
		obj = sidecar.NewWorkload(kind)
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		has := plan.HasSidecar(sidecar.Template(obj))
		_, labelled := obj.GetLabels()[plan.LabelInjected]
		if has != want || labelled != want {
			return fmt.Errorf("sidecar %v, label %v", has, labelled)
		}
		return nil
	})
	return obj
}

func TestSidecarInjectedIntoEveryWorkloadKind(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir()))
	for _, kind := range sidecar.Kinds {
		t.Run(kind, func(t *testing.T) {
			name := strings.ToLower(kind)
			sa := ""
			if kind == "Deployment" {
				sa = "serviceAccountName: app-sa"
			}
			manifest := workloadManifest(kind, name, sa)
			mustApply(t, c, ns, manifest+"---"+sidecarBackup(name+"-backup", kind, name))
			obj := waitSidecar(t, c, ns, kind, name, true)
			waitReady(t, c, ns, name+"-backup")
			eventually(t, 20*time.Second, "StashSidecarInjected", func() error {
				bc := get(t, c, ns, name+"-backup", &stashv1beta1.BackupConfiguration{})
				for _, cd := range bc.Status.Conditions {
					if cd.Type == "StashSidecarInjected" && cd.Status == metav1.ConditionTrue {
						return nil
					}
				}
				return fmt.Errorf("conditions %+v", bc.Status.Conditions)
			})

			// The Role names the channel and the Lease, nothing else,
			// and is bound to the workload's ServiceAccount.
			channel, lease := plan.SidecarChannelName(name+"-backup"), plan.SidecarLeaseName(kind, name)
			role := get(t, c, ns, plan.SidecarRoleName(name+"-backup"), &rbacv1.Role{})
			for _, r := range role.Rules {
				if contains(r.Resources, "events") {
					continue
				}
				if len(r.ResourceNames) != 1 || (r.ResourceNames[0] != channel && r.ResourceNames[0] != lease) {
					t.Errorf("sidecar rule %+v names more than its channel and Lease", r)
				}
				for _, res := range r.Resources {
					if res != "configmaps" && res != "leases" {
						t.Errorf("sidecar rule grants %s", res)
					}
				}
			}
			rb := get(t, c, ns, plan.SidecarRoleName(name+"-backup"), &rbacv1.RoleBinding{})
			wantSA := "default"
			if sa != "" {
				wantSA = "app-sa"
			}
			if len(rb.Subjects) != 1 || rb.Subjects[0].Name != wantSA {
				t.Errorf("RoleBinding subjects %+v, want ServiceAccount %s", rb.Subjects, wantSA)
			}
			get(t, c, ns, lease, &coordinationv1.Lease{})
			get(t, c, ns, channel, &corev1.ConfigMap{})

			// Pausing and resuming change no pod template.
			gen := obj.GetGeneration()
			for _, paused := range []bool{true, false} {
				bc := get(t, c, ns, name+"-backup", &stashv1beta1.BackupConfiguration{})
				bc.Spec.Paused = paused
				if err := c.Update(ctx, bc); err != nil {
					t.Fatal(err)
				}
				waitObserved(t, c, ns, name+"-backup")
			}
			if g := workload(t, c, ns, kind, name).GetGeneration(); g != gen {
				t.Errorf("pause and resume moved the %s from generation %d to %d (a rollout)", kind, gen, g)
			}

			// Re-applying the original template keeps the sidecar and
			// starts no rollout: the webhook puts the same one back.
			cur := workload(t, c, ns, kind, name)
			plan.RemoveSidecar(sidecar.Template(cur))
			if err := c.Update(ctx, cur); err != nil {
				t.Fatal(err)
			}
			after := workload(t, c, ns, kind, name)
			if !plan.HasSidecar(sidecar.Template(after)) {
				t.Fatal("re-applying the original template removed the sidecar")
			}
			if after.GetGeneration() != gen {
				t.Errorf("re-apply moved the %s from generation %d to %d", kind, gen, after.GetGeneration())
			}

			// Without a BackupConfiguration, the sidecar goes.
			if err := c.Delete(ctx, &stashv1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name + "-backup", Namespace: ns}}); err != nil {
				t.Fatal(err)
			}
			gone := waitSidecar(t, c, ns, kind, name, false)
			for _, v := range sidecar.Template(gone).Spec.Volumes {
				if strings.HasPrefix(v.Name, "stash-") {
					t.Errorf("volume %s left behind", v.Name)
				}
			}
		})
	}
}

func waitObserved(t *testing.T, c client.Client, ns, bc string) {
	t.Helper()
	eventually(t, 20*time.Second, "BackupConfiguration observed", func() error {
		o := get(t, c, ns, bc, &stashv1beta1.BackupConfiguration{})
		if o.Status.ObservedGeneration != o.Generation {
			return fmt.Errorf("observed %d of %d", o.Status.ObservedGeneration, o.Generation)
		}
		return nil
	})
}

// TestSidecarWebhookOutageDoesNotBlockWorkloads: with the operator down,
// labelled workloads are still created and updated (failurePolicy
// Ignore), and the operator puts the sidecar back when it returns.
func TestSidecarWebhookOutageDoesNotBlockWorkloads(t *testing.T) {
	op := startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir())+"---"+workloadManifest("Deployment", "app", "")+"---"+sidecarBackup("app-backup", "Deployment", "app"))
	waitSidecar(t, c, ns, "Deployment", "app", true)
	op.stop()
	cur := workload(t, c, ns, "Deployment", "app")
	plan.RemoveSidecar(sidecar.Template(cur))
	start := time.Now()
	if err := c.Update(ctx, cur); err != nil {
		t.Fatalf("update of a labelled Deployment with the operator down: %v", err)
	}
	other := workloadManifest("Deployment", "other", "")
	other = strings.Replace(other, "metadata: {name: other}", "metadata: {name: other, labels: {stash.appscode.com/injected: x}}", 1)
	if err := apply(t, c, ns, other); err != nil {
		t.Fatalf("create of a labelled Deployment with the operator down: %v", err)
	}
	t.Logf("two writes with the webhook down took %s", time.Since(start).Round(time.Millisecond))
	startOperator(t)
	waitSidecar(t, c, ns, "Deployment", "app", true)
}

// sidecarPod is a workload's pod as the tests stand it in: an API
// object (for the operator's pod checks) and an in-process sidecar that
// acts as the workload's ServiceAccount.
type sidecarPod struct {
	cancel func()
	done   chan error
}

func startSidecar(t *testing.T, ns, invoker, kind, target, pod, node, secretDir string) *sidecarPod {
	t.Helper()
	admin := newClient(t)
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if err := admin.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	p = get(t, admin, ns, pod, &corev1.Pod{})
	cfg := rest.CopyConfig(api.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":default",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	r := &sidecar.Runner{Client: c, Namespace: ns, Invoker: invoker, Kind: kind, Name: target,
		Pod: pod, PodUID: string(p.UID), Node: node, SecretDir: secretDir, ScratchDir: t.TempDir(),
		LeaseDuration: 6 * time.Second, Poll: 200 * time.Millisecond, Resync: 2 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	runCtx, cancel := context.WithCancel(ctx)
	sp := &sidecarPod{cancel: cancel, done: make(chan error, 1)}
	go func() { sp.done <- r.Run(runCtx) }()
	t.Cleanup(sp.stop)
	return sp
}

func (p *sidecarPod) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	p.cancel = nil
}

func secretDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "RESTIC_PASSWORD"), []byte("sidecar-pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func repoSnapshots(t *testing.T, dir string) []repository.Snapshot {
	t.Helper()
	loc, err := location.Resolve(stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{MountPath: dir}}, map[string][]byte{"RESTIC_PASSWORD": []byte("sidecar-pw")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenReader(context.Background(), repository.Options{Location: loc, Password: "sidecar-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background()) //nolint:errcheck
	snaps, err := r.Snapshots(context.Background(), repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return snaps
}

// TestSidecarSessionsStatefulSet: each StatefulSet pod backs up its own
// host, one after another, acting only with the Role the operator made;
// the last runs the post-backup actions; a host whose pod vanishes
// mid-backup ends Failed, and the next session runs.
func TestSidecarSessionsStatefulSet(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	repoDir := t.TempDir()
	// The session's path is where the pods' data is: one directory here,
	// shared by the in-process sidecars, holding a file of each size.
	data := t.TempDir()
	for name, size := range map[string]int{"empty": 0, "small.txt": 100, "big.bin": 3 << 20} {
		if err := os.WriteFile(filepath.Join(data, name), make([]byte, size), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	bc := strings.ReplaceAll(sidecarBackup("db-backup", "StatefulSet", "db"), "/source/data", data)
	sts := strings.Replace(workloadManifest("StatefulSet", "db", ""), "replicas: 1", "replicas: 2", 1)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, repoDir)+"---"+sts+"---"+bc)
	waitSidecar(t, c, ns, "StatefulSet", "db", true)
	waitReady(t, c, ns, "db-backup")
	secrets := secretDir(t)
	startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-0", "node-a", secrets)
	db1 := startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-1", "node-a", secrets)

	name := createSession(t, c, ns, "db-backup")
	bs := waitSessionWithin(t, c, ns, name, stashv1beta1.BackupSessionSucceeded, time.Minute)
	if len(bs.Status.Targets) != 1 || len(bs.Status.Targets[0].Stats) != 2 {
		t.Fatalf("targets %+v: want one target with hosts host-0 and host-1", bs.Status.Targets)
	}
	seen := map[string]bool{}
	for _, s := range bs.Status.Targets[0].Stats {
		seen[s.Hostname] = true
		if s.Phase != "Succeeded" || len(s.Snapshots) != 1 {
			t.Errorf("host stats %+v", s)
		}
	}
	if !seen["host-0"] || !seen["host-1"] {
		t.Errorf("hosts %v, want host-0 and host-1", seen)
	}
	if rep := bs.Status.Repository; rep == nil || rep.Integrity == nil || !*rep.Integrity || rep.SnapshotCount != 2 {
		t.Errorf("post-backup report %+v: want integrity verified and 2 snapshots", rep)
	}
	hosts := map[string]int{}
	for _, s := range repoSnapshots(t, repoDir) {
		hosts[s.Host]++
		if s.Path != data {
			t.Errorf("snapshot of %s, want %s", s.Path, data)
		}
	}
	if hosts["host-0"] != 1 || hosts["host-1"] != 1 || len(hosts) != 2 {
		t.Errorf("snapshots by host %v", hosts)
	}
	assertEvent(t, c, ns, name, "Host Backup Succeeded")

	// A host whose pod vanished mid-backup: db-1 stops, its pod is
	// deleted, and its last word in the channel was "Running". The
	// operator fails that host rather than wait for the deadline.
	db1.stop()
	old := get(t, c, ns, "db-1", &corev1.Pod{})
	if err := c.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	name2 := createSession(t, c, ns, "db-backup")
	eventually(t, 30*time.Second, "host-1 reported running by a pod that is gone", func() error {
		cm := get(t, c, ns, plan.SidecarChannelName("db-backup"), &corev1.ConfigMap{})
		st, err := sidecar.Read(cm)
		if err != nil || st.Session == nil || st.Session.Name != name2 {
			return fmt.Errorf("channel not on %s yet", name2)
		}
		if err := sidecar.SetResult(cm, sidecar.Result{Session: name2, Pod: "db-1", PodUID: string(old.UID),
			Stats: stashv1beta1.HostBackupStats{Hostname: "host-1", Phase: sidecar.PhaseRunning}}); err != nil {
			return err
		}
		return c.Update(context.Background(), cm)
	})
	bs = waitSessionWithin(t, c, ns, name2, stashv1beta1.BackupSessionFailed, time.Minute)
	for _, s := range bs.Status.Targets[0].Stats {
		switch s.Hostname {
		case "host-0":
			if s.Phase != "Succeeded" {
				t.Errorf("host-0 %+v: its pod ran, it should have succeeded", s)
			}
		case "host-1":
			if s.Phase != "Failed" || !strings.Contains(s.Error, "ended during the backup") {
				t.Errorf("host-1 %+v: want Failed because its pod ended", s)
			}
		}
	}
	// The StatefulSet controller would start db-1 again: the next
	// session runs to the end.
	startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-1", "node-a", secrets)
	// The next session runs to the end.
	name3 := createSession(t, c, ns, "db-backup")
	waitSessionWithin(t, c, ns, name3, stashv1beta1.BackupSessionSucceeded, time.Minute)
}

// TestSidecarSessionDeploymentOneReplica: of a Deployment's replicas,
// exactly one backs up each session (they share host-0).
func TestSidecarSessionDeploymentOneReplica(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	repoDir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	bc := strings.ReplaceAll(sidecarBackup("web-backup", "Deployment", "web"), "/source/data", data)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, repoDir)+"---"+strings.Replace(workloadManifest("Deployment", "web", ""), "replicas: 1", "replicas: 3", 1)+"---"+bc)
	waitSidecar(t, c, ns, "Deployment", "web", true)
	waitReady(t, c, ns, "web-backup")
	secrets := secretDir(t)
	for _, pod := range []string{"web-a", "web-b", "web-c"} {
		startSidecar(t, ns, "web-backup", "Deployment", "web", pod, "node-a", secrets)
	}
	for i := 0; i < 2; i++ {
		name := createSession(t, c, ns, "web-backup")
		bs := waitSessionWithin(t, c, ns, name, stashv1beta1.BackupSessionSucceeded, time.Minute)
		if st := bs.Status.Targets[0].Stats; len(st) != 1 || st[0].Hostname != "host-0" {
			t.Errorf("stats %+v: want host-0 alone", st)
		}
	}
	if n := len(repoSnapshots(t, repoDir)); n != 2 {
		t.Errorf("%d snapshots after two sessions of a 3-replica Deployment, want 2", n)
	}
	// The Lease is free between sessions. The sidecar hands it back
	// after it reports its result, so the session may be Succeeded a
	// moment before.
	eventually(t, 30*time.Second, "Lease free after the sessions", func() error {
		l := get(t, c, ns, plan.SidecarLeaseName("Deployment", "web"), &coordinationv1.Lease{})
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			return fmt.Errorf("held by %s", *l.Spec.HolderIdentity)
		}
		return nil
	})
}

// waitSessionWithin waits for a session's phase (want), or for any final
// phase when want is empty.
func waitSessionWithin(t *testing.T, c client.Client, ns, name string, want stashv1beta1.BackupSessionPhase, d time.Duration) *stashv1beta1.BackupSession {
	t.Helper()
	bs := &stashv1beta1.BackupSession{}
	eventually(t, d, "BackupSession "+name+" "+string(want), func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, bs); err != nil {
			return err
		}
		switch {
		case want != "" && bs.Status.Phase != want:
			return fmt.Errorf("phase %q: %+v", bs.Status.Phase, bs.Status)
		case want == "" && bs.Status.Phase != stashv1beta1.BackupSessionSucceeded && bs.Status.Phase != stashv1beta1.BackupSessionFailed:
			return fmt.Errorf("phase %q", bs.Status.Phase)
		}
		return nil
	})
	return bs
}

// TestSidecarTurnsAreExclusive: one pod holds a workload's Lease at a
// time; a holder that stopped renewing loses it after its duration.
func TestSidecarTurnsAreExclusive(t *testing.T) {
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	key := client.ObjectKey{Namespace: ns, Name: plan.SidecarLeaseName("StatefulSet", "db")}
	if err := c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	turn := func(pod string) *sidecar.Turn {
		return &sidecar.Turn{Client: c, Key: key, Holder: pod, Duration: 3 * time.Second, Poll: 100 * time.Millisecond}
	}
	_, release0, err := turn("db-0").Take(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Held and renewed for longer than its duration: db-1 waits.
	if _, _, err := turn("db-1").Take(ctx, time.Now().Add(4*time.Second)); err == nil {
		t.Fatal("db-1 took the Lease while db-0 held and renewed it")
	}
	release0()
	_, release1, err := turn("db-1").Take(ctx, time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatalf("db-1 could not take a released Lease: %v", err)
	}
	release1()
	// A holder that stalled (no renewal past its duration) loses it.
	l := get(t, c, ns, key.Name, &coordinationv1.Lease{})
	ghost, secs, old := "db-2", int32(2), metav1.NewMicroTime(time.Now().Add(-time.Minute))
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &ghost, &secs, &old
	if err := c.Update(ctx, l); err != nil {
		t.Fatal(err)
	}
	turnCtx, release, err := turn("db-0").Take(ctx, time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatalf("an expired Lease was not taken over: %v", err)
	}
	// And the one whose Lease is taken from it learns so.
	l = get(t, c, ns, key.Name, &coordinationv1.Lease{})
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.RenewTime = &ghost, &now
	if err := c.Update(ctx, l); err != nil {
		t.Fatal(err)
	}
	select {
	case <-turnCtx.Done():
		if !strings.Contains(context.Cause(turnCtx).Error(), "lost the backup turn") {
			t.Errorf("cause %v", context.Cause(turnCtx))
		}
	case <-time.After(5 * time.Second):
		t.Error("a pod whose Lease was taken kept working")
	}
	release()
}

func restoreSession(name, kind, target, rules string) string {
	return fmt.Sprintf(`
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: %s}
spec:
  repository: {name: local-repo}
  target:
    ref: {kind: %s, name: %s}
    volumeMounts: [{name: data, mountPath: /source/data}]
    rules: %s
`, name, kind, target, rules)
}

func runRestoreInit(t *testing.T, ns, rs, kind, target, pod, secrets string) error {
	t.Helper()
	admin := newClient(t)
	p := get(t, admin, ns, pod, &corev1.Pod{})
	cfg := rest.CopyConfig(api.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":default",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	r := &sidecar.RestoreRunner{Client: c, Namespace: ns, Session: rs, Kind: kind, Name: target, Pod: pod, PodUID: string(p.UID),
		SecretDir: secrets, ScratchDir: t.TempDir(), LeaseDuration: 6 * time.Second, Poll: 200 * time.Millisecond, Wait: 20 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.Run(ctx)
}

func waitRestore(t *testing.T, c client.Client, ns, name string, want stashv1beta1.RestorePhase) *stashv1beta1.RestoreSession {
	t.Helper()
	rs := &stashv1beta1.RestoreSession{}
	eventually(t, time.Minute, "RestoreSession "+string(want), func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rs); err != nil {
			return err
		}
		if rs.Status.Phase != want {
			return fmt.Errorf("phase %q: %+v", rs.Status.Phase, rs.Status)
		}
		return nil
	})
	return rs
}

func waitInit(t *testing.T, c client.Client, ns, kind, name string, want bool) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%s %s init container present=%v", kind, name, want), func() error {
		obj := sidecar.NewWorkload(kind)
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		if got := plan.HasRestoreInit(sidecar.Template(obj)); got != want {
			return fmt.Errorf("init container %v", got)
		}
		return nil
	})
}

// TestRestoreInitContainerStatefulSet: a RestoreSession into a
// StatefulSet puts stash-init into its template; each pod restores its
// host once (a restart goes on without restoring again), a failed host
// keeps its pod from starting, and deleting the RestoreSession takes the
// init container out.
func TestRestoreInitContainerStatefulSet(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	repoDir, data := t.TempDir(), t.TempDir()
	files := map[string]string{"a.txt": "first", "sub/b.txt": "second"}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(data, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	bc := strings.ReplaceAll(sidecarBackup("db-backup", "StatefulSet", "db"), "/source/data", data)
	sts := strings.Replace(workloadManifest("StatefulSet", "db", ""), "replicas: 1", "replicas: 2", 1)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, repoDir)+"---"+sts+"---"+bc)
	waitSidecar(t, c, ns, "StatefulSet", "db", true)
	waitReady(t, c, ns, "db-backup")
	secrets := secretDir(t)
	s0 := startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-0", "node-a", secrets)
	s1 := startSidecar(t, ns, "db-backup", "StatefulSet", "db", "db-1", "node-a", secrets)
	waitSessionWithin(t, c, ns, createSession(t, c, ns, "db-backup"), stashv1beta1.BackupSessionSucceeded, time.Minute)
	s0.stop()
	s1.stop()

	// The data changes: a file removed, one rewritten, the link gone.
	if err := os.Remove(filepath.Join(data, "sub/b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	mustApply(t, c, ns, restoreSession("db-restore", "StatefulSet", "db", "[{snapshots: [latest]}]"))
	waitInit(t, c, ns, "StatefulSet", "db", true)
	for _, pod := range []string{"db-0", "db-1"} {
		if err := runRestoreInit(t, ns, "db-restore", "StatefulSet", "db", pod, secrets); err != nil {
			t.Fatalf("%s: %v", pod, err)
		}
	}
	rs := waitRestore(t, c, ns, "db-restore", stashv1beta1.RestoreSucceeded)
	if len(rs.Status.Stats) != 2 {
		t.Errorf("stats %+v: want host-0 and host-1", rs.Status.Stats)
	}
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q restored", name, b, err, content)
		}
		if fi, err := os.Stat(filepath.Join(data, name)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 restored", name, fi.Mode().Perm())
		}
	}
	if l, err := os.Readlink(filepath.Join(data, "link")); err != nil || l != "a.txt" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	// A pod that starts again goes on without restoring over new data.
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("written after the restore"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runRestoreInit(t, ns, "db-restore", "StatefulSet", "db", "db-0", secrets); err != nil {
		t.Fatalf("a restarted pod: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "a.txt")); string(b) != "written after the restore" {
		t.Errorf("a restarted pod restored again: a.txt is %q", b)
	}
	if err := c.Delete(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	waitInit(t, c, ns, "StatefulSet", "db", false)

	// A restore that fails keeps the pod from starting, every time.
	mustApply(t, c, ns, restoreSession("bad-restore", "StatefulSet", "db", "[{snapshots: [0123456789abcdef]}]"))
	waitInit(t, c, ns, "StatefulSet", "db", true)
	for i := 0; i < 2; i++ {
		err := runRestoreInit(t, ns, "bad-restore", "StatefulSet", "db", "db-0", secrets)
		if err == nil || !strings.Contains(err.Error(), "restore failed") {
			t.Errorf("attempt %d of a failing restore: %v, want it to fail", i+1, err)
		}
	}
}

// TestPVCBackupJobFollowsReadWriteOnceClaim: a pvc-backup Job for a
// ReadWriteOnce claim that a pod mounts runs on that pod's node; a
// ReadWriteOncePod claim is refused, pointing to the sidecar model.
func TestPVCBackupJobFollowsReadWriteOnceClaim(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	claim := func(name, mode string) string {
		return fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s}
spec:
  accessModes: [%s]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: %s-backup}
spec:
  schedule: "*/5 * * * *"
  task: {name: pvc-backup}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: %s}
    paths: [/data]
    volumeMounts: [{name: data, mountPath: /data}]
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
`, name, mode, name, name)
	}
	mustApply(t, c, ns, fixtures+"---"+claim("rwo", "ReadWriteOnce")+"---"+claim("rwop", "ReadWriteOncePod"))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: corev1.PodSpec{
		NodeName:   "node-x",
		Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		Volumes:    []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "rwo"}}}},
	}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c, ns, "rwo-backup")
	waitReady(t, c, ns, "rwop-backup")
	name := createSession(t, c, ns, "rwo-backup")
	job := &batchv1.Job{}
	eventually(t, 20*time.Second, "backup Job", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: plan.BackupJobName(name)}, job)
	})
	aff := job.Spec.Template.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
		fmt.Sprint(aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) != fmt.Sprint([]corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-x"}}}}}) {
		t.Errorf("affinity %+v: want the Job on node-x, where the claim is attached", aff)
	}
	bad := createSession(t, c, ns, "rwop-backup")
	bs := waitSession(t, c, ns, bad, stashv1beta1.BackupSessionFailed)
	if msg := bs.Status.Targets[0].Stats[0].Error; !strings.Contains(msg, "ReadWriteOncePod") || !strings.Contains(msg, "sidecar") {
		t.Errorf("error %q: want it to name ReadWriteOncePod and the sidecar model", msg)
	}
}

// TestSidecarPodsPassRestrictedPodSecurity: in a namespace enforcing
// restricted, a compliant application's pod with the backup sidecar, and
// with the restore init container, is admitted: both run as the
// application's user with no capability added.
func TestSidecarPodsPassRestrictedPodSecurity(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := podSecurityNamespace(t, c, "restricted")
	ctx := context.Background()
	restricted := `securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}`
	app := strings.Replace(workloadManifest("Deployment", "app", restricted), "        image: busybox\n",
		"        image: busybox\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n", 1)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir())+"---"+app+"---"+sidecarBackup("app-backup", "Deployment", "app")+"---"+
		restoreSession("app-restore", "Deployment", "app", "[{snapshots: [latest]}]"))
	waitSidecar(t, c, ns, "Deployment", "app", true)
	waitInit(t, c, ns, "Deployment", "app", true)
	d := workload(t, c, ns, "Deployment", "app")
	tpl := sidecar.Template(d)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-pod", Namespace: ns}, Spec: *tpl.Spec.DeepCopy()}
	// What the ServiceAccount admission plugin (off here) does.
	pod.Spec.ServiceAccountName = "default"
	if err := c.Create(ctx, pod); err != nil {
		t.Fatalf("a restricted application's pod with the sidecar and init container was refused: %v", err)
	}
	for _, ctr := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if sc := ctr.SecurityContext; ctr.Name != "app" && sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s adds capabilities %v in a restricted namespace", ctr.Name, sc.Capabilities.Add)
		}
	}
}

// staleSessions is the operator's cache before a session's new status
// reached it: every read of that session returns it as it was created.
type staleSessions struct {
	client.Client
	session *stashv1beta1.BackupSession
}

func (s staleSessions) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if bs, ok := obj.(*stashv1beta1.BackupSession); ok && key == client.ObjectKeyFromObject(s.session) {
		s.session.DeepCopyInto(bs)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestSidecarSessionHandedOverTwice: the channel's update enqueues its
// session again, and a reconcile may read the session before its Running
// status reached the cache. That reconcile must not hand the session over
// again: the API server says it started. (Were it handed over again, the
// channel keeps what the hosts reported: TestChannelRoundTrip.)
func TestSidecarSessionHandedOverTwice(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, t.TempDir())+"---"+
		strings.Replace(workloadManifest("StatefulSet", "db", ""), "replicas: 1", "replicas: 2", 1)+"---"+
		sidecarBackup("db-backup", "StatefulSet", "db"))
	waitSidecar(t, c, ns, "StatefulSet", "db", true)
	waitReady(t, c, ns, "db-backup")
	name := createSession(t, c, ns, "db-backup")
	created := get(t, c, ns, name, &stashv1beta1.BackupSession{})
	created.Status = stashv1beta1.BackupSessionStatus{}
	// The operator hands the session over; host-0 takes it, as its
	// sidecar would (none runs here, but its pod exists: the operator
	// fails a host whose pod is gone).
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "host-0 reported Running", func() error {
		cm := get(t, c, ns, plan.SidecarChannelName("db-backup"), &corev1.ConfigMap{})
		st, err := sidecar.Read(cm)
		if err != nil || st.Session == nil || st.Session.Name != name {
			return fmt.Errorf("channel not on %s yet: %v", name, err)
		}
		if err := sidecar.SetResult(cm, sidecar.Result{Session: name, Pod: "db-0", PodUID: string(pod.UID),
			Stats: stashv1beta1.HostBackupStats{Hostname: "host-0", Phase: sidecar.PhaseRunning}}); err != nil {
			return err
		}
		return c.Update(ctx, cm)
	})
	waitSessionWithin(t, c, ns, name, stashv1beta1.BackupSessionRunning, 30*time.Second)
	// A second reconcile from the stale view.
	before := get(t, c, ns, plan.SidecarChannelName("db-backup"), &corev1.ConfigMap{})
	r := &backupsession.Reconciler{Client: staleSessions{Client: c, session: created}, APIReader: c, Events: record.NewFakeRecorder(16)}
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(created)}); err != nil {
		t.Errorf("the stale reconcile: %v", err)
	}
	cm := get(t, c, ns, plan.SidecarChannelName("db-backup"), &corev1.ConfigMap{})
	if cm.ResourceVersion != before.ResourceVersion {
		t.Errorf("the channel changed (resourceVersion %s, was %s): the session was handed over again\n%v", cm.ResourceVersion, before.ResourceVersion, cm.Data)
	}
	st, err := sidecar.Read(cm)
	if err != nil || st.Session == nil || st.Session.Name != name {
		t.Fatalf("channel %+v %v: want session %s", st.Session, err, name)
	}
	if got := st.Results["host-0"].Stats.Phase; got != sidecar.PhaseRunning {
		t.Errorf("host-0 %q after the session was handed over again, want its Running entry kept (results %+v)", got, st.Results)
	}
}

// deploymentWithSidecar makes Deployment web, whose BackupConfiguration
// web-backup backs up a directory holding file f (content) by sidecar
// into a local Repository; it returns the repository's and the data's
// directories once the sidecar is in the pod template.
func deploymentWithSidecar(t *testing.T, c client.Client, ns, content string) (repoDir, data string) {
	t.Helper()
	repoDir, data = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	bc := strings.ReplaceAll(sidecarBackup("web-backup", "Deployment", "web"), "/source/data", data)
	mustApply(t, c, ns, fmt.Sprintf(sidecarRepo, repoDir)+"---"+workloadManifest("Deployment", "web", "")+"---"+bc)
	waitSidecar(t, c, ns, "Deployment", "web", true)
	waitReady(t, c, ns, "web-backup")
	return repoDir, data
}

// TestSidecarRestartedMidBackup: a sidecar that the kubelet restarts in
// the same pod (killed for its memory, say) finds its host Running under
// its own pod. It fails that host with the reason, so the session ends
// now rather than at its deadline, and the next session backs up.
func TestSidecarRestartedMidBackup(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	repoDir, _ := deploymentWithSidecar(t, c, ns, "hello")
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-a", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// The sidecar's first run took host-0 and died.
	name := createSession(t, c, ns, "web-backup")
	eventually(t, 30*time.Second, "host-0 Running under web-a", func() error {
		cm := get(t, c, ns, plan.SidecarChannelName("web-backup"), &corev1.ConfigMap{})
		st, err := sidecar.Read(cm)
		if err != nil || st.Session == nil || st.Session.Name != name {
			return fmt.Errorf("channel not on %s yet: %v", name, err)
		}
		if err := sidecar.SetResult(cm, sidecar.Result{Session: name, Pod: "web-a", PodUID: string(pod.UID), Run: "the-first-run",
			Stats: stashv1beta1.HostBackupStats{Hostname: "host-0", Phase: sidecar.PhaseRunning}}); err != nil {
			return err
		}
		return c.Update(ctx, cm)
	})
	// Its second run.
	startSidecar(t, ns, "web-backup", "Deployment", "web", "web-a", "node-a", secretDir(t))
	bs := waitSessionWithin(t, c, ns, name, stashv1beta1.BackupSessionFailed, 30*time.Second)
	if st := bs.Status.Targets[0].Stats; len(st) != 1 || !strings.Contains(st[0].Error, "restarted during the backup of host host-0") {
		t.Errorf("stats %+v: want host-0 failed for the restart", st)
	}
	next := createSession(t, c, ns, "web-backup")
	waitSessionWithin(t, c, ns, next, stashv1beta1.BackupSessionSucceeded, time.Minute)
	if n := len(repoSnapshots(t, repoDir)); n != 1 {
		t.Errorf("%d snapshots after the next session, want 1", n)
	}
}

// TestRestoreInitRestartedMidRestore: a restore init container that the
// kubelet restarts finds its host Running under its own pod, and
// restores it again instead of waiting for itself for ever.
func TestRestoreInitRestartedMidRestore(t *testing.T) {
	startOperator(t)
	c := newClient(t)
	ns := newNamespace(t, c)
	_, data := deploymentWithSidecar(t, c, ns, "backed up")
	secrets := secretDir(t)
	s := startSidecar(t, ns, "web-backup", "Deployment", "web", "web-a", "node-a", secrets)
	waitSessionWithin(t, c, ns, createSession(t, c, ns, "web-backup"), stashv1beta1.BackupSessionSucceeded, time.Minute)
	s.stop()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("half restored"), 0o644); err != nil {
		t.Fatal(err)
	}

	mustApply(t, c, ns, restoreSession("web-restore", "Deployment", "web", "[{snapshots: [latest]}]"))
	waitInit(t, c, ns, "Deployment", "web", true)
	ctx := context.Background()
	pod := get(t, c, ns, "web-a", &corev1.Pod{})
	// The init container's first run took host-0 and died.
	eventually(t, 30*time.Second, "host-0 Running under web-a", func() error {
		cm := get(t, c, ns, plan.RestoreChannelName("web-restore"), &corev1.ConfigMap{})
		st, err := sidecar.ReadRestore(cm)
		if err != nil || st.Restore == nil || st.Restore.Name != "web-restore" {
			return fmt.Errorf("channel not on web-restore yet: %v", err)
		}
		if err := sidecar.SetRestoreResult(cm, sidecar.RestoreResult{Session: "web-restore", Pod: "web-a", PodUID: string(pod.UID),
			Stats: stashv1beta1.HostRestoreStats{Hostname: "host-0", Phase: sidecar.PhaseRunning}}); err != nil {
			return err
		}
		return c.Update(ctx, cm)
	})
	if err := runRestoreInit(t, ns, "web-restore", "Deployment", "web", "web-a", secrets); err != nil {
		t.Fatalf("the restarted init container: %v", err)
	}
	waitRestore(t, c, ns, "web-restore", stashv1beta1.RestoreSucceeded)
	if b, err := os.ReadFile(filepath.Join(data, "f")); err != nil || string(b) != "backed up" {
		t.Errorf("f is %q, %v after the restore, want %q", b, err, "backed up")
	}
}
