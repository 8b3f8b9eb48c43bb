package mysql

import (
	"context"

	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
)

// backup runs the driver's backup into r, as the step engine does, and
// returns the snapshot it took.
func backup(ctx context.Context, r *repository.Repository, o Options, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
	w := dump.NewWriter(dump.Ready(r), bo)
	if err := (Driver{o}).Backup(ctx, w); err != nil {
		return nil, err
	}
	taken := w.Taken()
	return &taken[len(taken)-1], nil
}

// restoreSnapshot runs the driver's restore of snapshot s.
func restoreSnapshot(ctx context.Context, r *repository.Repository, s repository.Snapshot, o Options) error {
	return Driver{o}.Restore(ctx, &dump.Reader{R: r.Reader, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return s, nil }})
}
