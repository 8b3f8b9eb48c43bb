//go:build unix

package repository

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"
)

// TestSweepConfigDirs: a directory is removed when its owner's lock is
// free (the owner is gone) or, without a lock, when it is more than a day
// old; a locked one, a young one without a lock, and anything not named
// as ours stay.
func TestSweepConfigDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	live, liveLock, err := newConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	defer liveLock.Close()
	dead, deadLock, err := newConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	deadLock.Close() // as the kernel does when its process dies
	young, err := os.MkdirTemp("", configDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.MkdirTemp("", configDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * legacyAge)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(tmp, "other")
	file := filepath.Join(tmp, configDirPrefix+"file")
	for _, p := range []string{other, file} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}

	sweepConfigDirs(time.Now())

	for p, want := range map[string]bool{live: true, dead: false, young: true, old: false, other: true, file: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s: exists %v after the sweep, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// TestKilledOwnerSwept: a process killed with SIGKILL while it has the
// repository open leaves its directory behind; the next Close, in another
// process, removes it.
func TestKilledOwnerSwept(t *testing.T) {
	if path := os.Getenv("STASH_TEST_CONFIGDIR_HELPER"); path != "" {
		r, err := Open(context.Background(), Options{
			Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: path}},
			Password: "test-password",
		})
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("dir " + r.configDir + "\n")
		time.Sleep(time.Minute) // killed long before
		return
	}
	t.Setenv("TMPDIR", t.TempDir())
	o := localOptions(t)
	if err := Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledOwnerSwept$")
	cmd.Env = append(os.Environ(), "STASH_TEST_CONFIGDIR_HELPER="+o.Location.Filesystem.Path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "dir ")
	if err != nil || !ok {
		t.Fatalf("helper printed %q (%v)", line, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "repository.config")); err != nil {
		t.Fatalf("the killed process's directory is not there to sweep: %v", err)
	}

	r, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), configDirPrefix+"*"))
	if len(left) != 0 {
		t.Errorf("left after Close: %v", left)
	}
}
