package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/testserver"
)

type snapshotJSON struct {
	ID   string            `json:"id"`
	Host string            `json:"host"`
	Path string            `json:"path"`
	Tags map[string]string `json:"tags"`
}

func snapshots(t *testing.T, manifests string, extra ...string) []snapshotJSON {
	t.Helper()
	r := mustRun(t, nil, append([]string{"repo", "-f", manifests, "snapshots", "-o", "json"}, extra...)...)
	var out []snapshotJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("snapshots output %q: %v", r.stdout, err)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestRepoCLIRoundTrip(t *testing.T) {
	m := localRepo(t, "e2e-password")
	mustRun(t, nil, "repo", "-f", m, "init")
	if r := run(t, nil, "repo", "-f", m, "init"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second init: %+v", r)
	}
	dump := append([]byte(strings.Repeat("INSERT INTO t VALUES (1, 'x');\n", 50000)), randomBytes(2<<20)...)
	r := mustRun(t, dump, "repo", "-f", m, "backup", "--host", "db", "--tag", "backup-session=s1", "--stdin", "dumpfile.sql", "-o", "json")
	var out struct {
		Hostname  string `json:"hostname"`
		Snapshots []struct {
			Name           string `json:"name"`
			Path           string `json:"path"`
			TotalSize      string `json:"totalSize"`
			Uploaded       string `json:"uploaded"`
			ProcessingTime string `json:"processingTime"`
			FileStats      struct {
				TotalFiles *int64 `json:"totalFiles"`
				NewFiles   *int64 `json:"newFiles"`
			} `json:"fileStats"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("backup json %q: %v", r.stdout, err)
	}
	if out.Hostname != "db" || len(out.Snapshots) != 1 || out.Snapshots[0].Path != "dumpfile.sql" ||
		out.Snapshots[0].TotalSize == "" || out.Snapshots[0].Uploaded == "" || out.Snapshots[0].ProcessingTime == "" ||
		*out.Snapshots[0].FileStats.TotalFiles != 1 || *out.Snapshots[0].FileStats.NewFiles != 1 {
		t.Errorf("backup result %+v", out)
	}
	snaps := snapshots(t, m, "--host", "db")
	if len(snaps) != 1 || snaps[0].ID != out.Snapshots[0].Name || snaps[0].Tags["backup-session"] != "s1" {
		t.Fatalf("snapshots %+v", snaps)
	}
	got := mustRun(t, nil, "repo", "-f", m, "restore", "--host", "db", "--stdout", "dumpfile.sql")
	if !bytes.Equal([]byte(got.stdout), dump) {
		t.Fatalf("restored %d bytes, differ from the %d backed up", len(got.stdout), len(dump))
	}

	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "skip.tmp"), []byte("tmp"), 0o644)
	mustRun(t, nil, "repo", "-f", m, "backup", "--host", "host-0", "--exclude", "*.tmp", src)
	dst := filepath.Join(t.TempDir(), "restore")
	mustRun(t, nil, "repo", "-f", m, "restore", "--host", "host-0", "--path", src, "--target", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "a.txt")); err != nil || string(b) != "alpha" {
		t.Errorf("restored a.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "skip.tmp")); !os.IsNotExist(err) {
		t.Errorf("excluded file was restored: %v", err)
	}

	check := mustRun(t, nil, "repo", "-f", m, "check", "--read-data", "-o", "json")
	if !strings.Contains(check.stdout, `"ok": true`) {
		t.Errorf("check: %s", check.stdout)
	}
	stats := mustRun(t, nil, "repo", "-f", m, "stats", "-o", "json")
	if !strings.Contains(stats.stdout, `"snapshotCount": 2`) {
		t.Errorf("stats: %s", stats.stdout)
	}
}

func TestRepoCLIForget(t *testing.T) {
	m := localRepo(t, "pw")
	for i := range 4 {
		mustRun(t, randomBytes(1<<20), "repo", "-f", m, "backup", "--stdin", "d.sql", "--tag", fmt.Sprintf("n=%d", i))
	}
	if r := run(t, nil, "repo", "-f", m, "forget"); r.code == 0 || !strings.Contains(r.stderr, "--keep-last") {
		t.Errorf("forget without a policy: %+v", r)
	}
	dry := mustRun(t, nil, "repo", "-f", m, "forget", "--keep-last", "2", "--dry-run", "-o", "json")
	if !strings.Contains(dry.stdout, `"removed": 2`) || len(snapshots(t, m)) != 4 {
		t.Fatalf("dry run: %s", dry.stdout)
	}
	res := mustRun(t, nil, "repo", "-f", m, "forget", "--keep-last", "1", "--keep-tag", "n=0", "--prune")
	if !strings.Contains(res.stdout, "kept 2, removed 2") || !strings.Contains(res.stdout, "prune (immediate)") ||
		!strings.Contains(res.stdout, "(tag n=0)") {
		t.Fatalf("forget: %s", res.stdout)
	}
	if s := snapshots(t, m); len(s) != 2 {
		t.Fatalf("left %d snapshots", len(s))
	}
}

func TestRepoCLIErrors(t *testing.T) {
	m := localRepo(t, "right-password")
	mustRun(t, []byte("data"), "repo", "-f", m, "backup", "--stdin", "d.sql")

	// A wrong password: exit 12, names the key, never prints a password.
	wrong := localRepo(t, "wrong-password")
	content, _ := os.ReadFile(filepath.Join(wrong, "repository.yaml"))
	orig, _ := os.ReadFile(filepath.Join(m, "repository.yaml"))
	// Point the wrong-password manifest at the first repository's storage.
	storage := between(string(orig), "path: ", "\n")
	writeManifest(t, wrong, strings.Replace(string(content), between(string(content), "path: ", "\n"), storage, 1))
	r := run(t, nil, "repo", "-f", wrong, "snapshots")
	if r.code != 12 || !strings.Contains(r.stderr, "RESTIC_PASSWORD") || strings.Contains(r.stderr, "password\n") ||
		strings.Contains(r.stderr, "wrong-password") || strings.Contains(r.stderr, "right-password") {
		t.Errorf("wrong password: %+v", r)
	}

	cases := []struct {
		name, manifest, want string
		code                 int
	}{
		{"missing secret", `apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: r}
spec:
  backend:
    storageSecretName: nowhere
    local: {mountPath: /tmp/x}
`, `Secret default/nowhere (spec.backend.storageSecretName) not found`, 1},
		{"missing password key", `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {AWS_ACCESS_KEY_ID: a}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: r}
spec:
  backend:
    storageSecretName: s
    local: {mountPath: /tmp/x}
`, "Secret s: storage Secret has no RESTIC_PASSWORD", 1},
		{"no repository", `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {RESTIC_PASSWORD: a}
`, "no Repository found", 1},
		{"two backends", `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {RESTIC_PASSWORD: a}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: r}
spec:
  backend:
    storageSecretName: s
    local: {mountPath: /tmp/x}
    gcs: {bucket: b}
`, "local, gcs are all set: set exactly one backend", 1},
		{"not initialized", `apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {RESTIC_PASSWORD: a}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: r}
spec:
  backend:
    storageSecretName: s
    local: {mountPath: /nonexistent/stash/repo}
`, "no repository at this location", 10},
		{"broken yaml", "apiVersion: v1\nkind: Secret\nmetadata: [\n", "document 1", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeManifest(t, dir, c.manifest)
			r := run(t, nil, "repo", "-f", dir, "snapshots")
			if r.code != c.code || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "panic") {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}

	t.Run("unreachable endpoint", func(t *testing.T) {
		port := testserver.FreePort(t)
		dir := s3Repo(t, &testserver.MinIO{AccessKey: "ak", SecretKey: "VERYSECRETKEY"}, "b", fmt.Sprintf("127.0.0.1:%d", port))
		r := run(t, nil, "repo", "-f", dir, "snapshots")
		if r.code != 13 || !strings.Contains(r.stderr, "storage unreachable") || !strings.Contains(r.stderr, fmt.Sprint(port)) ||
			strings.Contains(r.stderr, "VERYSECRETKEY") {
			t.Errorf("unreachable: %+v", r)
		}
	})
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

// TestKilledBackupLeavesRepositoryValid kills `stash repo backup` with
// SIGKILL at several points of a stream backup: no half snapshot is ever
// listed, the repository checks clean, and the next backup succeeds.
func TestKilledBackupLeavesRepositoryValid(t *testing.T) {
	for _, be := range []string{"local", "s3"} {
		t.Run(be, func(t *testing.T) {
			var m string
			if be == "local" {
				m = localRepo(t, "pw")
			} else {
				srv := minio(t)
				bucket := fmt.Sprintf("kill-%d", time.Now().UnixNano())
				srv.MakeBucket(t, bucket)
				m = s3Repo(t, srv, bucket, srv.Endpoint)
			}
			mustRun(t, nil, "repo", "-f", m, "init")
			// Kill after 0, 1, 8 and 24 MiB were fed, and once after all
			// of it was fed (the commit itself may be under way).
			for _, after := range []int{0, 1 << 20, 8 << 20, 24 << 20, 32 << 20} {
				cmd := exec.Command(stashBin, "repo", "-f", m, "backup", "--stdin", "dump.sql", "--host", "killed")
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				var errb bytes.Buffer
				cmd.Stderr = &errb
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if after > 0 {
					if _, err := io.CopyN(stdin, rand.Reader, int64(after)); err != nil {
						t.Fatalf("feed: %v (%s)", err, errb.String())
					}
				}
				if after == 32<<20 {
					stdin.Close()
					time.Sleep(50 * time.Millisecond)
				} else {
					time.Sleep(300 * time.Millisecond)
				}
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				stdin.Close()
				// Mid-stream the backup must still have been running: the
				// kill, not an error of its own, ended it.
				if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); after < 32<<20 && !ws.Signaled() {
					t.Fatalf("backup fed %d bytes ended before the kill: %v\n%s", after, cmd.ProcessState, errb.String())
				}
			}
			for _, s := range snapshots(t, m) {
				// Only a backup that got to commit before the kill may
				// exist, and then it must be whole.
				r := mustRun(t, nil, "repo", "-f", m, "restore", "--snapshot", s.ID, "--stdout", "dump.sql")
				if len(r.stdout) != 32<<20 {
					t.Errorf("snapshot %s of a killed backup has %d bytes", s.ID, len(r.stdout))
				}
			}
			check := run(t, nil, "repo", "-f", m, "check", "--read-data")
			if check.code != 0 {
				t.Fatalf("check after killed backups: %+v", check)
			}
			data := randomBytes(3 << 20)
			mustRun(t, data, "repo", "-f", m, "backup", "--stdin", "dump.sql", "--host", "after")
			r := mustRun(t, nil, "repo", "-f", m, "restore", "--host", "after", "--stdout", "dump.sql")
			if !bytes.Equal([]byte(r.stdout), data) {
				t.Fatal("backup after the killed ones restores wrong data")
			}
			// Prune is not blocked by the killed backups' locks for
			// longer than they take to go stale, and stays safe meanwhile.
			pr := mustRun(t, nil, "repo", "-f", m, "forget", "--keep-last", "1", "--prune")
			if !strings.Contains(pr.stdout, "prune (") {
				t.Errorf("prune: %s", pr.stdout)
			}
			if c := run(t, nil, "repo", "-f", m, "check", "--read-data"); c.code != 0 {
				t.Fatalf("check after prune: %+v", c)
			}
		})
	}
}

// shared holds the package's MinIO, stopped by TestMain.
var shared testserver.Shared

func minio(t *testing.T) *testserver.MinIO { return shared.MinIO(t) }

// TestConcurrentBackupProcesses runs two backup processes into one
// repository at once; both must succeed and restore.
func TestConcurrentBackupProcesses(t *testing.T) {
	for _, be := range []string{"local", "s3"} {
		t.Run(be, func(t *testing.T) {
			var m string
			if be == "local" {
				m = localRepo(t, "pw")
			} else {
				srv := minio(t)
				bucket := fmt.Sprintf("conc-%d", time.Now().UnixNano())
				srv.MakeBucket(t, bucket)
				m = s3Repo(t, srv, bucket, srv.Endpoint)
			}
			mustRun(t, nil, "repo", "-f", m, "init")
			data := [][]byte{randomBytes(12 << 20), randomBytes(12 << 20)}
			var wg sync.WaitGroup
			results := make([]result, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = run(t, data[i], "repo", "-f", m, "backup", "--stdin", "dump.sql", "--host", fmt.Sprintf("host-%d", i))
				}()
			}
			wg.Wait()
			for i, r := range results {
				if r.code != 0 {
					t.Fatalf("backup %d: %+v", i, r)
				}
			}
			for i := range 2 {
				r := mustRun(t, nil, "repo", "-f", m, "restore", "--host", fmt.Sprintf("host-%d", i), "--stdout", "dump.sql")
				if !bytes.Equal([]byte(r.stdout), data[i]) {
					t.Errorf("host-%d restored wrong data", i)
				}
			}
			if c := run(t, nil, "repo", "-f", m, "check", "--read-data"); c.code != 0 {
				t.Fatalf("check: %+v", c)
			}
		})
	}
}
