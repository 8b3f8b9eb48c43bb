package testserver

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Restic runs one restic CLI (the peer that wrote Stash's repositories)
// with its own cache directory, never the user's.
type Restic struct {
	Bin     string
	Version string
	env     []string
}

// Restic versions tests write repositories with: Debian's 0.14 (the
// generation Stash shipped, formats v1 and v2) and 0.18.1, built from the
// module proxy by hack/build-peers.sh.
const (
	ResticDebian = "0.14"
	ResticNewest = "0.18.1"
)

// ResticCLI returns the restic CLI of version (ResticDebian or
// ResticNewest); it fails the test when the tier runs and that CLI is
// missing.
func ResticCLI(t testing.TB, version string) *Restic {
	t.Helper()
	NeedIntegration(t)
	var bin, fix string
	switch version {
	case ResticDebian:
		bin, fix = "/usr/bin/restic", "run hack/install-servers.sh (apt-get install restic)"
	case ResticNewest:
		bin, fix = filepath.Join(RepoRoot(), "bin", "restic"), "run hack/build-peers.sh restic"
	default:
		t.Fatalf("no restic %q: use ResticDebian or ResticNewest", version)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("restic %s is required (%s=1) but missing: %s", version, IntegrationEnv, fix)
	}
	return &Restic{Bin: bin, Version: version, env: append(os.Environ(),
		"RESTIC_CACHE_DIR="+filepath.Join(t.TempDir(), "cache"),
		"RESTIC_PROGRESS_FPS=0.0001",
	)}
}

// Setenv sets an environment variable for every later Run (the
// repository and its password: RESTIC_REPOSITORY, RESTIC_PASSWORD).
func (r *Restic) Setenv(name, value string) { r.env = append(r.env, name+"="+value) }

// Run runs restic with args and stdin (may be nil) from dir (may be
// empty) and returns its standard output; it fails the test, with
// restic's output, when restic exits non-zero.
func (r *Restic) Run(t testing.TB, dir string, stdin io.Reader, args ...string) string {
	t.Helper()
	out, err := r.Try(dir, stdin, args...)
	if err != nil {
		t.Fatalf("restic %s %v: %v", r.Version, args, err)
	}
	return out
}

// Try is Run that returns the error, with restic's output, instead of
// failing the test.
func (r *Restic) Try(dir string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.Command(r.Bin, args...)
	cmd.Env = r.env
	cmd.Dir = dir
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &runError{err: err, out: out.String() + errb.String()}
	}
	return out.String(), nil
}

type runError struct {
	err error
	out string
}

func (e *runError) Error() string { return e.err.Error() + "\n" + e.out }
