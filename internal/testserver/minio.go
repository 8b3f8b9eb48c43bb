// Package testserver starts real servers for tests: a MinIO S3 server
// built by hack/build-tools.sh into bin/. Tests skip when the binary is
// missing unless STASH_REQUIRE_SERVERS=1 (as .ci/run sets), in which case
// they fail, so CI can never pass by skipping.
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

// Required reports whether missing servers must fail tests.
func Required() bool { return os.Getenv("STASH_REQUIRE_SERVERS") == "1" }

func missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (STASH_REQUIRE_SERVERS=1) but missing: run hack/build-tools.sh", what)
	}
	t.Skipf("%s missing: run hack/build-tools.sh (or make test) to build it", what)
}

// StartMinIO starts a MinIO server in a temporary directory; it is stopped
// when the test ends.
func StartMinIO(t testing.TB) *MinIO { return StartMinIOOn(t, "127.0.0.1") }

// StartMinIOOn starts MinIO listening on host (an address pods of the
// test cluster can reach, for the end-to-end tests).
func StartMinIOOn(t testing.TB, host string) *MinIO {
	t.Helper()
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
