// Package dump holds what every database driver does the same way: run a
// dump tool and stream its stdout into a repository, committing the
// snapshot only when the tool exits 0, and keep the tail of a tool's
// stderr for error messages.
package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stash-backup/stash/internal/affinity"
	"github.com/stash-backup/stash/internal/repository"
)

// Tail keeps the last bytes written to it.
type Tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

// Write implements io.Writer.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = t.buf[len(t.buf)-tailSize:]
	}
	return len(p), nil
}

// String returns what was kept, trimmed.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Repo yields the repository a dump goes into. Stream asks for it only
// once the dump tool has started: opening derives the repository's key,
// which takes long enough for the tool to dump a good part of a small
// database, and an open already under way slows the tool's start
// (docs/benchmarks-history.md). A Repo that opens on its first call (OpenOnce)
// therefore opens while the tool dumps.
type Repo func() (*repository.Repository, error)

// OpenOnce is a Repo that calls open on its first call and returns the
// same result on every call. Close closes what it opened.
type OpenOnce struct {
	once sync.Once
	open func() (*repository.Repository, error)
	r    *repository.Repository
	err  error
}

// NewOpenOnce returns an OpenOnce that will open with open.
func NewOpenOnce(open func() (*repository.Repository, error)) *OpenOnce {
	return &OpenOnce{open: open}
}

// Get opens the repository the first time it is called.
func (o *OpenOnce) Get() (*repository.Repository, error) {
	o.once.Do(func() { o.r, o.err = o.open() })
	return o.r, o.err
}

// Close closes the repository if Get opened it; a Get after Close fails.
func (o *OpenOnce) Close(ctx context.Context) error {
	o.once.Do(func() { o.err = errors.New("repository closed before it was opened") })
	if o.r == nil {
		return nil
	}
	return o.r.Close(ctx)
}

// Ready is the Repo of an already open repository.
func Ready(r *repository.Repository) Repo {
	return func() (*repository.Repository, error) { return r, nil }
}

// Stream runs the dump command made by newCmd (with a context it cancels
// on failure) and stores its stdout as the file name. The command starts
// before the repository is asked for (repo); its output waits in a bounded
// buffer while the repository opens.
// The snapshot is committed only after the command exits 0: a failed or
// truncated dump never becomes a snapshot.
func Stream(ctx context.Context, repo Repo, name string, newCmd func(context.Context) *exec.Cmd, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	return StreamSeq(ctx, repo, name, []func(context.Context) *exec.Cmd{newCmd}, bo)
}

// batchReader sleeps briefly after a short read, so that the next read of
// the pipe finds a batch instead of the few KiB a dump tool writes at a
// time. The pause is short against what a 1 MiB pipe buffer holds of a
// fast dump, so the tool never waits for it.
type batchReader struct{ r io.Reader }

const (
	batchShort = 256 << 10
	batchPause = time.Millisecond
)

func (b batchReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == nil && n < batchShort && n < len(p) {
		time.Sleep(batchPause)
	}
	return n, err
}

// Lines remembers the most recent lines fed to a database client, by
// number, so that an error naming a line can quote the statement. It keeps
// the first bytes of each line in a fixed ring, without allocating per line.
type Lines struct {
	n    int
	ring [keepLines]struct {
		n int
		b []byte
	}
}

const (
	keepLines   = 2000
	maxLineKept = 500
)

// Add records the next line (without its newline).
func (l *Lines) Add(line []byte) {
	l.n++
	slot := &l.ring[l.n%keepLines]
	slot.n = l.n
	slot.b = append(slot.b[:0], line[:min(len(line), maxLineKept)]...)
}

// At returns line n, if it is still kept.
func (l *Lines) At(n int) (string, bool) {
	if n <= 0 {
		return "", false
	}
	slot := l.ring[n%keepLines]
	if slot.n != n {
		return "", false
	}
	return string(slot.b), true
}

// Quote finds the line number lineRE captures in a client's error output
// and returns " (dump line N: statement)", or "" when the line is unknown.
// Only the statement's head is quoted (Redact): the quote
// goes into the session's status, events and output.json, and a failing
// line may be a role's password hash (pg_dumpall's ALTER ROLE … PASSWORD,
// mysqldump's mysql.global_priv rows) or a row of the user's data.
func (l *Lines) Quote(stderr string, lineRE *regexp.Regexp) string {
	m := lineRE.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	if s, ok := l.At(n); ok {
		return fmt.Sprintf(" (dump line %d: %s)", n, Redact(s))
	}
	return ""
}

// Redact shortens a dump's statement to what names it: the text before its
// first string literal and before the rows of an INSERT, then "…". Where a
// literal ends cannot be told from one line (a backslash escapes a quote in
// MySQL, not in PostgreSQL), so nothing after the first quote is kept.
func Redact(stmt string) string {
	cut := len(stmt)
	if i := strings.IndexByte(stmt, '\''); i >= 0 {
		cut = i + 1
	}
	if i := strings.Index(stmt, " VALUES "); i >= 0 && i+len(" VALUES") < cut {
		cut = i + len(" VALUES ")
	}
	if cut == len(stmt) {
		return stmt
	}
	return stmt[:cut] + "…"
}

// StreamSeq runs several dump commands one after the other and stores
// their concatenated stdout as the file name, as Stash's multiDumpArgs
// joins its dumps with &&: a failing command stops the rest, and the
// snapshot is committed only when every command exited 0.
func StreamSeq(ctx context.Context, repo Repo, name string, newCmds []func(context.Context) *exec.Cmd, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	dumpCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw, err := newOutputPipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for the dump: %w", err)
	}
	// Closed last: a dump tool's own children (pg_dumpall's pg_dump) may
	// outlive a killed parent and get EPIPE only from this close.
	defer pr.Close()
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		err := runSeq(dumpCtx, newCmds, pw, started)
		pw.Close() // the reader sees EOF once every writer is gone
		done <- err
	}()
	ahead := newAheadReader(batchReader{pr}, aheadBlock, aheadRaw, aheadItems)
	defer ahead.Close()
	waited := false
	var dumpErr error
	bo.BeforeCommit = func() error {
		waited = true
		dumpErr = <-done
		return dumpErr
	}
	var stats *repository.SnapshotStats
	<-started
	r, err := repo()
	if err == nil {
		stats, err = r.BackupStream(ctx, name, ahead, bo)
	}
	if !waited {
		cancel()
		ahead.Close()
		// A child of the killed tool may still write (and hold its stderr
		// open, which Wait waits for): closing the read end stops it.
		pr.Close()
		if derr := <-done; err == nil && derr != nil {
			err = derr
		}
	}
	if err != nil {
		// BeforeCommit runs after the stream's end was read, so the
		// count is all the tool wrote.
		if dumpErr != nil && ahead.read.Load() == 0 {
			return nil, &NoOutputError{Err: err}
		}
		return nil, err
	}
	return stats, nil
}

// NoOutputError is a dump that failed before writing anything, as a dump
// tool does when it cannot connect: nothing of it reached the repository.
type NoOutputError struct{ Err error }

func (e *NoOutputError) Error() string { return e.Err.Error() }
func (e *NoOutputError) Unwrap() error { return e.Err }

// BackupWhenReady runs backup at once, without asking the server first
// whether it is up: it almost always is, and asking took a client process
// before every dump, a noticeable share of a small backup
// (docs/benchmarks-history.md). A dump that failed before writing anything
// (NoOutputError) may have found the server still starting, so wait, which
// polls the server until it answers or its timeout passes, runs then, and
// the backup once more if the server answered. That second try is also
// made when the server was up all along, since it may have come up only
// after the first try failed; a dump failing for another reason (a wrong
// password) fails the same way twice.
func BackupWhenReady(ctx context.Context, wait func(context.Context) error, backup func(context.Context) (*repository.SnapshotStats, error)) (*repository.SnapshotStats, error) {
	st, err := backup(ctx)
	var noOutput *NoOutputError
	if !errors.As(err, &noOutput) {
		return st, err
	}
	if werr := wait(ctx); werr != nil {
		return nil, werr
	}
	return backup(ctx)
}

// runSeq runs the commands in order with stdout w, stopping at the first
// failure, which it reports with the tail of the command's stderr. It
// closes started once the first command has started or failed to.
func runSeq(ctx context.Context, newCmds []func(context.Context) *exec.Cmd, w *os.File, started chan<- struct{}) error {
	var once sync.Once
	signal := func() { once.Do(func() { close(started) }) }
	defer signal()
	for i, nc := range newCmds {
		cmd := nc(ctx)
		tool := filepath.Base(cmd.Path)
		if len(newCmds) > 1 {
			tool = fmt.Sprintf("%s (dump %d of %d)", tool, i+1, len(newCmds))
		}
		largeStdio(cmd, "-o")
		stderr := &Tail{}
		cmd.Stdout, cmd.Stderr = w, stderr
		// Bounds the wait for a child of the tool that keeps stderr open
		// after the tool is gone.
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", tool, err)
		}
		// A tool that computes all the time (mysqldump) is the backup's
		// critical path: asked to (STASH_AFFINITY=on), the data mover
		// keeps off its CPU while it runs.
		stopAvoiding := func() {}
		if affinity.Enabled() {
			stopAvoiding = affinity.Avoid(cmd.Process.Pid)
		}
		signal()
		err := cmd.Wait()
		stopAvoiding()
		if err != nil {
			return fmt.Errorf("%s failed: %v: %s", tool, err, RedactTail(stderr.String()))
		}
	}
	return nil
}

// stdioBuffer is the stdio buffer a dump tool writes its output with, and
// a database client reads a restore with. The C library gives a pipe
// 4 KiB: mysqldump made 125 000 writes for a 490 MiB dump, and writing
// into a pipe took it 1.4 times as long as writing to /dev/null, on the
// virtual machines backups run on, where a system call is expensive
// (docs/benchmarks.md). With 1 MiB, the size of the pipe, it took as long
// as into /dev/null; psql reading a restore from a pipe spent half the
// system time.
const stdioBuffer = "1M"

var stdbuf = sync.OnceValue(func() string {
	p, err := exec.LookPath("stdbuf")
	if err != nil {
		return ""
	}
	return p
})

// largeStdio makes cmd run under coreutils' stdbuf, which sets the buffer
// of the tool's stdout (flag "-o") or stdin ("-i"), and of the tools it
// starts (pg_dumpall's pg_dump), through the C library. Where stdbuf is
// missing, or the tool does not use the C library's stdio for that stream
// (the mysql client reads its input itself), the tool runs as it would:
// the buffer only changes how data moves, never what.
func largeStdio(cmd *exec.Cmd, flag string) {
	sb := stdbuf()
	if sb == "" || cmd.Err != nil || os.Getenv("STASH_DUMP_STDBUF") == "off" {
		return
	}
	cmd.Args = append([]string{"stdbuf", flag + stdioBuffer, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = sb
}

// StartWithStdin starts a database client with stdin on a pipe made by
// newPipe (large, blocking: far fewer wake-ups than os/exec's StdinPipe
// for a restore's gigabytes), read through a 1 MiB stdio buffer, and
// returns the pipe's write end, which the caller closes when done.
func StartWithStdin(cmd *exec.Cmd) (*os.File, error) {
	tool := filepath.Base(cmd.Path)
	r, w, err := newPipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for %s: %w", tool, err)
	}
	largeStdio(cmd, "-i")
	cmd.Stdin = r
	err = cmd.Start()
	r.Close() // the client has its own copy
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start %s: %w", tool, err)
	}
	return w, nil
}

// EndClient ends the input of a database client started with
// StartWithStdin, after streamErr ended the stream into it (nil when the
// whole dump was written). A stream that broke off, rather than stopped
// because the client exited, kills the client before its input closes:
// psql and mysql run a statement left unterminated at the end of their
// input, which would commit the statement or row the break cut in two.
// It then returns streamErr, after the client has exited; otherwise nil,
// and the caller waits for the client and reports its exit.
func EndClient(cmd *exec.Cmd, stdin *os.File, streamErr error) error {
	if streamErr == nil || ClientGone(streamErr) {
		stdin.Close()
		return nil
	}
	_ = cmd.Process.Kill()
	stdin.Close()
	_ = cmd.Wait()
	return fmt.Errorf("%w (the database client was stopped before it could run the statement the break cut off)", streamErr)
}

// ClientGone reports whether a write failed because the client exited
// (its own error, from Wait, is the one to report).
func ClientGone(err error) bool {
	return errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}
