package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/runtime/local"
	"github.com/stash-backup/stash/internal/testserver"
)

// The Redis addon is written as a user writes one (addons/redis,
// docs/guides/write-your-own-addon.md): its dump and load steps run
// Debian's redis-cli in an image of their own (localhost/redis-tools:e2e,
// hack/images.sh), which the local runtime runs with containerd. These
// tests apply the guide's own example (examples/redis/local.yaml) with
// this machine's address, the test server's port and temporary paths.

// redisData loads keys of every type, one with a TTL, one binary.
func redisData(t *testing.T, r *testserver.Redis) {
	t.Helper()
	r.CLI(t, "SET", "greeting", "hello world")
	r.CLI(t, "HSET", "user:1", "name", "Ada", "lang", "en")
	r.CLI(t, "RPUSH", "queue", "a", "b", "c")
	r.CLI(t, "SADD", "tags", "x", "y", "z")
	r.CLI(t, "ZADD", "board", "1.5", "p1", "3", "p2")
	r.CLI(t, "SET", "session:1", "token", "EX", "3600")
	r.CLI(t, "SET", "bin", "caf\xc3\xa9\x01\x02")
	for i := range 100 {
		r.CLI(t, "SET", fmt.Sprintf("k:%03d", i), strings.Repeat(strconv.Itoa(i), 50))
	}
}

// redisState reads every key back by its type, sorted, with TTLs apart.
func redisState(t *testing.T, r *testserver.Redis) (map[string]string, map[string]int) {
	t.Helper()
	vals, ttls := map[string]string{}, map[string]int{}
	keys := strings.Fields(r.CLI(t, "--scan"))
	for _, k := range keys {
		var v string
		switch typ := r.CLI(t, "TYPE", k); typ {
		case "string":
			v = r.CLI(t, "GET", k)
		case "hash":
			v = sortedLines(r.CLI(t, "HGETALL", k))
		case "list":
			v = r.CLI(t, "LRANGE", k, "0", "-1")
		case "set":
			v = sortedLines(r.CLI(t, "SMEMBERS", k))
		case "zset":
			v = r.CLI(t, "ZRANGE", k, "0", "-1", "WITHSCORES")
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		vals[k] = v
		if ttl, _ := strconv.Atoi(r.CLI(t, "TTL", k)); ttl >= 0 {
			ttls[k] = ttl
		}
	}
	return vals, ttls
}

func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// redisExample is examples/redis/local.yaml pointed at this test's
// server, repository and paths.
func redisExample(t *testing.T, ip string, port int, extra string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "examples", "redis", "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("192.0.2.10", ip, "6379", strconv.Itoa(port), "/var/backups/stash", filepath.Join(t.TempDir(), "backups")).Replace(string(b))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis.yaml"), []byte(s+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// userAddonRuntime starts a containerd of the test's own with the Redis
// addon's image under the name its Functions give it, and points the
// stash binary at it.
func userAddonRuntime(t *testing.T) {
	t.Helper()
	c := testserver.StartContainerd(t)
	c.Import(t, filepath.Join(testserver.RepoRoot(), "bin", "images", "redis-tools.tar"))
	c.Tag(t, "localhost/redis-tools:e2e", "ghcr.io/stash-backup/redis-tools:latest")
	for _, kv := range c.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestRedisAddonLocal follows the guide on one machine: the Redis
// addon's backup (redis-cli --rdb in its own container, Stash's upload,
// update-status) of a server with data; the data changed and the server
// gone; the restore (download, the load container writing dump.rdb into
// the claim, update-status); a new server started from that claim holds
// every key and value as backed up, TTLs counting down from where they
// were. A second restore into the same claim is refused. Then a backup
// Stash took (redis-dump-go's RESP commands in a restic repository) is
// replayed into a running server by the same Task.
func TestRedisAddonLocal(t *testing.T) {
	testserver.NeedIntegration(t)
	userAddonRuntime(t)
	ip := testserver.HostIP(t)
	srv := testserver.StartRedis(t, testserver.RedisOptions{Bind: ip, Password: "change-me"})
	redisData(t, srv)
	// Before the TTLs are read: their countdown is bounded by the time
	// from here to the restored server's reading.
	start := time.Now()
	want, wantTTL := redisState(t, srv)
	dir := redisExample(t, ip, srv.Port, "")
	state := t.TempDir()

	r := mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "redis-backup")
	if !strings.Contains(r.stdout, "Succeeded") {
		t.Fatalf("backup: %+v", r)
	}
	var snaps []struct{ Host, Path string }
	r = mustRun(t, nil, "repo", "-f", dir, "--repository", "redis-repo", "-n", "demo", "snapshots", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps) != 1 || snaps[0].Host != "host-0" || snaps[0].Path != "/stash-interim-volume/data" {
		t.Fatalf("snapshots after the backup: %s %v", r.stdout, err)
	}
	out := t.TempDir()
	mustRun(t, nil, "repo", "-f", dir, "--repository", "redis-repo", "-n", "demo", "restore", "--snapshot", "latest", "--target", out)
	if b, err := os.ReadFile(filepath.Join(out, "dump.rdb")); err != nil || !bytes.HasPrefix(b, []byte("REDIS")) {
		t.Errorf("the snapshot's dump.rdb is not an RDB file: %.20q %v", b, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(state, "sessions", "*", "*", "tmp")); len(leftovers) > 0 {
		t.Errorf("the session's scratch directory (with the dump) stayed on disk: %v", leftovers)
	}

	srv.CLI(t, "FLUSHALL")
	srv.CLI(t, "SET", "after-backup", "1")
	srv.Stop()

	r = mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "redis-restore")
	if !strings.Contains(r.stdout, "RestoreSession demo/redis-restore: Succeeded") {
		t.Fatalf("restore: %+v", r)
	}
	claim := local.ClaimDir(state, "demo", "data-redis-0")
	restored := testserver.StartRedis(t, testserver.RedisOptions{Dir: claim, Password: "change-me"})
	got, gotTTL := redisState(t, restored)
	if len(got) != len(want) {
		t.Errorf("restored %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s: restored %q, want %q", k, got[k], v)
		}
	}
	elapsed := int(time.Since(start).Seconds()) + 1
	for k, ttl := range wantTTL {
		if g, ok := gotTTL[k]; !ok || g > ttl || g < ttl-elapsed {
			t.Errorf("key %s: TTL %d after restore, want %d less at most %d s", k, g, ttl, elapsed)
		}
	}
	if _, ok := got["after-backup"]; ok {
		t.Error("a key written after the backup came back")
	}

	// The claim now holds a dump.rdb: a second restore refuses to
	// overwrite it.
	f := run(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "redis-restore")
	if f.code == 0 || !strings.Contains(f.stdout+f.stderr, "dump.rdb exists: restore into a new volume") {
		t.Errorf("restore over an existing dump.rdb: %+v", f)
	}

	t.Run("stash-era backup", func(t *testing.T) { redisFromStash(t, ip) })
}

// redisFromStash: a backup Stash's Redis addon took (redis-dump-go's
// RESP command stream through restic backup --stdin --stdin-filename
// dumpfile.resp, here by Debian's restic 0.14) restores into a running
// server through the addon's Task, which finds dumpfile.resp and replays
// it with redis-cli --pipe.
func redisFromStash(t *testing.T, ip string) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{Bind: ip, Password: "change-me"})
	old := filepath.Join(t.TempDir(), "stash-era")
	rc := testserver.ResticCLI(t, testserver.ResticDebian)
	rc.Setenv("RESTIC_REPOSITORY", old)
	rc.Setenv("RESTIC_PASSWORD", "change-me-too")
	rc.Run(t, "", nil, "init")
	var resp bytes.Buffer
	command := func(args ...string) {
		fmt.Fprintf(&resp, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&resp, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	command("SELECT", "0")
	command("SET", "from-stash", "yes")
	command("HSET", "h", "f1", "v1", "f2", "v2")
	command("RPUSH", "l", "1", "2", "3")
	command("SET", "expiring", "soon")
	command("EXPIREAT", "expiring", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	rc.Run(t, "", &resp, "backup", "--stdin", "--stdin-filename", "dumpfile.resp", "--host", "host-0")

	dir := redisExample(t, ip, srv.Port, `---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: stash-era, namespace: demo}
spec:
  backend:
    local: {mountPath: /safe/old, hostPath: {path: `+old+`}}
    storageSecretName: redis-repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: redis-from-stash, namespace: demo}
spec:
  task:
    name: redis-restore-7.0.5
    params:
    - {name: host, value: "`+ip+`"}
    - {name: port, value: "`+strconv.Itoa(srv.Port)+`"}
  repository: {name: stash-era}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: redis}
    rules: [{snapshots: [latest]}]
`)
	r := mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", t.TempDir(), "-n", "demo", "redis-from-stash")
	if !strings.Contains(r.stdout, "Succeeded") {
		t.Fatalf("restore of Stash's backup: %+v", r)
	}
	if got := srv.CLI(t, "GET", "from-stash"); got != "yes" {
		t.Errorf("from-stash = %q", got)
	}
	if got := srv.CLI(t, "LRANGE", "l", "0", "-1"); got != "1\n2\n3" {
		t.Errorf("list l = %q", got)
	}
	if ttl, _ := strconv.Atoi(srv.CLI(t, "TTL", "expiring")); ttl <= 0 || ttl > 3600 {
		t.Errorf("TTL of expiring = %d, want up to an hour", ttl)
	}
}
