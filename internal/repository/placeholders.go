package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/snapshot"
)

// kopia's local filesystem takes every entry whose name ends in
// ".kopia-entry" for the placeholder of a shallow restore: it drops the
// suffix from the name, and kopia's uploader stores whatever entry the
// file's content describes (any object of the repository it names) in
// place of the file. In a tree being backed up such a name is the user's
// own file, and its content is input to distrust: a file of that name
// failed the whole backup, and a crafted one could have put into the
// snapshot an object its writer may not read. A directory backup lists
// such entries itself (plainEntryAt) and stores them as what they are.

// isPlaceholder tells whether kopia's local filesystem took e for a
// placeholder, or may have (an entry it could not type).
func isPlaceholder(e fs.Entry) bool {
	if _, ok := e.(*printedDir); ok {
		return false
	}
	if _, ok := e.(snapshot.HasDirEntryOrNil); ok {
		return true
	}
	_, ok := e.(fs.ErrorEntry)
	return ok
}

// plainEntries lists the directory at dir as kopia's local filesystem
// would, but with entries named *.kopia-entry as what they are.
func plainEntries(ctx context.Context, dir string) ([]fs.Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unable to read directory: %w", err)
	}
	out := make([]fs.Entry, 0, len(des))
	for _, de := range des {
		e, err := plainChild(ctx, dir, de.Name())
		if errors.Is(err, fs.ErrEntryNotFound) {
			continue // gone since the listing, as kopia's listing skips it
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// plainChild is the entry name of the directory at dir.
func plainChild(_ context.Context, dir, name string) (fs.Entry, error) {
	p := filepath.Join(dir, name)
	if !strings.HasSuffix(name, localfs.ShallowEntrySuffix) {
		e, err := localfs.NewEntry(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fs.ErrEntryNotFound
		}
		return e, err
	}
	return plainEntryAt(p)
}

// plainEntryAt is the entry at path, typed by its mode alone.
func plainEntryAt(path string) (fs.Entry, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fs.ErrEntryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("error reading directory: %w", err)
	}
	m := plainMeta{FileInfo: fi, path: path}
	switch {
	case fi.IsDir():
		return &plainDir{m}, nil
	case fi.Mode().IsRegular():
		return &plainFile{m}, nil
	case fi.Mode()&os.ModeSymlink != 0:
		return &plainSymlink{m}, nil
	}
	return &plainError{m}, nil
}

type plainMeta struct {
	os.FileInfo
	path string
}

func (m *plainMeta) Owner() fs.OwnerInfo         { return ownerOf(m.FileInfo) }
func (m *plainMeta) Device() fs.DeviceInfo       { return deviceOf(m.FileInfo) }
func (m *plainMeta) LocalFilesystemPath() string { return m.path }
func (m *plainMeta) Close()                      {}

type plainDir struct{ plainMeta }

// Size is 0, as kopia's local filesystem gives every directory.
func (d *plainDir) Size() int64 { return 0 }

func (d *plainDir) SupportsMultipleIterations() bool { return true }

func (d *plainDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	return plainChild(ctx, d.path, name)
}

func (d *plainDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	entries, err := plainEntries(ctx, d.path)
	if err != nil {
		return nil, err
	}
	return fs.StaticIterator(entries, nil), nil
}

type plainFile struct{ plainMeta }

func (f *plainFile) Open(context.Context) (fs.Reader, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("unable to open local file: %w", err)
	}
	return &plainReader{File: file, path: f.path}, nil
}

type plainReader struct {
	*os.File
	path string
}

func (r *plainReader) Entry() (fs.Entry, error) {
	fi, err := r.Stat()
	if err != nil {
		return nil, fmt.Errorf("unable to stat() local file: %w", err)
	}
	return &plainFile{plainMeta{FileInfo: fi, path: r.path}}, nil
}

type plainSymlink struct{ plainMeta }

func (s *plainSymlink) Readlink(context.Context) (string, error) {
	return os.Readlink(s.path)
}

func (s *plainSymlink) Resolve(context.Context) (fs.Entry, error) {
	target, err := filepath.EvalSymlinks(s.path)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve symlink for %q: %w", s.path, err)
	}
	return localfs.NewEntry(target)
}

// plainError is an entry of a kind kopia does not store (a socket, a
// FIFO, a device), as kopia's local filesystem reports one.
type plainError struct{ plainMeta }

func (e *plainError) ErrorInfo() error { return fs.ErrUnknown }

var (
	_ fs.Directory  = (*plainDir)(nil)
	_ fs.File       = (*plainFile)(nil)
	_ fs.Symlink    = (*plainSymlink)(nil)
	_ fs.ErrorEntry = (*plainError)(nil)
)
