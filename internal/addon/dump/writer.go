package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/repository"
)

// Writer is the addon.Writer of a step: each call stores one snapshot in
// the repository repo yields, with the backup options it was made with
// (the call's host replacing theirs when given). It keeps the stats of
// every snapshot it committed, for the step's result and its retention.
type Writer struct {
	repo Repo
	bo   repository.BackupOptions

	mu    sync.Mutex
	taken []repository.SnapshotStats
}

var _ addon.Writer = (*Writer)(nil)

// NewWriter returns a Writer into repo; bo.Host is the default host.
func NewWriter(repo Repo, bo repository.BackupOptions) *Writer {
	return &Writer{repo: repo, bo: bo}
}

// Taken returns the stats of the snapshots committed so far, in order.
func (w *Writer) Taken() []repository.SnapshotStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]repository.SnapshotStats(nil), w.taken...)
}

func (w *Writer) options(host string) repository.BackupOptions {
	o := w.bo
	if host != "" {
		o.Host = host
	}
	return o
}

func (w *Writer) add(st *repository.SnapshotStats) {
	w.mu.Lock()
	w.taken = append(w.taken, *st)
	w.mu.Unlock()
}

// Commands implements addon.Writer with StreamSeq.
func (w *Writer) Commands(ctx context.Context, host, name string, cmds ...func(context.Context) *exec.Cmd) error {
	if len(cmds) == 0 {
		return fmt.Errorf("backup of %s: no dump command", name)
	}
	st, err := StreamSeq(ctx, w.repo, name, cmds, w.options(host))
	if err != nil {
		return err
	}
	w.add(st)
	return nil
}

// errStreamAborted ends a producer whose snapshot failed.
var errStreamAborted = errors.New("the snapshot being written failed")

// PipeFrom runs write on a goroutine of its own into a pipe and returns
// the pipe's reader. wait stops write if it is still writing (its reader
// gave up) and returns write's error; it may be called more than once.
func PipeFrom(write func(io.Writer) error) (r io.Reader, wait func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err) // nil: the reader sees EOF
		done <- err
	}()
	var (
		once sync.Once
		werr error
	)
	return pr, func() error {
		once.Do(func() {
			pr.CloseWithError(errStreamAborted)
			werr = <-done
		})
		return werr
	}
}

// Stream implements addon.Writer: produce writes into a pipe the
// repository reads, and the snapshot is committed only when produce
// returned nil after the whole stream was read.
func (w *Writer) Stream(ctx context.Context, host, name string, produce func(context.Context, io.Writer) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src, wait := PipeFrom(func(pw io.Writer) error { return produce(ctx, pw) })
	bo := w.options(host)
	bo.BeforeCommit = wait
	r, err := w.repo()
	var st *repository.SnapshotStats
	if err == nil {
		st, err = r.BackupStream(ctx, name, src, bo)
	}
	// The producer may still be writing when the snapshot failed: stop
	// it, so that nothing of it outlives the call.
	cancel()
	if perr := wait(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	w.add(st)
	return nil
}

// Files implements addon.Writer: each file add is given is written
// through a pipe straight into the snapshot.
func (w *Writer) Files(ctx context.Context, host, path string, produce func(context.Context, addon.AddFile) error) error {
	r, err := w.repo()
	if err != nil {
		return err
	}
	st, err := r.BackupFiles(ctx, path, func(add repository.AddFile) error {
		return produce(ctx, func(name string, write func(io.Writer) error) error {
			src, wait := PipeFrom(write)
			err := add(name, src)
			if werr := wait(); err == nil {
				err = werr
			}
			return err
		})
	}, w.options(host))
	if err != nil {
		return err
	}
	w.add(st)
	return nil
}

// Reader is the addon.Reader of a step: Choose picks the snapshot of a
// host and file (the step's selection when host is empty), and its file
// is restored from R.
type Reader struct {
	R      repository.SnapshotReader
	Choose func(ctx context.Context, host, name string) (repository.Snapshot, error)
}

var _ addon.Reader = (*Reader)(nil)

// Stream implements addon.Reader.
func (r *Reader) Stream(ctx context.Context, host, name string, w io.Writer) error {
	s, err := r.choose(ctx, host, name)
	if err != nil {
		return err
	}
	if _, err := r.R.RestoreStream(ctx, s, name, w, nil); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", s.ShortID(), err)
	}
	return nil
}

// Files implements addon.Reader.
func (r *Reader) Files(ctx context.Context, host, path string, cmp func(a, b string) int, each func(name string, rd io.Reader) error) error {
	s, err := r.choose(ctx, host, path)
	if err != nil {
		return err
	}
	return r.R.RestoreFiles(ctx, s, cmp, each)
}

// choose is Choose, its not-found error marked as addon.ErrNoSnapshot.
func (r *Reader) choose(ctx context.Context, host, name string) (repository.Snapshot, error) {
	s, err := r.Choose(ctx, host, name)
	if errors.Is(err, repository.ErrSnapshotNotFound) {
		err = fmt.Errorf("%w (%w)", err, addon.ErrNoSnapshot)
	}
	return s, err
}
