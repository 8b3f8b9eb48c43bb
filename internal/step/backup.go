package step

import (
	"context"
	"errors"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

// Backup is the body of every backup-<driver> step: find the objects,
// make the driver, run its backup into the repository (waiting for the
// application only if a first attempt could not reach it), apply
// retention, report. flags holds the values of the driver's own flags.
func Backup(ctx context.Context, o Options, reg addon.Registration, flags map[string]string) error {
	start := time.Now()
	o.defaultHost()
	var ret *RetentionOutput
	stats, err := func() ([]repository.SnapshotStats, error) {
		if err := o.check(); err != nil {
			return nil, err
		}
		src, err := o.source()
		if err != nil {
			return nil, err
		}
		d, err := o.driver(ctx, src, reg, reg.NewBackup, flags)
		if err != nil {
			return nil, err
		}
		// The driver asks for the repository once its dump has started,
		// and it opens (key derivation) while the dump runs.
		opening := dump.NewOpenOnce(func() (*repository.Repository, error) { return o.OpenRepository(ctx, src) })
		defer func() { _ = opening.Close(ctx) }()
		inv := o.invoker(ctx, src)
		tags := o.tags(inv)
		tags["appbinding"] = o.AppBinding
		w := dump.NewWriter(opening.Get, repository.BackupOptions{Host: o.Hostname, Tags: tags})
		err = d.Backup(ctx, w)
		var noOutput *dump.NoOutputError
		if errors.As(err, &noOutput) && len(w.Taken()) == 0 {
			// The dump wrote nothing, as a tool does that cannot connect:
			// the server may still be starting. Asking it first would cost
			// every backup a round trip, so wait only now, then try once
			// more (a dump failing for another reason fails the same way
			// twice).
			if werr := d.Wait(ctx, o.waitTimeout()); werr != nil {
				return nil, werr
			}
			err = d.Backup(ctx, w)
		}
		if err != nil {
			if addon.HostErrors(err) != nil {
				// Some hosts failed (a shard), the others' snapshots
				// are committed: report both. Retention waits for a
				// backup where every host succeeded.
				return w.Taken(), err
			}
			return nil, err
		}
		taken := w.Taken()
		if len(taken) == 0 {
			return nil, errors.New("the driver wrote no snapshot")
		}
		r, err := opening.Get()
		if err != nil {
			return nil, err
		}
		ret = o.applyRetention(ctx, r, inv, taken)
		return taken, nil
	}()
	return o.finishBackup(start, stats, ret, err)
}

// driver resolves the AppBinding into a connection and makes the driver
// with newDriver.
func (o *Options) driver(ctx context.Context, src source.Source, reg addon.Registration, newDriver func(addon.Config) (addon.Driver, error), flags map[string]string) (addon.Driver, error) {
	conn, err := o.connection(ctx, src, reg.DefaultPort, reg.UserKeys, reg.PasswordKeys)
	if err != nil {
		return nil, err
	}
	return newDriver(addon.Config{Conn: conn, ScratchDir: o.ScratchDir, Flags: flags})
}

func (o *Options) waitTimeout() time.Duration { return time.Duration(o.WaitTimeout) * time.Second }

// tags are the tags of every snapshot of the step: its invoker and
// session.
func (o *Options) tags(inv repository.Invoker) map[string]string {
	tags := inv.Tags()
	if tags == nil {
		tags = map[string]string{}
	}
	if o.BackupSession != "" {
		tags["backup-session"] = o.BackupSession
	}
	return tags
}

// BackupPaths is the body of backup-pvc: each directory of paths becomes
// a snapshot, without the files exclude matches; then retention and the
// report, as Backup.
func BackupPaths(ctx context.Context, o Options, paths, exclude []string) error {
	// Directories are walked while the repository opens.
	walks, stopWalks := repository.StartTreeWalks(ctx, paths)
	defer stopWalks()
	return backupFiles(ctx, o, func() error {
		if len(paths) == 0 {
			return errors.New("--backup-paths is empty: set the BackupConfiguration's target.paths to the mounted directories to back up")
		}
		return nil
	}, func(r *repository.Repository, bo repository.BackupOptions) ([]repository.SnapshotStats, error) {
		bo.Exclude = exclude
		bo.Walks = walks
		return r.BackupPaths(ctx, paths, bo)
	})
}

// backupFiles is the frame of a step that backs up files of this
// machine (backup-pvc, upload): check, open the repository, take the
// snapshots with the session's host and tags, apply retention, report.
func backupFiles(ctx context.Context, o Options, check func() error,
	take func(*repository.Repository, repository.BackupOptions) ([]repository.SnapshotStats, error)) error {
	start := time.Now()
	o.defaultHost()
	var ret *RetentionOutput
	stats, err := func() ([]repository.SnapshotStats, error) {
		if err := check(); err != nil {
			return nil, err
		}
		if err := o.check(); err != nil {
			return nil, err
		}
		src, err := o.source()
		if err != nil {
			return nil, err
		}
		r, err := o.OpenRepository(ctx, src)
		if err != nil {
			return nil, err
		}
		defer r.Close(ctx) //nolint:errcheck
		inv := o.invoker(ctx, src)
		st, err := take(r, repository.BackupOptions{Host: o.Hostname, Tags: o.tags(inv)})
		if err != nil {
			return nil, err
		}
		ret = o.applyRetention(ctx, r, inv, st)
		return st, nil
	}()
	return o.finishBackup(start, stats, ret, err)
}
