package mysql

import (
	"context"

	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/repository"
)

func backup(ctx context.Context, r *repository.Repository, o Options, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	return addontest.Backup(ctx, r, Driver{o}, bo)
}

func restoreSnapshot(ctx context.Context, r *repository.Repository, s repository.Snapshot, o Options) error {
	return addontest.Restore(ctx, r.Reader, s, Driver{o})
}
