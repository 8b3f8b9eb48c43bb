package dump

import (
	"github.com/stash-backup/stash/internal/repository/location"

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
		a := newAheadReader(iotest.HalfReader(bytes.NewReader(data)), block, 3, 8)
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
	a := newAheadReader(io.MultiReader(bytes.NewReader(data[:5000]), iotest.ErrReader(boom)), 1024, 2, 4)
	if _, err := io.ReadAll(a); !errors.Is(err, boom) {
		t.Fatalf("source error: got %v, want %v", err, boom)
	}
	// Close while the filler waits for room: it must return, not leak.
	a = newAheadReader(bytes.NewReader(data), 1024, 2, 4)
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
		Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}},
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

// TestRepositoryAskedAfterToolStarted: the repository is asked for only
// once the dump tool runs, so that opening it never delays the tool's
// start; a tool that cannot start still gets its error reported.
func TestRepositoryAskedAfterToolStarted(t *testing.T) {
	ctx := context.Background()
	r := openRepo(t)
	var cmd *exec.Cmd
	newCmd := func(ctx context.Context) *exec.Cmd {
		cmd = exec.CommandContext(ctx, "sh", "-c", "echo dumped")
		return cmd
	}
	asked := 0
	repo := func() (*repository.Repository, error) {
		asked++
		if cmd == nil || cmd.Process == nil {
			return nil, errors.New("repository asked for before the dump tool started")
		}
		return r, nil
	}
	if _, err := Stream(ctx, repo, "dump.sql", newCmd, repository.BackupOptions{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if asked != 1 {
		t.Fatalf("repository asked for %d times, want 1", asked)
	}
	missing := func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, filepath.Join(t.TempDir(), "no-such-dump-tool"))
	}
	_, err := Stream(ctx, Ready(r), "dump.sql", missing, repository.BackupOptions{Host: "h"})
	if err == nil || !strings.Contains(err.Error(), "no-such-dump-tool") {
		t.Fatalf("got %v, want the tool's start error", err)
	}
}

// TestOpenOnce: the repository opens on the first Get only, Close closes
// what was opened, and Close before any Get opens nothing.
func TestOpenOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "repo")
	opens := 0
	open := func() (*repository.Repository, error) {
		opens++
		return repository.OpenOrInit(ctx, repository.Options{
			Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: path}},
			Password: "pw",
		})
	}
	o := NewOpenOnce(open)
	r1, err := o.Get()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := o.Get()
	if err != nil || r1 != r2 || opens != 1 {
		t.Fatalf("second Get: %v, same repository %v, %d opens; want one open", err, r1 == r2, opens)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	unused := NewOpenOnce(open)
	if err := unused.Close(ctx); err != nil {
		t.Fatalf("Close before Get: %v", err)
	}
	if r, err := unused.Get(); err == nil || r != nil || opens != 1 {
		t.Fatalf("Get after Close: %v, %v, %d opens; want an error and no open", r, err, opens)
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

// TestNoOutputError: only a dump that failed before writing a byte is a
// NoOutputError, the kind BackupWhenReady retries once the server answers.
func TestNoOutputError(t *testing.T) {
	ctx := context.Background()
	r := openRepo(t)
	for _, tc := range []struct {
		script   string
		noOutput bool
	}{
		{"echo 'could not connect to server' >&2; exit 2", true},
		{"printf x; echo 'connection lost' >&2; exit 2", false},
		{"exit 0", false}, // an empty dump that succeeded is a snapshot
	} {
		newCmd := func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, "sh", "-c", tc.script) }
		_, err := Stream(ctx, Ready(r), "dump.sql", newCmd, repository.BackupOptions{Host: "h"})
		var noOutput *NoOutputError
		if got := errors.As(err, &noOutput); got != tc.noOutput {
			t.Errorf("%q: NoOutputError %v, want %v (err %v)", tc.script, got, tc.noOutput, err)
		}
		if noOutput != nil && !strings.Contains(err.Error(), "could not connect to server") {
			t.Errorf("%q: message %q lost the tool's stderr", tc.script, err)
		}
	}
	// The open error of the repository is no NoOutputError, even though
	// the dump had not written anything by then.
	_, err := Stream(ctx, func() (*repository.Repository, error) { return nil, errors.New("storage unreachable") },
		"dump.sql", func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, "sh", "-c", "sleep 5") },
		repository.BackupOptions{Host: "h"})
	var noOutput *NoOutputError
	if errors.As(err, &noOutput) {
		t.Errorf("open failure reported as NoOutputError: %v", err)
	}
}

func TestBackupWhenReady(t *testing.T) {
	ok := &repository.SnapshotStats{Name: "s1"}
	refused := &NoOutputError{Err: errors.New("mysqldump failed: Can't connect to server")}
	denied := &NoOutputError{Err: errors.New("mysqldump failed: Access denied")}
	truncated := errors.New("mysqldump failed after 3 MiB: Lost connection")
	notReady := errors.New("MySQL at db:3306 not ready after 2s (--wait-timeout)")
	type result struct {
		st  *repository.SnapshotStats
		err error
	}
	for _, tc := range []struct {
		name     string
		backups  []result // what each call of backup returns, in order
		waitErr  error
		want     result
		calls    int
		waitCall bool
	}{
		{"server up", []result{{ok, nil}}, nil, result{ok, nil}, 1, false},
		{"server starting", []result{{nil, refused}, {ok, nil}}, nil, result{ok, nil}, 2, true},
		{"server never comes", []result{{nil, refused}}, notReady, result{nil, notReady}, 1, true},
		{"failure after output is not retried", []result{{nil, truncated}}, nil, result{nil, truncated}, 1, false},
		{"a real error fails twice", []result{{nil, denied}, {nil, denied}}, nil, result{nil, denied}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, waited := 0, false
			st, err := BackupWhenReady(context.Background(),
				func(context.Context) error { waited = true; return tc.waitErr },
				func(context.Context) (*repository.SnapshotStats, error) {
					if calls >= len(tc.backups) {
						t.Fatalf("backup called %d times", calls+1)
					}
					r := tc.backups[calls]
					calls++
					return r.st, r.err
				})
			if st != tc.want.st || !errors.Is(err, tc.want.err) {
				t.Errorf("got %v, %v; want %v, %v", st, err, tc.want.st, tc.want.err)
			}
			if calls != tc.calls || waited != tc.waitCall {
				t.Errorf("backup called %d times (want %d), waited %v (want %v)", calls, tc.calls, waited, tc.waitCall)
			}
		})
	}
}

// TestAheadReaderReusesBlocks: when the reader keeps up with the source,
// a returned block is reused before a new one is made (fresh memory costs
// a page fault per page), so a long dump touches a few blocks, not all.
func TestAheadReaderReusesBlocks(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 64<<10)
	a := newAheadReader(slowReader{iotest.HalfReader(bytes.NewReader(data))}, 1024, 16, 16)
	defer a.Close()
	seen := map[*byte]bool{}
	buf := make([]byte, 1024)
	for {
		n, err := a.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && a.curBuf != nil {
			seen[&a.curBuf[:1][0]] = true
		}
	}
	if len(seen) > 3 {
		t.Errorf("%d distinct blocks for 64 blocks from a slow source, want reuse", len(seen))
	}
}

// slowReader is a dump tool slower than its reader.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	return s.r.Read(p)
}

// TestLargeStdout: a dump tool that writes through the C library's stdio
// (as mysqldump and pg_dump do) writes its output in 1 MiB writes, not the
// 4 KiB glibc gives a pipe, and the output is unchanged.
func TestLargeStdout(t *testing.T) {
	if stdbuf() == "" {
		t.Skip("no stdbuf (coreutils) on this machine")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace to count the tool's writes")
	}
	// awk writes each line through stdio, like a dump tool.
	script := `BEGIN { for (i = 0; i < 200000; i++) printf "INSERT INTO t VALUES (%d, 'row');\n", i }`
	var want bytes.Buffer
	ref := exec.Command("awk", script)
	ref.Stdout = &want
	if err := ref.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env       string
		maxWrites int
	}{{"", 20}, {"STASH_DUMP_STDBUF=off", 1 << 30}} {
		if k, v, ok := strings.Cut(tc.env, "="); ok {
			t.Setenv(k, v) // the opt-out; stays set for the later cases
		}
		trace := filepath.Join(t.TempDir(), "trace")
		cmd := exec.Command("awk", script)
		largeStdio(cmd, "-o")
		cmd.Args = append([]string{"strace", "-f", "-e", "trace=write", "-o", trace, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, _ = exec.LookPath("strace")
		pr, pw, err := newOutputPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		got, err := io.ReadAll(pr)
		pr.Close()
		if werr := cmd.Wait(); werr != nil || err != nil {
			t.Fatal(werr, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%q: output differs (%d bytes, want %d)", tc.env, len(got), want.Len())
		}
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		writes := strings.Count(string(b), "write(1,")
		if tc.env == "" && writes > tc.maxWrites {
			t.Errorf("%d writes for %d bytes under stdbuf, want at most %d", writes, len(got), tc.maxWrites)
		}
		if tc.env != "" && writes < len(got)/8192 {
			t.Errorf("without stdbuf: %d writes for %d bytes; the test does not see the C library's small buffer", writes, len(got))
		}
	}
}

// TestLargeStdin: a client started by StartWithStdin that reads through
// stdio (as psql does; sed here) reads a restore in large reads, not 4 KiB
// ones, and gets every byte.
func TestLargeStdin(t *testing.T) {
	for _, tool := range []string{"stdbuf", "strace", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on this machine", tool)
		}
	}
	data := bytes.Repeat([]byte("INSERT INTO t VALUES (1, 'a row of a restore');\n"), 60_000) // 2.9 MB
	trace := filepath.Join(t.TempDir(), "trace")
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("strace", "-f", "-e", "trace=read", "-o", trace, "sed", "-n", "w "+out)
	stdin, err := StartWithStdin(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(data); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatalf("the client got %d bytes, want the %d written", len(got), len(data))
	}
	b, _ := os.ReadFile(trace)
	// 4 KiB reads would be over 700.
	if reads := strings.Count(string(b), "read(0,"); reads > 100 {
		t.Errorf("%d reads of stdin for %d bytes, want large reads", reads, len(data))
	}
}
