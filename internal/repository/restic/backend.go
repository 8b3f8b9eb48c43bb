package restic

import (
	"context"

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
	// negative length reads to the end. name is empty for ConfigFile.
	// A missing object is an error that wraps ErrNotExist.
	Get(ctx context.Context, t FileType, name string, off, length int64) ([]byte, error)
	// List calls fn with the name and size of every object of type t.
	List(ctx context.Context, t FileType, fn func(name string, size int64) error) error
	// String describes the location without credentials.
	String() string
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
