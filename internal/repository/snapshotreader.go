package repository

import (
	"context"
	"io"
)

// SnapshotReader reads the snapshots of a repository, whatever its format:
// this project's own (Reader) or a restic repository Stash wrote
// (package restic). Restores, listings and checks go through it, so a
// Stash user's old backups restore with the same commands and steps.
type SnapshotReader interface {
	// Snapshots lists the snapshots matching f, oldest first.
	Snapshots(ctx context.Context, f Filter) ([]Snapshot, error)
	// Resolve finds one snapshot: latest, an ID, or a unique prefix.
	Resolve(ctx context.Context, ref string, f Filter) (Snapshot, error)
	// RestoreStream writes the file name of s (a stream's one file when
	// name is empty) to w.
	RestoreStream(ctx context.Context, s Snapshot, name string, w io.Writer, p Progress) (int64, error)
	// RestoreFiles calls each with every file of directory snapshot s.
	RestoreFiles(ctx context.Context, s Snapshot, cmp func(a, b string) int, each func(name string, src io.Reader) error) error
	// RestoreTree writes s into the directory target.
	RestoreTree(ctx context.Context, s Snapshot, target string, o TreeRestoreOptions) (*RestoreResult, error)
	// Check verifies the repository, reading all data when readData.
	Check(ctx context.Context, readData bool) (*CheckResult, error)
	// Stats reports the repository's size and snapshot count.
	Stats(ctx context.Context) (*Stats, error)
	// Close releases the repository.
	Close(ctx context.Context) error
}

var _ SnapshotReader = (*Reader)(nil)
