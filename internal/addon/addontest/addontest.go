// Package addontest runs a driver against a repository as the step
// engine does, for the drivers' own tests against their real servers.
package addontest

import (
	"context"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
)

// Backup runs d's backup into r through the engine's Writer and returns
// the last snapshot it took.
func Backup(ctx context.Context, r *repository.Repository, d addon.Driver, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	w := dump.NewWriter(dump.Ready(r), bo)
	if err := d.Backup(ctx, w); err != nil {
		return nil, err
	}
	taken := w.Taken()
	return &taken[len(taken)-1], nil
}

// Restore runs d's restore of snapshot s through the engine's Reader.
func Restore(ctx context.Context, r *repository.Reader, s repository.Snapshot, d addon.Driver) error {
	return d.Restore(ctx, &dump.Reader{R: r, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return s, nil }})
}
