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
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

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

// Stream runs the dump command made by newCmd (with a context it cancels
// on failure) and stores its stdout as the file name. The snapshot is
// committed only after the command exits 0: a failed or truncated dump
// never becomes a snapshot.
func Stream(ctx context.Context, r *repository.Repository, name string, newCmd func(context.Context) *exec.Cmd, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	dumpCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := newCmd(dumpCtx)
	tool := filepath.Base(cmd.Path)
	stderr := &Tail{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", tool, err)
	}
	waited := false
	bo.BeforeCommit = func() error {
		waited = true
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s failed: %v: %s", tool, err, stderr.String())
		}
		return nil
	}
	stats, err := r.BackupStream(ctx, name, stdout, bo)
	if !waited {
		cancel()
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("%s failed: %v: %s", tool, werr, stderr.String())
		}
	}
	if err != nil {
		return nil, err
	}
	return stats, nil
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
func (l *Lines) Quote(stderr string, lineRE *regexp.Regexp) string {
	m := lineRE.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	if s, ok := l.At(n); ok {
		return fmt.Sprintf(" (dump line %d: %s)", n, s)
	}
	return ""
}

// StreamSeq runs several dump commands one after the other and stores
// their concatenated stdout as the file name, as Stash's multiDumpArgs
// joins its dumps with &&: a failing command stops the rest, and the
// snapshot is committed only when every command exited 0.
func StreamSeq(ctx context.Context, r *repository.Repository, name string, newCmds []func(context.Context) *exec.Cmd, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	if len(newCmds) == 1 {
		return Stream(ctx, r, name, newCmds[0], bo)
	}
	dumpCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		for i, nc := range newCmds {
			cmd := nc(dumpCtx)
			tail := &Tail{}
			cmd.Stdout, cmd.Stderr = pw, tail
			if rerr := cmd.Run(); rerr != nil {
				err = fmt.Errorf("%s (dump %d of %d) failed: %v: %s", filepath.Base(cmd.Path), i+1, len(newCmds), rerr, tail.String())
				break
			}
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
		done <- err
	}()
	var result error
	waited := false
	bo.BeforeCommit = func() error {
		waited = true
		result = <-done
		return result
	}
	stats, err := r.BackupStream(ctx, name, pr, bo)
	if !waited {
		cancel()
		_ = pr.CloseWithError(errors.New("backup stopped"))
		if derr := <-done; err == nil && derr != nil {
			err = derr
		}
	}
	if err != nil {
		return nil, err
	}
	return stats, nil
}
