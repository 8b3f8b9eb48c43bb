package restic

import (
	"context"
	"fmt"
	"io/fs"
	"path"
)

// FileType is a kind of object in a restic repository.
type FileType int

// The object kinds of a restic repository, as its design document names
// them.
const (
	ConfigFile FileType = iota
	KeyFile
	SnapshotFile
	IndexFile
	PackFile
	LockFile
)

// String is the object kind's directory in the repository.
func (t FileType) String() string {
	switch t {
	case ConfigFile:
		return "config"
	case KeyFile:
		return "keys"
	case SnapshotFile:
		return "snapshots"
	case IndexFile:
		return "index"
	case PackFile:
		return "data"
	case LockFile:
		return "locks"
	}
	return "unknown"
}

// ErrNotExist is returned (wrapped) by a Backend when an object is not
// there; errors.Is(err, fs.ErrNotExist) also holds.
var ErrNotExist = fs.ErrNotExist

// Backend is read-only access to the objects of one restic repository.
// It has no method that writes or deletes: nothing this package does can
// change a restic repository.
type Backend interface {
	// Get reads length bytes at offset off of object (t, name); a
	// negative length reads to the end, of an object no larger than
	// maxWhole(t). name is empty for ConfigFile. A missing object is
	// an error that wraps ErrNotExist.
	Get(ctx context.Context, t FileType, name string, off, length int64) ([]byte, error)
	// List calls fn with the name and size of every object of type t.
	List(ctx context.Context, t FileType, fn func(name string, size int64) error) error
	// String describes the location without credentials.
	String() string
}

// maxWhole bounds an object of kind t read whole (a Get to its end): far
// more than restic writes, and refused before memory is taken for it.
// Whoever can write to the bucket can put any object there, and a lock
// file is read before any MAC check.
func maxWhole(t FileType) int64 {
	switch t {
	case SnapshotFile, IndexFile:
		// restic starts a new index file at 150,000 blobs (50,000
		// uncompressed), some 20 MiB of JSON; a snapshot lists its
		// paths, tags and excludes.
		return 128 << 20
	case PackFile:
		// restic's --pack-size is at most 128 MiB, which the last
		// blob of a pack may overrun.
		return 128<<20 + maxBlobSize
	}
	// Config, key and lock files are a few hundred bytes.
	return 1 << 20
}

// tooLarge refuses object (t, name) of size bytes, or of more than
// maxWhole(t) when size is negative (the read stopped there).
func tooLarge(t FileType, name string, size int64) error {
	what := t.String()
	if name != "" {
		what += " " + short(name)
	}
	got := fmt.Sprintf("more than %d bytes", maxWhole(t))
	if size >= 0 {
		got = fmt.Sprintf("%d bytes", size)
	}
	hint := ""
	if t == IndexFile {
		hint = "; `restic repair index` rewrites the index in files of the size restic writes"
	}
	return fmt.Errorf("%s is %s, more than restic writes for one (at most %d): refused rather than read into memory%s", what, got, maxWhole(t), hint)
}

// defaultPath is where restic's default layout (local, S3, GCS, Azure,
// B2, Swift) keeps an object, relative to the repository's prefix: packs
// are sharded by the first two characters of their name.
func defaultPath(t FileType, name string) string {
	switch t {
	case ConfigFile:
		return "config"
	case PackFile:
		if len(name) >= 2 {
			return path.Join("data", name[:2], name)
		}
	}
	return path.Join(t.String(), name)
}

// restPath is where restic's REST server protocol addresses an object:
// packs are not sharded in URLs.
func restPath(t FileType, name string) string {
	if t == ConfigFile {
		return "config"
	}
	return path.Join(t.String(), name)
}

// notExist wraps ErrNotExist with the object it concerns.
func notExist(what string) error {
	return &notExistError{what: what}
}

type notExistError struct{ what string }

func (e *notExistError) Error() string { return e.what + ": not found" }
func (e *notExistError) Unwrap() error { return ErrNotExist }
