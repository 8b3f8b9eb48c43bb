package repository

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot"
)

// ErrUnsafeEntry is a snapshot entry whose name could make a restore write
// outside its target ("..", a slash, an absolute or empty name, NUL). A
// backup never records such a name: the snapshot was written by hand or
// altered in the bucket.
var ErrUnsafeEntry = errors.New("unsafe entry name in snapshot")

const isWindows = runtime.GOOS == "windows"

// checkEntryName refuses what one path component written by a backup can
// never be. Everything else (spaces, newlines, non-UTF-8 bytes) is a name
// some file system allows and restores as it is.
func checkEntryName(name string) error {
	switch {
	case name == "":
		return errors.New("the name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("the name is %q", name)
	case strings.ContainsRune(name, '/'):
		return errors.New(`the name holds "/"`)
	case strings.ContainsRune(name, 0):
		return errors.New("the name holds a NUL byte")
	case isWindows && strings.ContainsRune(name, '\\'):
		// A separator on Windows, and never in a name kopia records
		// from one.
		return errors.New(`the name holds "\"`)
	}
	return nil
}

// entryPath names an entry in messages: its directory's path in the
// snapshot and its own name quoted as stored, never cleaned (cleaning
// "a/../../esc2" would hide what was refused).
func entryPath(dir, name string) string {
	if dir == "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q in directory %q", name, dir)
}

// checkedDir refuses, when it is listed, a directory holding an entry with
// an unsafe name. kopia's restore lists a directory before it writes any of
// its entries, so a refused entry fails the whole restore before anything
// is written for it or its siblings; what earlier directories wrote stays.
type checkedDir struct {
	fs.Directory
	rel string // the directory's path in the snapshot
}

func (d *checkedDir) check(e fs.Entry) (fs.Entry, error) {
	raw, err := rawName(e.Name())
	if err == nil {
		err = checkEntryName(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: entry %s: %v; the restore was stopped before writing it (check who can write to the repository's bucket)", ErrUnsafeEntry, entryPath(d.rel, e.Name()), err)
	}
	if dir, ok := e.(fs.Directory); ok {
		return &checkedDir{Directory: dir, rel: path.Join(d.rel, e.Name())}, nil
	}
	return e, nil
}

// Child implements fs.Directory.
func (d *checkedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.check(e)
}

// Iterate implements fs.Directory: every entry is checked before any is
// handed out.
func (d *checkedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	entries, err := fs.GetAllEntries(ctx, d.Directory)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if entries[i], err = d.check(e); err != nil {
			return nil, err
		}
	}
	return fs.StaticIterator(entries, nil), nil
}

// DirEntry exposes the wrapped directory's snapshot entry, which kopia's
// restore reads for metadata.
func (d *checkedDir) DirEntry() *snapshot.DirEntry {
	if h, ok := d.Directory.(snapshot.HasDirEntry); ok {
		return h.DirEntry()
	}
	return nil
}
