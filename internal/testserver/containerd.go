package testserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Containerd is a containerd of a test's own: its socket, state and
// images apart from any other containerd of the machine (the test
// cluster's included).
type Containerd struct {
	Address   string
	Namespace string
}

// StartContainerd starts a containerd (Debian's) as root in a temporary
// directory, with CRI off, and stops it when the test ends.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	NeedIntegration(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		missing(t, "containerd (Debian package containerd)")
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd runs containers for root only")
	}
	// Short: shim and gRPC socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Address: filepath.Join(dir, "containerd.sock"), Namespace: "stash-test"}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Address, filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		// Snapshots may still be mounted if a test failed half way.
		_ = exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l").Run()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.ctr(ctx, "version").Run()
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd did not answer: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Containerd) ctr(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", c.Address, "--namespace", c.Namespace}, args...)...)
}

// Import imports image tarballs (docker-archive, as hack/images.sh writes
// them).
func (c *Containerd) Import(t testing.TB, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			missing(t, "image "+f+" (hack/images.sh builds it)")
		}
		if out, err := c.ctr(context.Background(), "images", "import", "--no-unpack", f).CombinedOutput(); err != nil {
			t.Fatalf("import %s: %v\n%s", f, err, out)
		}
	}
}

// Env returns the environment that points the local runtime at this
// containerd.
func (c *Containerd) Env() []string {
	return []string{"CONTAINERD_ADDRESS=" + c.Address, "CONTAINERD_NAMESPACE=" + c.Namespace}
}

// Tag gives image src the name dst as well (the name a Function's image
// resolves to).
func (c *Containerd) Tag(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := c.ctr(context.Background(), "images", "tag", "--force", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("tag %s %s: %v\n%s", src, dst, err, out)
	}
}
