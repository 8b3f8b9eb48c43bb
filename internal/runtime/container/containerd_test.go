package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stash-backup/stash/internal/testserver"
)

func ptr[T any](v T) *T { return &v }

// newContainerd starts a containerd of the test's own with the user
// addon image of hack/images.sh imported.
func newContainerd(t *testing.T) *Containerd {
	t.Helper()
	srv := testserver.StartContainerd(t)
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	srv.Import(t, filepath.Join(root, "bin", "images", "redis-tools.tar"))
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := Detect(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// restricted is the pod securityContext of a step pod (internal/plan).
var restricted = corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
	RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65535)), RunAsGroup: ptr(int64(65535)), FSGroup: ptr(int64(65535)),
	SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
}}

// TestRunContainer: a step of a third-party image runs with the Job's
// user, its volume and env and nothing else: no capabilities when it
// drops them, no environment of the runtime, its own network namespace
// that still reaches a server of this machine (not its loopback), and its
// exit status is the step's.
func TestRunContainer(t *testing.T) {
	c := newContainerd(t)
	ctx := context.Background()
	vol := t.TempDir()
	if err := os.Chmod(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	hostIP := testserver.HostIP(t)
	redis := testserver.StartRedis(t, testserver.RedisOptions{Bind: hostIP})
	port := redis.Port
	t.Setenv("STASH_SECRET_OF_THE_RUNTIME", "must-not-leak")
	var out, errOut bytes.Buffer
	script := `set -e
id -u > /data/uid; id -G > /data/groups
grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status > /data/caps
env > /data/env
echo PING | redis-cli -h "$HOST" -p "$PORT" > /data/pong
echo "$GREETING $(cat /data/uid)"
test ! -e /host-root-should-not-exist
exit 0`
	req := Request{
		ID: "t1", Hostname: "stash-backup-s1-0",
		Container: corev1.Container{
			Name: "redis-dump-0", Image: "localhost/redis-tools:e2e", Command: []string{"sh", "-c", script},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		},
		Pod:    restricted,
		Env:    []corev1.EnvVar{{Name: "GREETING", Value: "hello from"}, {Name: "HOST", Value: hostIP}, {Name: "PORT", Value: fmt.Sprint(port)}},
		Mounts: []Mount{{Source: vol, Destination: "/data"}},
		Stdout: &out, Stderr: &errOut,
	}
	if err := c.Run(ctx, req); err != nil {
		t.Fatalf("run: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != "hello from 65535" {
		t.Errorf("stdout %q, want the env and the user", got)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(vol, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := strings.Fields(read("groups")); len(got) != 1 || got[0] != "65535" {
		t.Errorf("groups %v, want 65535 (runAsGroup and fsGroup)", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(read("caps")), "\n") {
		if !strings.HasSuffix(line, "0000000000000000") {
			t.Errorf("capability set %q: want none after drop ALL", line)
		}
	}
	if env := read("env"); strings.Contains(env, "must-not-leak") || !strings.Contains(env, "HOSTNAME=stash-backup-s1-0") {
		t.Errorf("container env holds the runtime's or lacks its hostname:\n%s", env)
	}
	if got := strings.TrimSpace(read("pong")); got != "PONG" {
		t.Errorf("redis-cli through the container's network got %q, want PONG; stderr %s", got, errOut.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "uid"), &st); err != nil || st.Uid != 65535 {
		t.Errorf("file written by the step owned by %d (%v), want 65535", st.Uid, err)
	}

	// A failing step fails with its status; nothing of it stays.
	req.ID = "t2"
	req.Container.Command = []string{"sh", "-c", "echo failing >&2; exit 3"}
	if err := c.Run(ctx, req); err == nil || !strings.Contains(err.Error(), "exited with status 3") {
		t.Errorf("failing step: %v, want exit status 3", err)
	}
	// The loopback of this machine is not the container's: a server
	// listening there only is out of reach.
	local := testserver.StartRedis(t, testserver.RedisOptions{})
	req.ID = "t3"
	req.Container.Command = []string{"sh", "-c", "echo PING | redis-cli -h 127.0.0.1 -p $PORT; echo tried"}
	req.Env[2] = corev1.EnvVar{Name: "PORT", Value: fmt.Sprint(local.Port)}
	out.Reset()
	if err := c.Run(ctx, req); err != nil || !strings.Contains(out.String(), "tried") || strings.Contains(out.String(), "PONG") {
		t.Errorf("loopback: %v %q, want the step to run and not reach this machine's loopback", err, out.String())
	}
	assertNothingLeft(t, c)
}

// TestRunContainerCancelled: cancelling the session kills the container
// at once and leaves no container, mount or network namespace behind.
func TestRunContainerCancelled(t *testing.T) {
	c := newContainerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(3 * time.Second); cancel() }()
	start := time.Now()
	err := c.Run(ctx, Request{
		ID: "sleeper", Hostname: "p",
		Container: corev1.Container{Name: "sleep-0", Image: "localhost/redis-tools:e2e", Command: []string{"sleep", "300"}},
		Pod:       restricted, Stdout: os.Stderr, Stderr: os.Stderr,
	})
	if !errors.Is(err, context.Canceled) || time.Since(start) < 3*time.Second || time.Since(start) > time.Minute {
		t.Fatalf("cancelled run: %v after %s, want an error at once", err, time.Since(start))
	}
	assertNothingLeft(t, c)
}

// TestRunContainerRefusals: what the local runtime does not grant fails
// before anything runs, naming the field.
func TestRunContainerRefusals(t *testing.T) {
	c := newContainerd(t)
	for _, tc := range []struct {
		name string
		c    corev1.Container
		pod  corev1.PodSpec
		want string
	}{
		{"privileged", corev1.Container{SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}, corev1.PodSpec{}, "privileged"},
		{"host network", corev1.Container{}, corev1.PodSpec{HostNetwork: true}, "host namespace"},
		{"root with runAsNonRoot", corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(0))}}, restricted, "runAsNonRoot"},
		{"missing image", corev1.Container{Image: "localhost/not-there:1", ImagePullPolicy: corev1.PullNever}, corev1.PodSpec{}, "imagePullPolicy is Never"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.c
			ct.Name = "step-0"
			if ct.Image == "" {
				ct.Image = "localhost/redis-tools:e2e"
			}
			ct.Command = []string{"true"}
			err := c.Run(context.Background(), Request{ID: "r-" + strings.ReplaceAll(tc.name, " ", "-"), Container: ct, Pod: tc.pod, Stdout: os.Stderr, Stderr: os.Stderr})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error saying %q", err, tc.want)
			}
		})
	}
	assertNothingLeft(t, c)
}

func assertNothingLeft(t *testing.T, c *Containerd) {
	t.Helper()
	out, err := c.ctr(context.Background(), "containers", "ls", "-q").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers left: %q (%v)", out, err)
	}
	out, _ = exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), "stash-") {
		t.Errorf("network namespaces left: %s", out)
	}
	if b, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(b), c.WorkDir) {
		t.Errorf("mounts left under %s", c.WorkDir)
	}
}
