package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Environment variables that point the local runtime at a containerd.
const (
	EnvAddress   = "CONTAINERD_ADDRESS"
	EnvNamespace = "CONTAINERD_NAMESPACE"
)

// Defaults of Containerd.
const (
	DefaultAddress   = "/run/containerd/containerd.sock"
	DefaultNamespace = "stash"
)

// ErrNoRuntime is what Detect's error wraps when no container runtime
// can run a step here.
var ErrNoRuntime = errors.New("no container runtime")

// Containerd runs containers through containerd's ctr client.
type Containerd struct {
	// Ctr is the ctr binary; Address and Namespace the containerd socket
	// and the namespace holding the images.
	Ctr, Address, Namespace string
	// Network attaches each container.
	Network *Network
	// WorkDir holds the containers' root filesystem mounts.
	WorkDir string
	// SpecDir holds their runtime specs while they run; memory-backed
	// (/dev/shm) because a spec carries the env, Secrets included.
	SpecDir string
}

// Detect returns the containerd this machine offers, or an error wrapping
// ErrNoRuntime that says what is missing. workDir holds root filesystem
// mounts.
func Detect(ctx context.Context, workDir string) (*Containerd, error) {
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		return nil, fmt.Errorf("%w: ctr is not installed (Debian: apt-get install containerd, then start containerd)", ErrNoRuntime)
	}
	c := &Containerd{
		Ctr: ctr, Address: envOr(EnvAddress, DefaultAddress), Namespace: envOr(EnvNamespace, DefaultNamespace),
		Network: DefaultNetwork(), WorkDir: workDir, SpecDir: specDir(),
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: containerd runs containers for root only; run the local runtime as root to run steps of other images", ErrNoRuntime)
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := c.ctr(vctx, "version").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: containerd does not answer at %s (set %s): %v: %s", ErrNoRuntime, c.Address, EnvAddress, err, lastLine(out))
	}
	if err := c.Network.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoRuntime, err)
	}
	return c, nil
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func specDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func (c *Containerd) ctr(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.Ctr, append([]string{"--address", c.Address, "--namespace", c.Namespace}, args...)...)
}

// Request is one container to run to completion.
type Request struct {
	// ID names the container; unique among those running.
	ID        string
	Container corev1.Container
	Pod       corev1.PodSpec
	// Env is the container's env with valueFrom resolved.
	Env    []corev1.EnvVar
	Mounts []Mount
	// Hostname is the pod's name.
	Hostname       string
	Stdout, Stderr io.Writer
}

// Run runs one container and returns when it exits: nil on exit 0. The
// container, its root filesystem and its network are gone when Run
// returns, also when ctx is cancelled.
func (c *Containerd) Run(ctx context.Context, req Request) (err error) {
	name := req.Container.Name
	ref, err := NormalizeRef(req.Container.Image)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	mediaType, digest, err := c.ensureImage(ctx, ref, req.Container.ImagePullPolicy)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	img, err := c.imageConfig(ctx, mediaType, digest)
	if err != nil {
		return fmt.Errorf("container %s: image %s: %w", name, ref, err)
	}
	dir := filepath.Join(c.WorkDir, req.ID)
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if out, err := c.ctr(ctx, "images", "mount", "--rw", ref, rootfs).CombinedOutput(); err != nil {
		return fmt.Errorf("container %s: mount image %s: %w: %s", name, ref, err, lastLine(out))
	}
	defer func() {
		// A fresh context: this must run after a cancellation too.
		if out, uerr := c.ctr(context.Background(), "images", "unmount", "--rm", rootfs).CombinedOutput(); uerr != nil && err == nil {
			err = fmt.Errorf("container %s: unmount its root filesystem: %w: %s", name, uerr, lastLine(out))
		}
	}()
	netns, teardown, err := c.Network.Setup(ctx, req.ID)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	defer teardown()
	spec, err := BuildSpec(SpecInput{
		Container: req.Container, Pod: req.Pod, Image: img, Env: req.Env, Mounts: req.Mounts,
		LookupUser: func(u string) (uint32, uint32, bool) { return lookupUser(rootfs, u) },
		RootFS:     rootfs, Hostname: req.Hostname, NetNS: netns, CgroupsPath: "/stash-local/" + req.ID,
	})
	if err != nil {
		return err
	}
	for _, m := range req.Mounts {
		// The kubelet creates a mount point the image lacks; so does
		// runc, but only as root-owned directories, which is the same.
		if _, err := os.Lstat(m.Source); err != nil {
			return fmt.Errorf("container %s: volume for %s: %w", name, m.Destination, err)
		}
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.SpecDir, "stash-spec-*.json")
	if err != nil {
		return fmt.Errorf("container %s: runtime spec: %w", name, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// With --config, ctr takes the root filesystem from the spec.
	args := []string{"run", "--rm", "--config", f.Name()}
	if seccompDefault(req.Container, req.Pod) {
		args = append(args, "--seccomp")
	}
	args = append(args, req.ID)
	// Not the run's context: killing ctr would leave the container running.
	// On cancellation the container is killed, and ctr returns with it.
	cmd := c.ctr(context.Background(), args...)
	cmd.Stdout, cmd.Stderr = req.Stdout, req.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		c.kill(req.ID)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		err = ctx.Err()
	}
	// --rm removes the container when ctr sees it exit; a killed ctr
	// does not, so remove it here (no error when already gone).
	_ = c.ctr(context.Background(), "containers", "rm", req.ID).Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("container %s (image %s) exited with status %d", name, ref, ee.ExitCode())
		}
		return fmt.Errorf("container %s: %w", name, err)
	}
	return nil
}

func (c *Containerd) kill(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id).Run()
}

// seccompDefault: the runtime's default seccomp profile applies unless
// the container or its pod asks for Unconfined.
func seccompDefault(c corev1.Container, pod corev1.PodSpec) bool {
	var p *corev1.SeccompProfile
	if pod.SecurityContext != nil {
		p = pod.SecurityContext.SeccompProfile
	}
	if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
		p = c.SecurityContext.SeccompProfile
	}
	return p == nil || p.Type != corev1.SeccompProfileTypeUnconfined
}

// ensureImage pulls ref when it is missing (or always, with Always),
// unless the policy is Never, and returns what it points at.
func (c *Containerd) ensureImage(ctx context.Context, ref string, policy corev1.PullPolicy) (mediaType, digest string, err error) {
	mediaType, digest, err = c.imageTarget(ctx, ref)
	switch {
	case err == nil && policy != corev1.PullAlways:
		return mediaType, digest, nil
	case err != nil && policy == corev1.PullNever:
		return "", "", fmt.Errorf("image %s is not in containerd namespace %s and imagePullPolicy is Never: import it (ctr -n %s images import FILE)", ref, c.Namespace, c.Namespace)
	}
	if out, err := c.ctr(ctx, "images", "pull", ref).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("image %s is not in containerd namespace %s and pulling it failed: %w: %s (import it: ctr -n %s images import FILE)", ref, c.Namespace, err, lastLine(out), c.Namespace)
	}
	return c.imageTarget(ctx, ref)
}

// imageTarget returns the media type and digest ref points at.
func (c *Containerd) imageTarget(ctx context.Context, ref string) (mediaType, digest string, err error) {
	out, err := c.ctr(ctx, "images", "ls").Output()
	if err != nil {
		return "", "", fmt.Errorf("list images: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == ref {
			return f[1], f[2], nil
		}
	}
	return "", "", fmt.Errorf("image %s not found", ref)
}

func (c *Containerd) imageConfig(ctx context.Context, mediaType, digest string) (ImageConfig, error) {
	return imageConfig(mediaType, digest, func(d string) ([]byte, error) {
		out, err := c.ctr(ctx, "content", "get", d).Output()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d, err)
		}
		return out, nil
	})
}

// lookupUser reads the image's /etc/passwd, never through a symlink (an
// image could point it at this machine's files).
func lookupUser(rootfs, name string) (uint32, uint32, bool) {
	p := filepath.Join(rootfs, "etc", "passwd")
	for _, d := range []string{filepath.Join(rootfs, "etc"), p} {
		st, err := os.Lstat(d)
		if err != nil || st.Mode()&os.ModeSymlink != 0 {
			return 0, 0, false
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, false
	}
	return parsePasswd(b, name)
}

func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
