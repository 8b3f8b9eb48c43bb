package dump

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"

	"github.com/stash-backup/stash/internal/repository"
)

func TestAheadReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB
	for _, block := range []int{1, 1000, 1 << 20, 4 << 20} {
		a := newAheadReader(iotest.HalfReader(bytes.NewReader(data)), block, 3)
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(a, 10)))
		if err != nil || string(got) != string(data[:10]) {
			t.Fatalf("block %d: first bytes %q, %v", block, got, err)
		}
		rest, err := io.ReadAll(a)
		if err != nil || !bytes.Equal(append(got, rest...), data) {
			t.Fatalf("block %d: read %d bytes (%v), want the %d written", block, len(got)+len(rest), err, len(data))
		}
		a.Close()
	}
	boom := errors.New("pipe broke")
	a := newAheadReader(io.MultiReader(bytes.NewReader(data[:5000]), iotest.ErrReader(boom)), 1024, 2)
	if _, err := io.ReadAll(a); !errors.Is(err, boom) {
		t.Fatalf("source error: got %v, want %v", err, boom)
	}
	// Close while the filler waits for room: it must return, not leak.
	a = newAheadReader(bytes.NewReader(data), 1024, 2)
	a.Close()
	select {
	case <-drained(a):
	case <-time.After(5 * time.Second):
		t.Fatal("filler still running after Close")
	}
}

// drained is closed when the filler goroutine has stopped.
func drained(a *aheadReader) chan struct{} {
	c := make(chan struct{})
	go func() {
		for range a.full {
		}
		close(c)
	}()
	return c
}

func openRepo(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	o := repository.Options{
		Location: &repository.Location{Kind: repository.BackendLocal, Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}},
		Password: "pw",
	}
	r, err := repository.OpenOrInit(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	return r
}

// TestDumpRunsWhileRepositoryOpens: the dump tool writes several MiB (far
// more than a pipe holds) before the repository is handed over, which only
// works if its output is read ahead; then everything lands in the snapshot.
func TestDumpRunsWhileRepositoryOpens(t *testing.T) {
	ctx := context.Background()
	r := openRepo(t)
	marker := filepath.Join(t.TempDir(), "dumped")
	const size = 6 << 20
	newCmd := func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", "head -c 6291456 /dev/urandom && touch "+marker)
	}
	opening := func() (*repository.Repository, error) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(marker); err == nil {
				return r, nil
			}
			if time.Now().After(deadline) {
				return nil, errors.New("the dump did not finish while the repository was opening: output not read ahead")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	st, err := Stream(ctx, opening, "dump.bin", newCmd, repository.BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalBytes != size {
		t.Fatalf("snapshot holds %d bytes, want %d", st.TotalBytes, size)
	}
}

// TestOpenFailureStopsDump: when the repository cannot be opened, the dump
// is stopped and the open error is what the step reports.
func TestOpenFailureStopsDump(t *testing.T) {
	ctx := context.Background()
	newCmd := func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", "exec cat /dev/zero")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Stream(ctx, func() (*repository.Repository, error) {
			return nil, errors.New("wrong repository password (RESTIC_PASSWORD)")
		}, "dump.bin", newCmd, repository.BackupOptions{Host: "h"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "RESTIC_PASSWORD") {
			t.Fatalf("got %v, want the open error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stream hangs after the repository failed to open")
	}
}

// TestFailedDumpNoSnapshot: a dump that exits non-zero after writing
// leaves no snapshot, with the read-ahead in between.
func TestFailedDumpNoSnapshot(t *testing.T) {
	ctx := context.Background()
	r := openRepo(t)
	newCmd := func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", "head -c 3000000 /dev/urandom; echo 'server closed the connection' >&2; exit 3")
	}
	_, err := Stream(ctx, Ready(r), "dump.bin", newCmd, repository.BackupOptions{Host: "h"})
	if err == nil || !strings.Contains(err.Error(), "server closed the connection") {
		t.Fatalf("got %v, want the dump's failure with its stderr", err)
	}
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after a failed dump: %v, %v", snaps, err)
	}
}

// TestNoOrphanWriter: a dump tool's child that holds the pipe (as
// pg_dumpall's pg_dump does) does not outlive a failed backup, and does not
// keep it waiting.
func TestNoOrphanWriter(t *testing.T) {
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "pid")
	newCmd := func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "sh", "-c", "cat /dev/zero & echo $! > "+pidFile+"; wait")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Stream(ctx, func() (*repository.Repository, error) {
			time.Sleep(200 * time.Millisecond) // the child is writing by now
			return nil, errors.New("storage unreachable")
		}, "dump.bin", newCmd, repository.BackupOptions{Host: "h"})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "storage unreachable") {
			t.Fatalf("got %v, want the open error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stream hangs while a child of the dump tool holds the pipe")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := syscall.Kill(pid, 0); err != nil {
			return // gone
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the dump tool's child %d still runs after the backup failed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
