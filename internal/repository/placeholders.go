package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

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
	return plainEntry(metaOfInfo(fi, path)), nil
}

// plainEntry is the entry of m, typed by its mode alone.
func plainEntry(m plainMeta) fs.Entry {
	switch {
	case m.mode.IsDir():
		return &plainDir{m}
	case m.mode.IsRegular():
		return &plainFile{refreshed{listed: m}}
	case m.mode&os.ModeSymlink != 0:
		return &plainSymlink{refreshed{listed: m}}
	}
	return &plainError{m}
}

// plainMeta is what kopia's local filesystem keeps of an entry.
type plainMeta struct {
	name  string
	mode  os.FileMode
	size  int64
	mtime int64 // nanoseconds
	owner fs.OwnerInfo
	dev   fs.DeviceInfo
	path  string
}

func metaOfInfo(fi os.FileInfo, path string) plainMeta {
	return plainMeta{
		name: fi.Name(), mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(),
		owner: ownerOf(fi), dev: deviceOf(fi), path: path,
	}
}

func (m *plainMeta) Name() string                { return m.name }
func (m *plainMeta) Mode() os.FileMode           { return m.mode }
func (m *plainMeta) Size() int64                 { return m.size }
func (m *plainMeta) ModTime() time.Time          { return time.Unix(0, m.mtime) }
func (m *plainMeta) IsDir() bool                 { return m.mode.IsDir() }
func (m *plainMeta) Sys() any                    { return nil }
func (m *plainMeta) Owner() fs.OwnerInfo         { return m.owner }
func (m *plainMeta) Device() fs.DeviceInfo       { return m.dev }
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

// refreshed is an entry whose metadata is read again when its content
// is: kopia's uploader records an entry's metadata after reading its
// content, so what it records is as close to that content as kopia's
// own listing gets, however long ago the entry was listed.
type refreshed struct {
	listed plainMeta
	now    atomic.Pointer[plainMeta]
	// changed, if set, is called when the entry is found changed since
	// it was listed.
	changed func()
}

func (r *refreshed) meta() *plainMeta {
	if m := r.now.Load(); m != nil {
		return m
	}
	return &r.listed
}

func (r *refreshed) refresh(fi os.FileInfo) {
	m := metaOfInfo(fi, r.listed.path)
	m.name = r.listed.name
	if m.mode != r.listed.mode || m.size != r.listed.size || m.mtime != r.listed.mtime ||
		m.owner != r.listed.owner {
		if r.changed != nil {
			r.changed()
		}
	}
	r.now.Store(&m)
}

func (r *refreshed) Name() string                { return r.listed.name }
func (r *refreshed) Mode() os.FileMode           { return r.meta().mode }
func (r *refreshed) Size() int64                 { return r.meta().size }
func (r *refreshed) ModTime() time.Time          { return r.meta().ModTime() }
func (r *refreshed) IsDir() bool                 { return false }
func (r *refreshed) Sys() any                    { return nil }
func (r *refreshed) Owner() fs.OwnerInfo         { return r.meta().owner }
func (r *refreshed) Device() fs.DeviceInfo       { return r.meta().dev }
func (r *refreshed) LocalFilesystemPath() string { return r.listed.path }
func (r *refreshed) Close()                      {}

type plainFile struct{ refreshed }

func (f *plainFile) Open(context.Context) (fs.Reader, error) {
	file, err := os.Open(f.listed.path)
	if err != nil {
		return nil, fmt.Errorf("unable to open local file: %w", err)
	}
	if fi, err := file.Stat(); err == nil {
		f.refresh(fi)
	}
	return &plainReader{File: file, path: f.listed.path}, nil
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
	return &plainFile{refreshed: refreshed{listed: metaOfInfo(fi, r.path)}}, nil
}

type plainSymlink struct{ refreshed }

func (s *plainSymlink) Readlink(context.Context) (string, error) {
	target, err := os.Readlink(s.listed.path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Lstat(s.listed.path); err == nil {
		s.refresh(fi)
	}
	return target, nil
}

func (s *plainSymlink) Resolve(context.Context) (fs.Entry, error) {
	target, err := filepath.EvalSymlinks(s.listed.path)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve symlink for %q: %w", s.listed.path, err)
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
