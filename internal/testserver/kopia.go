package testserver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Kopia runs the kopia CLI v0.22.3 (built by hack/build-peers.sh into bin/)
// with its own config, cache and log directories, never the user's.
type Kopia struct {
	Bin string
	env []string
}

// KopiaCLI returns the kopia CLI, an integration test's peer tool; it
// fails the test when the tier runs and the CLI has not been built.
func KopiaCLI(t testing.TB) *Kopia {
	t.Helper()
	NeedIntegration(t)
	bin := filepath.Join(RepoRoot(), "bin", "kopia")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the kopia CLI is required (%s=1) but missing from bin/: run hack/build-peers.sh", IntegrationEnv)
	}
	dir := t.TempDir()
	return &Kopia{Bin: bin, env: append(os.Environ(),
		"KOPIA_CONFIG_PATH="+filepath.Join(dir, "repository.config"),
		"KOPIA_CACHE_DIRECTORY="+filepath.Join(dir, "cache"),
		"KOPIA_LOG_DIR="+filepath.Join(dir, "logs"),
		"KOPIA_CHECK_FOR_UPDATES=false",
		"KOPIA_PERSIST_CREDENTIALS_ON_CONNECT=false",
	)}
}

// Setenv sets an environment variable for every later Run (the
// repository's password goes in KOPIA_PASSWORD, not in arguments).
func (k *Kopia) Setenv(name, value string) { k.env = append(k.env, name+"="+value) }

// Run runs kopia with args and returns its standard output; it fails the
// test, with kopia's output, when kopia exits non-zero.
func (k *Kopia) Run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(k.Bin, args...)
	cmd.Env = k.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kopia %v: %v\n%s\n%s", args, err, out.String(), errb.String())
	}
	return out.String()
}
