package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/kopia/kopia/repo/blob"

	"github.com/stash-backup/stash/internal/repository/location"
)

// resticConfig is the object that marks a restic repository: restic
// writes it first, at the repository's root, and never removes it.
const resticConfig = "config"

// holdsRestic reports whether the location holds a restic repository
// (its config object) beside or instead of this project's.
func holdsRestic(ctx context.Context, loc *location.Location, st blob.Storage) (bool, error) {
	if loc.Kind == location.KindLocal {
		// kopia's filesystem storage names blobs with a suffix and
		// shards; restic's config is a plain file at the root.
		_, err := os.Stat(filepath.Join(loc.Filesystem.Path, resticConfig))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	_, err := st.GetMetadata(ctx, resticConfig)
	if errors.Is(err, blob.ErrBlobNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrUnreachable, loc, err)
	}
	return true, nil
}

// refuseForeign fails with ErrForeignRepository when the location holds
// a restic repository, saying how to go on.
func refuseForeign(ctx context.Context, loc *location.Location, st blob.Storage) error {
	found, err := holdsRestic(ctx, loc, st)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%w (Stash's format) at %s: this project never writes into it, so Stash's snapshots stay as they are. "+
			"Restore from it as it is, or import its snapshots with `stash repo import --from <this Repository> --to <a Repository with a new prefix>` and back up to that; "+
			"see docs/migrating-from-stash.md", ErrForeignRepository, loc)
	}
	return nil
}

// refuseForeignLocal is refuseForeign for a local directory, checked
// before kopia's storage is opened there (opening it may record its
// layout in the directory).
func refuseForeignLocal(loc *location.Location) error {
	if loc.Kind != location.KindLocal {
		return nil
	}
	return refuseForeign(context.Background(), loc, nil)
}

// ownBlob matches the names of the blobs this project writes: kopia's
// format, pack, index, manifest, log and epoch blobs and Stash's locks.
// A wipe deletes nothing else, whatever else shares the prefix.
var ownBlob = regexp.MustCompile(`^(kopia\.[a-z0-9.]+|_log_[^/]+|_stash(lock|init)_[^/]+|[pqnmls][0-9a-f][^/]*|x[ensrw][0-9][^/]*)$`)
