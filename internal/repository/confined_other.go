//go:build !unix

package repository

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/restore"
)

// confinedOutput is kopia's FilesystemOutput with a check, before every
// write, that no directory between the target and the entry is a symlink
// or reparse point. Unlike the unix output it is not race-free: a symlink
// made by another process between check and write is followed.
type confinedOutput struct {
	*restore.FilesystemOutput
	rootPath string
	// written, when set, records the files put in place through
	// commitFile (hardlinks.go); kopia's own WriteFile records none, so
	// hard links are restored as copies here.
	written *writtenFiles
}

func newConfinedOutput(target string, skipRootAttrs bool) (*confinedOutput, error) {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("create restore target: %w", err)
	}
	out := &restore.FilesystemOutput{
		TargetPath: target, OverwriteDirectories: true, OverwriteFiles: true, OverwriteSymlinks: true,
		WriteFilesAtomically: true, IgnorePermissionErrors: true,
	}
	if err := out.Init(context.Background()); err != nil {
		return nil, fmt.Errorf("prepare restore target %s: %w", target, err)
	}
	_ = skipRootAttrs // RestoreTree restores the target's mode itself here
	return &confinedOutput{FilesystemOutput: out, rootPath: target}, nil
}

// setSparse makes files written from now on keep their all-zero blocks
// as holes.
func (o *confinedOutput) setSparse(on bool) { o.FilesystemOutput.WriteSparseFiles = on }

// check refuses rel when a directory on its way is a symlink, or when
// rel itself is a symlink and mustNotLink is set.
func (o *confinedOutput) check(rel string, mustNotLink bool) error {
	parts := strings.Split(rel, "/")
	cur := o.rootPath
	for i, p := range parts {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("path component %q of %s: %w", p, rel, ErrUnsafeEntry)
		}
		cur = filepath.Join(cur, p)
		last := i == len(parts)-1
		st, err := os.Lstat(cur)
		if err != nil {
			return nil // not there yet: created below, as a directory or file
		}
		if st.Mode()&os.ModeSymlink != 0 && (!last || mustNotLink) {
			return fmt.Errorf("%s in restore target %s: a directory on its path is a symlink; a restore never writes through one (remove it, or restore into an empty directory)", rel, o.rootPath)
		}
	}
	return nil
}

// BeginDirectory implements restore.Output.
func (o *confinedOutput) BeginDirectory(ctx context.Context, rel string, e fs.Directory) error {
	rel, err := rawPath(rel)
	if err != nil {
		return err
	}
	if rel != "" {
		if err := o.check(rel, true); err != nil {
			return err
		}
	}
	return o.FilesystemOutput.BeginDirectory(ctx, rel, e)
}

// WriteFile implements restore.Output.
func (o *confinedOutput) WriteFile(ctx context.Context, rel string, f fs.File, cb restore.FileWriteProgress) error {
	rel, err := rawPath(rel)
	if err != nil {
		return err
	}
	if err := o.check(rel, false); err != nil {
		return err
	}
	return o.FilesystemOutput.WriteFile(ctx, rel, f, cb)
}

// CreateSymlink implements restore.Output.
func (o *confinedOutput) CreateSymlink(ctx context.Context, rel string, e fs.Symlink) error {
	rel, err := rawPath(rel)
	if err != nil {
		return err
	}
	if err := o.check(rel, false); err != nil {
		return err
	}
	return o.FilesystemOutput.CreateSymlink(ctx, rel, e)
}

// FinishDirectory implements restore.Output.
func (o *confinedOutput) FinishDirectory(ctx context.Context, rel string, e fs.Directory) error {
	rel, err := rawPath(rel)
	if err != nil {
		return err
	}
	return o.FilesystemOutput.FinishDirectory(ctx, rel, e)
}

// tempFile is a file being restored under a temporary name beside its
// entry's. Its descriptor may be closed between writes and reopened.
type tempFile struct {
	rel, path, tmp string
	f              *os.File
}

func (o *confinedOutput) createFile(rel string) (*tempFile, error) {
	rel, err := rawPath(rel)
	if err != nil {
		return nil, err
	}
	if err := o.check(rel, false); err != nil {
		return nil, err
	}
	p := filepath.Join(o.rootPath, filepath.FromSlash(rel))
	f, err := os.CreateTemp(filepath.Dir(p), ".stash-restore-*")
	if err != nil {
		return nil, fmt.Errorf("create %s in %s: %w", rel, o.rootPath, err)
	}
	return &tempFile{rel: rel, path: p, tmp: f.Name(), f: f}, nil
}

func (o *confinedOutput) reopenFile(t *tempFile) error {
	if t.f != nil {
		return nil
	}
	f, err := os.OpenFile(t.tmp, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reopen %s in %s: %w", t.rel, o.rootPath, err)
	}
	t.f = f
	return nil
}

func (o *confinedOutput) commitFile(t *tempFile, e fs.Entry) error {
	if err := o.closeFile(t); err != nil {
		return err
	}
	if err := o.check(t.rel, false); err != nil {
		return err
	}
	os.Chmod(t.tmp, e.Mode()&fs.ModBits) //nolint:errcheck
	if err := os.Rename(t.tmp, t.path); err != nil {
		return fmt.Errorf("put %s in place in %s: %w", t.rel, o.rootPath, err)
	}
	t.tmp = ""
	os.Chtimes(t.path, e.ModTime(), e.ModTime()) //nolint:errcheck
	if o.written != nil {
		o.written.add(t.rel)
	}
	return nil
}

func (o *confinedOutput) discardFile(t *tempFile) {
	o.closeFile(t) //nolint:errcheck
	if t.tmp != "" {
		os.Remove(t.tmp) //nolint:errcheck
		t.tmp = ""
	}
}

// flush does nothing here: files are not flushed as they go.
func (o *confinedOutput) flush() error { return nil }
