package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// fileState is what a restore must bring back of one entry: content (or
// a symlink's target) and permission bits.
type fileState struct {
	content string
	mode    fs.FileMode
	link    string
}

// seed writes files of several sizes and modes and a symlink into dir.
func seed(t *testing.T, dir, tag string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]struct {
		size int
		mode fs.FileMode
	}{"empty": {0, 0o644}, "small.txt": {120, 0o600}, "sub/big.bin": {3 << 20, 0o640}, "run.sh": {64, 0o755}} {
		b := []byte(strings.Repeat(tag, f.size/len(tag)+1)[:f.size])
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/big.bin", filepath.Join(dir, "link")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
}

func snapshotDir(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = fileState{link: l}
		case info.IsDir():
			out[rel] = fileState{mode: info.Mode().Perm() | fs.ModeDir}
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fileState{content: string(b), mode: info.Mode().Perm()}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// damage changes, removes and adds files, as a user's mistake would.
func damage(t *testing.T, dir string) {
	t.Helper()
	for _, err := range []error{
		os.Remove(filepath.Join(dir, "sub/big.bin")),
		os.WriteFile(filepath.Join(dir, "small.txt"), []byte("overwritten"), 0o666),
		os.Remove(filepath.Join(dir, "link")),
		os.Chmod(filepath.Join(dir, "run.sh"), 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func sameTree(t *testing.T, what string, got, want map[string]fileState) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: %s missing after the restore", what, name)
		case g.link != w.link || g.content != w.content || g.mode != w.mode:
			t.Errorf("%s: %s is %+v after the restore, want %+v", what, name, short(g), short(w))
		}
	}
}

func short(f fileState) string {
	c := f.content
	if len(c) > 16 {
		c = c[:16] + "…"
	}
	return fmt.Sprintf("{%q %v link=%q}", c, f.mode, f.link)
}

// hostPV is a PersistentVolume on a directory of this machine, bound to
// the claim ns/claim ahead (no provisioner runs here).
func hostPV(name, dir, claim string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: %s}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: %s, type: DirectoryOrCreate}
  claimRef: {namespace: demo, name: %s}
`, name, dir, claim)
}

// appPodSpec is an application container that only sleeps, with its data
// at /data.
const appPodSpec = `      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: localhost/postgres:15-e2e
        imagePullPolicy: Never
        command: [/bin/sleep, "1000000"]
        volumeMounts: [{name: data, mountPath: /data}]
`

func (e *env) rollout(kind, name string) {
	e.t.Helper()
	out, err := e.run("", e.kubectl, "rollout", "status", "-n", "demo", strings.ToLower(kind)+"/"+name, "--timeout=180s")
	if err != nil {
		e.debug()
		e.t.Fatalf("%s %s rollout: %v\n%s", kind, name, err, out)
	}
}

// waitInitRestore waits for a RestoreSession into a workload to succeed
// (its pods restart with the init container and restore).
func (e *env) waitPods(selector string, n int, containers int) {
	e.t.Helper()
	eventually(e.t, 3*time.Minute, fmt.Sprintf("%d pods %s with %d containers ready", n, selector, containers), func() error {
		var pods corev1.PodList
		if err := e.c.List(context.Background(), &pods, client.InNamespace("demo"), client.MatchingLabels{"app": selector}); err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || len(p.Spec.Containers) != containers {
				continue
			}
			ok := p.Status.Phase == corev1.PodRunning
			for _, c := range p.Status.ContainerStatuses {
				ok = ok && c.Ready
			}
			if ok {
				ready++
			}
		}
		if ready != n || len(pods.Items) != n {
			return fmt.Errorf("%d of %d ready (%d pods)", ready, n, len(pods.Items))
		}
		return nil
	})
}

func (e *env) nodeName() string {
	var nodes corev1.NodeList
	if err := e.c.List(context.Background(), &nodes); err != nil || len(nodes.Items) == 0 {
		e.t.Fatalf("nodes: %v", err)
	}
	return nodes.Items[0].Name
}

// workloads backs up a Deployment with a PVC, a 3-replica StatefulSet with
// volumeClaimTemplates and a DaemonSet with a hostPath volume through the
// injected sidecar, damages their files, and restores them through the
// init container, comparing content, modes and symlinks; then restores
// one StatefulSet host into a new 3-replica StatefulSet.
func (e *env) workloads(t *testing.T) {
	e.t = t
	base := filepath.Join(e.dataDir, "workloads")
	dirs := map[string]string{}
	for _, d := range []string{"web", "db-0", "db-1", "db-2", "db2-0", "db2-1", "db2-2", "ds"} {
		dirs[d] = filepath.Join(base, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seed(t, dirs["web"], "w")
	seed(t, dirs["db-0"], "zero")
	seed(t, dirs["db-1"], "one")
	seed(t, dirs["db-2"], "two")
	seed(t, dirs["ds"], "d")
	before := map[string]map[string]fileState{}
	for _, d := range []string{"web", "db-0", "db-1", "db-2", "ds"} {
		before[d] = snapshotDir(t, dirs[d])
	}
	repo := e.repository("s3-repo")
	// One Repository per workload, as Stash's guides have it: a
	// Deployment's and a StatefulSet's first pod are both host-0.
	var manifests []string
	for _, n := range []string{"web", "db", "agent"} {
		manifests = append(manifests, fmt.Sprintf(`apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: %s-repo, namespace: demo}
spec:
  backend:
    s3: {endpoint: %q, bucket: stash, prefix: demo/%s}
    storageSecretName: s3-secret
`, n, repo.Spec.Backend.S3.Endpoint, n))
	}
	manifests = append(manifests,
		hostPV("web-data", dirs["web"], "web-data"),
		`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data, namespace: demo}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: web-data
  resources: {requests: {storage: 1Gi}}
`,
		`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
`+appPodSpec+`      volumes: [{name: data, persistentVolumeClaim: {claimName: web-data}}]
`)
	for i := 0; i < 3; i++ {
		manifests = append(manifests, hostPV(fmt.Sprintf("db-data-%d", i), dirs[fmt.Sprintf("db-%d", i)], fmt.Sprintf("data-db-%d", i)),
			hostPV(fmt.Sprintf("db2-data-%d", i), dirs[fmt.Sprintf("db2-%d", i)], fmt.Sprintf("data-db2-%d", i)))
	}
	sts := func(name string) string {
		return `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ` + name + `, namespace: demo}
spec:
  serviceName: ` + name + `
  replicas: 3
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
` + appPodSpec + `  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: ""
      resources: {requests: {storage: 1Gi}}
`
	}
	manifests = append(manifests, sts("db"), `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: demo}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
`+appPodSpec+`      volumes: [{name: data, hostPath: {path: `+dirs["ds"]+`}}]
`)
	// The BackupConfigurations are in the form of Stash's workload guides:
	// no Task, target paths and volumeMounts, root to read every file.
	// A preBackup exec hook of the Deployment runs in its application
	// container (pods/exec from the sidecar).
	hooks := map[string]string{"web": `
  hooks:
    preBackup:
      exec: {command: [/bin/sh, -c, "echo hooked-{{ .Name }} > /tmp/hook.txt"]}
      containerName: app`}
	for _, w := range []struct{ kind, name string }{{"Deployment", "web"}, {"StatefulSet", "db"}, {"DaemonSet", "agent"}} {
		manifests = append(manifests, fmt.Sprintf(`apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: %s-backup, namespace: demo}
spec:
  repository: {name: %s-repo}
  schedule: "0 0 1 1 *"
  target:
    ref: {apiVersion: apps/v1, kind: %s, name: %s}
    volumeMounts: [{name: data, mountPath: /data}]
    paths: [/data]
  runtimeSettings:
    container:
      securityContext: {runAsUser: 0, runAsGroup: 0}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}%s
`, w.name, w.name, w.kind, w.name, hooks[w.name]))
	}
	e.kubectlApply(strings.Join(manifests, "---\n"))
	for _, w := range []struct {
		kind, name string
		pods       int
	}{{"Deployment", "web", 1}, {"StatefulSet", "db", 3}, {"DaemonSet", "agent", 1}} {
		e.waitBCReady(w.name + "-backup")
		// The sidecar is in the template; the pods run with it.
		e.rollout(w.kind, w.name)
		e.waitPods(w.name, w.pods, 2)
	}

	if out := e.must("", e.stash, "describe", "bc", "web-backup", "-n", "demo"); !regexp.MustCompile(`Sidecar in pod template:\s+true`).MatchString(out) ||
		!strings.Contains(out, "StashSidecarInjected") {
		t.Errorf("kubectl stash describe bc:\n%s", out)
	}

	// Backup: one session each; the StatefulSet's three hosts take turns.
	node := e.nodeName()
	for _, w := range []struct {
		bc    string
		hosts []string
	}{{"web-backup", []string{"host-0"}}, {"db-backup", []string{"host-0", "host-1", "host-2"}}, {"agent-backup", []string{node}}} {
		bs := e.trigger(w.bc, stashv1beta1.BackupSessionSucceeded)
		got := map[string]bool{}
		for _, s := range bs.Status.Targets[0].Stats {
			got[s.Hostname] = s.Phase == "Succeeded" && len(s.Snapshots) == 1 && s.Snapshots[0].Path == "/data"
		}
		for _, h := range w.hosts {
			if !got[h] {
				t.Errorf("%s: host %s not backed up: %+v", w.bc, h, bs.Status.Targets[0].Stats)
			}
		}
		if bs.Status.Repository == nil || bs.Status.Repository.Integrity == nil || !*bs.Status.Repository.Integrity {
			t.Errorf("%s: post-backup actions %+v", w.bc, bs.Status.Repository)
		}
		if w.bc == "web-backup" {
			out := e.must("", e.kubectl, "exec", "-n", "demo", "deployment/web", "-c", "app", "--", "cat", "/tmp/hook.txt")
			if strings.TrimSpace(out) != "hooked-"+bs.Name {
				t.Errorf("preBackup hook output in the app container: %q, want hooked-%s", out, bs.Name)
			}
		}
	}

	for _, d := range []string{"web", "db-0", "db-1", "db-2", "ds"} {
		damage(t, dirs[d])
	}
	// Restore: the init container goes in, the pods restart and restore
	// before the application starts.
	var restores []string
	for _, w := range []struct{ kind, name string }{{"Deployment", "web"}, {"StatefulSet", "db"}, {"DaemonSet", "agent"}} {
		restores = append(restores, fmt.Sprintf(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: %s-restore, namespace: demo}
spec:
  repository: {name: %s-repo}
  target:
    ref: {apiVersion: apps/v1, kind: %s, name: %s}
    volumeMounts: [{name: data, mountPath: /data}]
    rules: [{paths: [/data]}]
`, w.name, w.name, w.kind, w.name))
	}
	e.kubectlApply(strings.Join(restores, "---\n"))
	for _, n := range []string{"web", "db", "agent"} {
		e.waitRestore(n + "-restore")
	}
	sameTree(t, "Deployment", snapshotDir(t, dirs["web"]), before["web"])
	for i := 0; i < 3; i++ {
		d := fmt.Sprintf("db-%d", i)
		sameTree(t, "StatefulSet "+d, snapshotDir(t, dirs[d]), before[d])
	}
	sameTree(t, "DaemonSet", snapshotDir(t, dirs["ds"]), before["ds"])

	// One host of the StatefulSet into a new StatefulSet of three: every
	// replica gets host-0's data.
	e.kubectlApply(sts("db2") + `---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: db2-restore, namespace: demo}
spec:
  repository: {name: db-repo}
  target:
    ref: {apiVersion: apps/v1, kind: StatefulSet, name: db2}
    volumeMounts: [{name: data, mountPath: /data}]
    rules: [{sourceHost: host-0, paths: [/data]}]
`)
	e.waitRestore("db2-restore")
	e.waitPods("db2", 3, 1)
	for i := 0; i < 3; i++ {
		sameTree(t, fmt.Sprintf("new StatefulSet db2-%d", i), snapshotDir(t, dirs[fmt.Sprintf("db2-%d", i)]), before["db-0"])
	}

	// A pod deleted mid-backup: its host ends Failed (its sidecar's own
	// report as it stops, or the operator's when the pod is gone), the
	// session ends, the StatefulSet brings the pod back and the next
	// session runs.
	// A preBackup hook holds host-0's backup (its host is Running) until
	// the pod is deleted: a backup of a few hundred MiB once finished
	// between two polls of the wait below on a loaded machine.
	e.must("", e.kubectl, "patch", "backupconfiguration", "-n", "demo", "db-backup", "--type", "merge", "-p",
		`{"spec":{"hooks":{"preBackup":{"containerName":"app","exec":{"command":["/bin/sh","-c","[ \"$(cat /etc/hostname)\" != db-0 ] || sleep 120"]}}}}}`)
	// The session takes its hooks from the operator's cache: trigger
	// only once the operator has seen the patch, or host-0's backup may
	// run without the hook and end between two polls.
	e.waitBCReady("db-backup")
	out := e.must("", e.stash, "trigger", "db-backup", "-n", "demo")
	m := sessionName.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("trigger output %q", out)
	}
	// The hosts back up one at a time (a lease), in no set order: host-0
	// may wait for the other two hosts' backups first, which on a loaded
	// machine took more than two minutes.
	// Each value of host-0's entry the wait read, and when: the
	// sidecar writes Running before the hook, so a failure below says
	// whether that write was never seen or seen and replaced.
	var seen []string
	began := time.Now()
	eventually(t, 6*time.Minute, "host-0 backing up", func() error {
		cm := &corev1.ConfigMap{}
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "stash-sidecar-db-backup"}, cm); err != nil {
			seen = append(seen, fmt.Sprintf("%s: get: %v", time.Since(began).Round(time.Second), err))
			return err
		}
		if v := cm.ResourceVersion + " " + cm.Data["host.host-0.json"]; len(seen) == 0 || !strings.HasSuffix(seen[len(seen)-1], v) {
			seen = append(seen, fmt.Sprintf("%s: %s", time.Since(began).Round(time.Second), v))
		}
		if !strings.Contains(cm.Data["host.host-0.json"], `"phase":"Running"`) || !strings.Contains(cm.Data["host.host-0.json"], m[2]) {
			// A session that ended (Skipped, say) will never reach
			// host-0: say why at once rather than after the wait.
			bs := &stashv1beta1.BackupSession{}
			if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: m[2]}, bs); err == nil {
				switch bs.Status.Phase {
				case stashv1beta1.BackupSessionFailed, stashv1beta1.BackupSessionSucceeded, stashv1beta1.BackupSessionSkipped:
					e.debug()
					for i := range 3 {
						out, _ := e.run("", e.kubectl, "logs", "-n", "demo", fmt.Sprintf("db-%d", i), "-c", "stash", "--tail=40")
						t.Logf("sidecar of db-%d:\n%s", i, out)
					}
					t.Fatalf("BackupSession %s ended %s before host-0 backed up: %+v; host-0 as the wait read it (resourceVersion, entry):\n%s",
						m[2], bs.Status.Phase, bs.Status, strings.Join(seen, "\n"))
				}
			}
			return fmt.Errorf("session %s %q; host-0: %q; host-1: %q; host-2: %q", m[2], bs.Status.Phase, cm.Data["host.host-0.json"], cm.Data["host.host-1.json"], cm.Data["host.host-2.json"])
		}
		return nil
	})
	e.must("", e.kubectl, "delete", "pod", "-n", "demo", "db-0", "--wait=false")
	bs := e.waitSession(m[2], stashv1beta1.BackupSessionFailed)
	for _, s := range bs.Status.Targets[0].Stats {
		if s.Hostname == "host-0" && s.Phase != "Failed" {
			t.Errorf("host-0 %+v: its pod was deleted mid-backup", s)
		}
	}
	e.must("", e.kubectl, "patch", "backupconfiguration", "-n", "demo", "db-backup", "--type", "json", "-p", `[{"op":"remove","path":"/spec/hooks"}]`)
	e.waitPods("db", 3, 2)
	e.trigger("db-backup", stashv1beta1.BackupSessionSucceeded)

	// Deleting a RestoreSession takes its init container out.
	e.must("", e.kubectl, "delete", "restoresession", "-n", "demo", "web-restore")
	eventually(t, time.Minute, "init container removed", func() error {
		out := e.must("", e.kubectl, "get", "deployment", "-n", "demo", "web", "-o", "jsonpath={.spec.template.spec.initContainers[*].name}")
		if strings.Contains(out, "stash-init") {
			return fmt.Errorf("init containers %q", out)
		}
		return nil
	})
}
