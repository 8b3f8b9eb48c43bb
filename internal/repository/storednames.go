package repository

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/snapshot"
)

// kopia keeps a directory's entries as JSON, whose strings are UTF-8: a
// file name with bytes that are not (legal on Linux, common in old
// archives) would come back with U+FFFD in their place. A backup stores
// such a name escaped instead, and a restore undoes it, so every name
// restores byte for byte:
//
//   - a name that is valid UTF-8 and does not start with nameMarker is
//     stored as it is (every name a user is likely to have);
//   - any other is stored as nameMarker followed by the name quoted as Go
//     quotes strings, without the quotes ("bad\xffname").
//
// U+FFFE is a Unicode noncharacter, which no text is meant to hold, so
// names start with it only when escaped; a name that did would be escaped
// too, and both kinds come back as they were. kopia's own restore writes
// the stored form.
const nameMarker = "\uFFFE"

// storedName is the name a backup records for the file name raw.
func storedName(raw string) string {
	if utf8.ValidString(raw) && !strings.HasPrefix(raw, nameMarker) {
		return raw
	}
	q := strconv.Quote(raw)
	return nameMarker + q[1:len(q)-1]
}

// rawName undoes storedName. A stored name that starts with the marker but
// does not unquote is an error: the snapshot was written by hand or
// altered.
func rawName(stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, nameMarker)
	if !ok {
		return stored, nil
	}
	raw, err := strconv.Unquote(`"` + rest + `"`)
	if err != nil {
		return "", fmt.Errorf("the name %q is escaped badly: %v", stored, err)
	}
	return raw, nil
}

// rawPath undoes storedName on every component of a slash-separated
// path, checking each as a restore must (checkEntryName).
func rawPath(stored string) (string, error) {
	if !strings.Contains(stored, nameMarker) {
		return stored, nil
	}
	parts := strings.Split(stored, "/")
	for i, p := range parts {
		raw, err := rawName(p)
		if err != nil {
			return "", err
		}
		if err := checkEntryName(raw); err != nil {
			return "", fmt.Errorf("%w: entry %q: %v", ErrUnsafeEntry, stored, err)
		}
		parts[i] = raw
	}
	return path.Join(parts...), nil
}

// storedPath is storedName of every component of a path.
func storedPath(raw string) string {
	parts := strings.Split(raw, "/")
	for i, p := range parts {
		if p != "" {
			parts[i] = storedName(p)
		}
	}
	return strings.Join(parts, "/")
}

// storedNames presents a tree about to be backed up with its entries'
// stored names. Directories are wrapped so their children are too; other
// entries only when their name changes.
func storedNames(e fs.Entry) fs.Entry {
	switch x := e.(type) {
	case fs.Directory:
		return &storedDir{Directory: x, name: storedName(x.Name())}
	case fs.File:
		if n := storedName(x.Name()); n != x.Name() {
			return &storedFile{File: x, name: n}
		}
	case fs.Symlink:
		if n := storedName(x.Name()); n != x.Name() {
			return &storedSymlink{Symlink: x, name: n}
		}
	case fs.StreamingFile:
		if n := storedName(x.Name()); n != x.Name() {
			return &storedStreamingFile{StreamingFile: x, name: n}
		}
	case fs.ErrorEntry:
		if n := storedName(x.Name()); n != x.Name() {
			return &storedErrorEntry{ErrorEntry: x, name: n}
		}
	}
	return e
}

type storedDir struct {
	fs.Directory
	name string
}

func (d *storedDir) Name() string { return d.name }

// DirEntryOrNil passes the uploader's placeholder hook on to a walked
// directory (treereuse.go) only: kopia's own placeholder directories
// (named *.kopia-entry) are not honoured in a tree being backed up.
func (d *storedDir) DirEntryOrNil(ctx context.Context) (*snapshot.DirEntry, error) {
	if w, ok := d.Directory.(*printedDir); ok {
		return w.DirEntryOrNil(ctx)
	}
	return nil, nil
}

func (d *storedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	raw, err := rawName(name)
	if err != nil {
		return nil, fs.ErrEntryNotFound
	}
	var e fs.Entry
	if local := d.LocalFilesystemPath(); local != "" && strings.HasSuffix(raw, localfs.ShallowEntrySuffix) {
		e, err = plainEntryAt(filepath.Join(local, raw))
	} else {
		e, err = d.Directory.Child(ctx, raw)
	}
	if err != nil {
		return nil, err
	}
	return storedNames(e), nil
}

func (d *storedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	local := d.LocalFilesystemPath()
	if local == "" {
		it, err := d.Directory.Iterate(ctx)
		if err != nil {
			return nil, err
		}
		return &storedIterator{it}, nil
	}
	// A local directory is listed whole first: an entry kopia's local
	// filesystem took for a placeholder has it listed again, plainly
	// (placeholders.go).
	entries, err := listEntries(ctx, d.Directory)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(entries, isPlaceholder) {
		if entries, err = plainEntries(ctx, local); err != nil {
			return nil, err
		}
	}
	for i, e := range entries {
		entries[i] = storedNames(e)
	}
	return fs.StaticIterator(entries, nil), nil
}

// plainRoot is the root of a backup as what it is, should kopia's local
// filesystem have taken it for a placeholder (placeholders.go).
func plainRoot(e fs.Entry) (fs.Entry, error) {
	if _, ok := e.(snapshot.HasDirEntryOrNil); !ok || e.LocalFilesystemPath() == "" {
		return e, nil
	}
	return plainEntryAt(e.LocalFilesystemPath() + localfs.ShallowEntrySuffix)
}

type storedIterator struct{ fs.DirectoryIterator }

func (it *storedIterator) Next(ctx context.Context) (fs.Entry, error) {
	e, err := it.DirectoryIterator.Next(ctx)
	if e == nil || err != nil {
		return e, err
	}
	return storedNames(e), nil
}

type storedFile struct {
	fs.File
	name string
}

func (f *storedFile) Name() string { return f.name }

type storedSymlink struct {
	fs.Symlink
	name string
}

func (s *storedSymlink) Name() string { return s.name }

type storedStreamingFile struct {
	fs.StreamingFile
	name string
}

func (s *storedStreamingFile) Name() string { return s.name }

type storedErrorEntry struct {
	fs.ErrorEntry
	name string
}

func (e *storedErrorEntry) Name() string { return e.name }
