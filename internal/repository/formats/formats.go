// Package formats opens a repository in whichever format its location
// holds: this project's own (kopia), or a restic repository Stash wrote.
// Readers get either behind repository.SnapshotReader, so a Stash user's
// old backups list, restore and check with the same commands and steps.
package formats

import (
	"context"
	"errors"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/restic"
)

// OpenReader opens the repository at opts.Location for reading: this
// project's own when there is one, else the restic repository there. A
// location holding neither fails with repository.ErrNotInitialized.
func OpenReader(ctx context.Context, opts repository.Options) (repository.SnapshotReader, error) {
	r, err := repository.OpenReader(ctx, opts)
	if err == nil || !errors.Is(err, repository.ErrNotInitialized) && !errors.Is(err, repository.ErrBackendReadOnly) {
		return r, err
	}
	rr, rerr := restic.OpenReader(ctx, opts)
	if errors.Is(rerr, restic.ErrNotRestic) {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return rr, nil
}
