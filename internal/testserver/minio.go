// Package testserver starts real servers for the integration tier of the
// tests: MinIO and FerretDB (built by hack/build-tools.sh into bin/),
// PostgreSQL and MariaDB (Debian's), kube-apiserver and etcd, the kopia
// CLI. They run
// only with STASH_INTEGRATION=1 (make test and CI set it), and then a
// missing one fails its test, so CI can never pass by skipping; without
// it, their tests skip and say how to run them.
package testserver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a running MinIO server.
type MinIO struct {
	Endpoint  string // host:port, plain HTTP
	AccessKey string
	SecretKey string
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// IntegrationEnv is the switch of the integration tier: tests with real
// servers (MinIO, PostgreSQL, MariaDB, kube-apiserver and etcd, the kopia
// CLI) and the real-cluster suite run only when it is 1, and then a
// missing server fails them. `make test` and CI set it; a plain
// `go test ./...` runs the unit and in-process tests and skips the rest,
// saying so.
const IntegrationEnv = "STASH_INTEGRATION"

// Integration reports whether the integration tier runs.
func Integration() bool { return os.Getenv(IntegrationEnv) == "1" }

// Required reports whether missing servers must fail tests: they must
// whenever the integration tier runs.
func Required() bool { return Integration() }

// NeedIntegration skips t unless the integration tier runs.
func NeedIntegration(t testing.TB) {
	t.Helper()
	if !Integration() {
		t.Skipf("integration test (real servers): %s=1 runs it, as make test does", IntegrationEnv)
	}
}

func missing(t testing.TB, what string) {
	t.Helper()
	t.Fatalf("%s is required (%s=1) but missing: run make test, or hack/build-tools.sh and hack/install-servers.sh", what, IntegrationEnv)
}

// StartMinIO starts a MinIO server in a temporary directory; it is stopped
// when the test ends.
func StartMinIO(t testing.TB) *MinIO { return StartMinIOOn(t, "127.0.0.1") }

// StartMinIOOn starts MinIO listening on host (an address pods of the
// test cluster can reach, for the end-to-end tests).
func StartMinIOOn(t testing.TB, host string) *MinIO {
	t.Helper()
	NeedIntegration(t)
	bin := filepath.Join(RepoRoot(), "bin", "minio")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "MinIO ("+bin+")")
	}
	dir := t.TempDir()
	port, cport := FreePort(t), FreePort(t)
	m := &MinIO{Endpoint: fmt.Sprintf("%s:%d", host, port), AccessKey: "stash-test", SecretKey: "stash-test-secret"}
	cmd := exec.Command(bin, "server", dir, "--quiet", "--address", m.Endpoint, "--console-address", fmt.Sprintf("127.0.0.1:%d", cport))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logf, err := os.Create(filepath.Join(t.TempDir(), "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("MinIO did not become ready: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// MakeBucket creates a bucket.
func (m *MinIO) MakeBucket(t testing.TB, name string) {
	t.Helper()
	cli, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}
