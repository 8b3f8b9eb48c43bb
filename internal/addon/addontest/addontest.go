// Package addontest runs a driver against a repository as the step
// engine does, for the drivers' own tests against their real servers.
package addontest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kopia/kopia/repo/blob/filesystem"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
)

// OpenRepo makes a repository in a directory of the test's, closed when
// the test ends.
func OpenRepo(t testing.TB) *repository.Repository {
	t.Helper()
	r, err := repository.OpenOrInit(context.Background(), repository.Options{Location: &location.Location{Kind: location.KindLocal,
		Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}}, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

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
func Restore(ctx context.Context, r repository.SnapshotReader, s repository.Snapshot, d addon.Driver) error {
	return d.Restore(ctx, &dump.Reader{R: r, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return s, nil }})
}
