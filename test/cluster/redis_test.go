package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// redis follows docs/guides/write-your-own-addon.md in the cluster: the
// guide's manifests (examples/redis/cluster/) with the test cluster's
// image names, MinIO and, for want of DNS, the Service's ClusterIP. A
// Redis StatefulSet (Debian's redis-server in localhost/redis:7-e2e) gets
// data; the Redis addon, written as a user writes one, backs it up through
// the operator in a Job whose init containers are the addon's redis-dump
// (its own image, localhost/redis-tools:e2e) and Stash's upload, and whose
// main container is update-status; the data changes; the RestoreSession
// restores into a new claim from volumeClaimTemplates, which a new
// StatefulSet then mounts: every key and value is back, TTLs counted down
// by no more than the test took.
func (e *env) redis(t *testing.T) {
	e.t = t
	start := time.Now()
	var pvs string
	for _, claim := range []string{"data-redis-0", "data-redis-restored-0"} {
		dir := filepath.Join(e.dataDir, claim)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		pvs += fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-%s}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: %s}
  claimRef: {namespace: demo, name: %s}
---
`, claim, dir, claim)
	}
	for _, d := range []string{e.dataDir, filepath.Dir(e.dataDir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectlApply(pvs + e.redisExample("1-redis.yaml"))
	e.rollout("StatefulSet", "redis")
	var load strings.Builder
	for i := range 200 {
		fmt.Fprintf(&load, "SET k:%03d %s\n", i, strings.Repeat(strconv.Itoa(i), 40))
	}
	load.WriteString("HSET user:1 name Ada lang en\nRPUSH queue a b c\nSADD tags x y z\nZADD board 1.5 p1 3 p2\nSET session:1 token EX 3600\n")
	e.redisCLI("redis-0", load.String())
	want := e.redisState("redis-0")
	if len(want) != 205 {
		t.Fatalf("loaded %d keys, want 205", len(want))
	}

	svc := &corev1.Service{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "redis"}, svc); err != nil {
		t.Fatal(err)
	}
	// As the guide says: the addon's Functions and Tasks applied as a
	// user applies their own (cluster objects win over the catalog's).
	e.must("", e.kubectl, "apply", "-f", filepath.Join("addons", "redis", "7.0.5"))
	e.kubectlApply(e.redisExample("2-backup.yaml"))
	e.waitBCReady("redis-backup")
	bs := e.trigger("redis-backup", stashv1beta1.BackupSessionSucceeded)
	hs := bs.Status.Targets[0].Stats
	if len(hs) != 1 || hs[0].Hostname != "host-0" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Path != "/stash-interim-volume/data" {
		t.Fatalf("host stats %+v", hs)
	}
	// The Job is the addon's Task: its dump step and Stash's upload as
	// init containers, update-status as the main container.
	job := &batchv1.Job{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: plan.BackupJobName(bs.Name)}, job); err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 2 || pod.InitContainers[0].Image != "localhost/redis-tools:e2e" || pod.InitContainers[1].Args[0] != "upload" ||
		len(pod.Containers) != 1 || pod.Containers[0].Args[0] != "update-status" {
		t.Errorf("backup Job: init %v, main %v", containerImages(pod.InitContainers), containerImages(pod.Containers))
	}

	e.redisCLI("redis-0", "FLUSHALL\nSET after-backup 1\n")
	e.kubectlApply(e.redisExample("3-restore.yaml"))
	e.waitRestore("redis-restore")
	e.kubectlApply(e.redisExample("4-redis-restored.yaml"))
	e.rollout("StatefulSet", "redis-restored")
	got := e.redisState("redis-restored-0")
	elapsed := int(time.Since(start).Seconds()) + 1
	if len(got) != len(want) {
		t.Errorf("restored %d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("key %s not restored", k)
		case g.dump != w.dump:
			t.Errorf("key %s: restored value differs", k)
		case w.ttl >= 0 && (g.ttl > w.ttl || g.ttl < w.ttl-elapsed):
			t.Errorf("key %s: TTL %d, want %d less at most %d s", k, g.ttl, w.ttl, elapsed)
		case w.ttl < 0 && g.ttl != w.ttl:
			t.Errorf("key %s: TTL %d, want none", k, g.ttl)
		}
	}
}

// redisExample is a file of examples/redis/cluster/ with the test
// cluster's images, MinIO, and the Service's ClusterIP as the host.
func (e *env) redisExample(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, "examples", "redis", "cluster", name))
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "image: redis:7.0.15", "image: localhost/redis:7-e2e")
	if strings.Contains(s, "kind: Repository") {
		m := e.minio
		s = strings.NewReplacer("minio-access-key", m.AccessKey, "minio-secret-key", m.SecretKey,
			"http://minio.storage.svc:9000", "http://"+m.Endpoint).Replace(s)
	}
	if strings.Contains(s, "task: {name: redis-backup-7.0.5}") {
		svc := &corev1.Service{}
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "redis"}, svc); err != nil {
			e.t.Fatal(err)
		}
		// No DNS add-on: the Service's ClusterIP instead of its name.
		s = strings.Replace(s, "task: {name: redis-backup-7.0.5}",
			"task: {name: redis-backup-7.0.5, params: [{name: host, value: \""+svc.Spec.ClusterIP+"\"}]}", 1)
	}
	return s
}

// redisCLI runs the commands (one per line) with redis-cli in pod.
func (e *env) redisCLI(pod, commands string) string {
	e.t.Helper()
	return e.must(commands, e.kubectl, "exec", "-i", "-n", "demo", pod, "--", "sh", "-c", `REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli`)
}

type redisKey struct {
	dump string
	ttl  int
}

// redisState is every key of the server in pod with its DUMP (the
// server's serialization of the value; a set's members, sorted) and TTL.
func (e *env) redisState(pod string) map[string]redisKey {
	e.t.Helper()
	out := e.must("", e.kubectl, "exec", "-n", "demo", pod, "--", "sh", "-c", `export REDISCLI_AUTH="$REDIS_PASSWORD"
for k in $(redis-cli --scan); do
  if [ "$(redis-cli TYPE "$k")" = set ]; then
    # A set's DUMP follows its hash table's order, which a reload changes.
    v="set: $(echo $(redis-cli SMEMBERS "$k"))"
  else
    v=$(redis-cli --no-raw DUMP "$k")
  fi
  printf '%s\t%s\t%s\n' "$k" "$v" "$(redis-cli TTL "$k")"
done`)
	state := map[string]redisKey{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			e.t.Fatalf("redis state line %q", line)
		}
		ttl, err := strconv.Atoi(f[2])
		if err != nil {
			e.t.Fatalf("TTL of %s: %q", f[0], f[2])
		}
		v := f[1]
		if members, ok := strings.CutPrefix(v, "set: "); ok {
			m := strings.Fields(members)
			sort.Strings(m)
			v = "set: " + strings.Join(m, " ")
		}
		state[f[0]] = redisKey{dump: v, ttl: ttl}
	}
	return state
}

func containerImages(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"="+c.Image)
	}
	return out
}
