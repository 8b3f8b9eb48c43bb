package step

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kopia/kopia/fs/localfs"

	"github.com/stash-backup/stash/internal/repository"
)

// Interim snapshot paths. Whatever directory a pod's steps hand their
// files over in, an upload records them under InterimPath, so that the
// snapshots of one Task stay one series (retention, "latest") however
// the runtime maps the directory: /stash-tmp/… in a pod without an interim
// volume, /stash-interim-volume/… with one, a directory of the state
// directory in the local runtime. StashTmpInterimPath is where Stash's
// own interim backups were taken from when no interim volume was set.
const (
	InterimPath         = "/stash-interim-volume/data"
	StashTmpInterimPath = "/stash-tmp/stash-interim-volume/data"
)

// DefaultDownloadPaths are the snapshot paths a download always looks
// for: the uploads of this project and of Stash.
var DefaultDownloadPaths = []string{InterimPath, StashTmpInterimPath}

// Upload is the body of the upload step: what the earlier steps of the
// pod left in dir (a dump file, a directory of them) becomes one
// directory snapshot recorded under InterimPath, then retention and the
// report, as every backup step. An empty or missing dir is a failed
// backup, never an empty snapshot: the step before it wrote nothing.
func Upload(ctx context.Context, o Options, dir string) error {
	return backupFiles(ctx, o, func() error { return checkHandOver(dir) },
		func(r *repository.Repository, bo repository.BackupOptions) ([]repository.SnapshotStats, error) {
			entry, err := localfs.NewEntry(dir)
			if err != nil {
				return nil, fmt.Errorf("--interim-data-dir %s: %w", dir, err)
			}
			st, err := r.BackupEntry(ctx, entry, InterimPath, bo)
			if err != nil {
				return nil, err
			}
			return []repository.SnapshotStats{*st}, nil
		})
}

// checkHandOver refuses a hand-over directory that holds nothing.
func checkHandOver(dir string) error {
	if dir == "" {
		return errors.New("--interim-data-dir is empty: pass the directory the earlier steps wrote their files to (--interim-data-dir=${INTERIM_DATA_DIR})")
	}
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nothing to upload: %s does not exist: the steps before upload wrote nothing there (see their logs)", dir)
	}
	if err != nil {
		return fmt.Errorf("--interim-data-dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("--interim-data-dir %s is not a directory: the steps before upload write their files into it", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--interim-data-dir %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("nothing to upload: %s is empty: the steps before upload wrote nothing there (see their logs)", dir)
	}
	return nil
}

// Download is the body of the download step: the snapshot --snapshot and
// --source-hostname choose among those of DefaultDownloadPaths and of
// extra (the snapshot paths of older backups; a stream's path is its file
// name, such as dumpfile.resp of Stash's Redis backups) is written into
// dir for the steps after it. A directory snapshot's files land in dir; a
// stream snapshot becomes dir/<its name>. "latest" is the newest snapshot
// of any of the paths.
//
// Unlike a restore step, a download that fails fails the step even with
// --output-dir (after writing output.json): the step after it is the
// user's load step, not update-status, and must not run on nothing.
func Download(ctx context.Context, o Options, dir string, extra []string) error {
	paths := append(slices.Clone(DefaultDownloadPaths), extra...)
	start := time.Now()
	o.defaultHost()
	var warnings []string
	err := func() error {
		if dir == "" {
			return errors.New("--interim-data-dir is empty: pass the directory the later steps read from (--interim-data-dir=${INTERIM_DATA_DIR})")
		}
		src, err := o.source()
		if err != nil {
			return err
		}
		r, err := o.OpenReader(ctx, src)
		if err != nil {
			return err
		}
		defer r.Close(ctx) //nolint:errcheck
		s, w, err := o.chooseAmong(ctx, r, paths)
		if err != nil {
			return err
		}
		warnings = w
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("--interim-data-dir %s: %w", dir, err)
		}
		if _, err := r.RestoreTree(ctx, s, dir, repository.TreeRestoreOptions{}); err != nil {
			return fmt.Errorf("download snapshot %s: %w", s.ShortID(), err)
		}
		fmt.Fprintf(o.log(), "stash: downloaded snapshot %s (%s of host %s, %s) into %s\n", s.ShortID(), s.Path, s.Host, s.Time.UTC().Format(time.RFC3339), dir)
		return nil
	}()
	if ferr := o.finishRestore(start, warnings, nil, err); ferr != nil || err == nil {
		return ferr
	}
	return err
}

// chooseAmong picks a download's snapshot: the one --snapshot names (it
// must be of one of paths, so that a mistyped ID cannot hand another
// application's files to the load step), or the newest of
// --source-hostname over all of paths.
func (o *Options) chooseAmong(ctx context.Context, r repository.SnapshotReader, paths []string) (repository.Snapshot, []string, error) {
	if o.Snapshot != "" && o.Snapshot != repository.Latest {
		s, err := r.Resolve(ctx, o.Snapshot, repository.Filter{})
		if err != nil {
			return s, nil, err
		}
		if !slices.Contains(paths, s.Path) {
			return s, nil, fmt.Errorf("snapshot %s holds %s, not one of the paths this step downloads (%v): name a snapshot of this Task's backups", s.ShortID(), s.Path, paths)
		}
		return s, nil, nil
	}
	host := orStr(o.SourceHostname, o.Hostname)
	var (
		best  repository.Snapshot
		found bool
		from  repository.Filter
	)
	for _, p := range paths {
		f := repository.Filter{Host: host, Path: p}
		s, err := r.Resolve(ctx, repository.Latest, f)
		if errors.Is(err, repository.ErrSnapshotNotFound) {
			continue
		}
		if err != nil {
			return s, nil, err
		}
		if !found || s.Time.After(best.Time) {
			best, found, from = s, true, f
		}
	}
	if !found {
		return best, nil, fmt.Errorf("%w: host %s has no snapshot of %v (stash repo snapshots lists what the repository holds)", repository.ErrSnapshotNotFound, host, paths)
	}
	return best, o.warnLatest(ctx, r, from, best), nil
}
