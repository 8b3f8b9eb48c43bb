package step

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

// Restore is the body of every restore-<driver> step: find the objects,
// make the driver, open the repository while the application comes up,
// and let the driver read the snapshots --snapshot and --source-hostname
// choose. flags holds the values of the driver's own flags.
func Restore(ctx context.Context, o Options, reg addon.Registration, flags map[string]string) error {
	start := time.Now()
	o.defaultHost()
	var warnings, hosts []string
	err := func() error {
		if err := o.check(); err != nil {
			return err
		}
		if strings.Contains(o.Snapshot, ",") {
			// A restore rule's snapshots arrive joined by commas.
			return fmt.Errorf("--snapshot %q names several snapshots: a database restore takes one dump, give one snapshot ID or latest", o.Snapshot)
		}
		src, err := o.source()
		if err != nil {
			return err
		}
		var d addon.Driver
		if reg.RestoreNeedsApp != nil && !reg.RestoreNeedsApp(flags) {
			d, err = reg.NewRestore(addon.Config{ScratchDir: o.ScratchDir, Flags: flags})
		} else {
			d, err = o.driver(ctx, src, reg, reg.NewRestore, flags)
		}
		if err != nil {
			return err
		}
		if mh, ok := d.(addon.MultiHost); ok {
			hosts = mh.Hosts()
		}
		r, err := o.openWhileWaiting(ctx, src, d)
		if err != nil {
			return err
		}
		defer r.Close(ctx) //nolint:errcheck
		return d.Restore(ctx, &dump.Reader{R: r, Choose: func(ctx context.Context, host, name string) (repository.Snapshot, error) {
			s, w, err := o.choose(ctx, r, host, name)
			warnings = append(warnings, w...)
			return s, err
		}})
	}()
	return o.finishRestore(start, warnings, hosts, err)
}

// choose picks the snapshot of file name a restore reads: for the step's
// own host (host empty) the one --snapshot names, whichever host took it,
// or the latest of --source-hostname; for a host the driver names (one
// shard of several), that host's latest. A "latest" that matched several
// invokers' snapshots comes with a warning.
func (o *Options) choose(ctx context.Context, r repository.SnapshotReader, host, name string) (repository.Snapshot, []string, error) {
	ref := o.Snapshot
	filter := repository.Filter{Host: orStr(o.SourceHostname, o.Hostname), Path: name}
	switch {
	case host != "":
		ref, filter.Host = repository.Latest, host
	case ref != "" && ref != repository.Latest:
		// An ID names one snapshot, whichever host took it, as Stash's
		// restic dump <id> does.
		filter.Host = ""
	}
	s, err := r.Resolve(ctx, ref, filter)
	if err != nil {
		return s, nil, err
	}
	if ref == "" || ref == repository.Latest {
		return s, o.warnLatest(ctx, r, filter, s), nil
	}
	return s, nil, nil
}

// openWhileWaiting opens the repository while the application comes up:
// both take time, and neither needs the other.
func (o *Options) openWhileWaiting(ctx context.Context, src source.Source, d addon.Driver) (repository.SnapshotReader, error) {
	type opened struct {
		r   repository.SnapshotReader
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := o.OpenReader(ctx, src)
		ch <- opened{r, err}
	}()
	if err := d.Wait(ctx, o.waitTimeout()); err != nil {
		if op := <-ch; op.err == nil {
			_ = op.r.Close(ctx)
		}
		return nil, err
	}
	op := <-ch
	return op.r, op.err
}

// PathsRestore selects what RestorePaths restores.
type PathsRestore struct {
	// Paths are the directories to restore (their latest snapshots of
	// the source host); with Snapshots, the paths a snapshot may restore to.
	Paths []string
	// Snapshots are snapshot IDs, or latest (every path's newest).
	Snapshots []string
	// Include and Exclude are patterns of files to restore or not.
	Include, Exclude []string
}

// RestorePaths is the body of restore-pvc: each chosen directory snapshot
// goes back where it was taken, once every destination is checked.
func RestorePaths(ctx context.Context, o Options, p PathsRestore) error {
	start := time.Now()
	o.defaultHost()
	var warnings []string
	err := func() error {
		src, err := o.source()
		if err != nil {
			return err
		}
		r, err := o.OpenReader(ctx, src)
		if err != nil {
			return err
		}
		defer r.Close(ctx) //nolint:errcheck
		snaps, err := pathSnapshots(ctx, r, orStr(o.SourceHostname, o.Hostname), p.Paths, p.Snapshots)
		if err != nil {
			return err
		}
		// The snapshots "latest" chose follow those named by ID.
		if named := len(slices.DeleteFunc(slices.Clone(p.Snapshots), func(id string) bool { return id == repository.Latest })); named < len(snaps) {
			for _, s := range snaps[named:] {
				warnings = append(warnings, o.warnLatest(ctx, r, repository.Filter{Host: s.Host, Path: s.Path}, s)...)
			}
		}
		// A directory snapshot goes back where it was taken, a path the
		// repository supplies: every one is checked before anything is
		// restored.
		reserved := o.reservedDirs(ctx, src)
		for _, s := range snaps {
			if err := checkRestoreDestination(s.Path, p.Paths, reserved); err != nil {
				return fmt.Errorf("snapshot %s: %w", s.ShortID(), err)
			}
		}
		for _, s := range snaps {
			if _, err := r.RestoreTree(ctx, s, s.Path, repository.TreeRestoreOptions{Include: p.Include, Exclude: p.Exclude}); err != nil {
				return fmt.Errorf("restore %s of snapshot %s: %w", s.Path, s.ShortID(), err)
			}
		}
		return nil
	}()
	return o.finishRestore(start, warnings, nil, err)
}

// pathSnapshots picks what a PVC restore restores: the given snapshot
// IDs; "latest" or no IDs means the newest snapshot of each path (of
// paths, or of every path the host backed up).
func pathSnapshots(ctx context.Context, r repository.SnapshotReader, host string, paths, ids []string) ([]repository.Snapshot, error) {
	var out []repository.Snapshot
	latest := len(ids) == 0
	for _, id := range ids {
		if id == repository.Latest {
			latest = true
			continue
		}
		s, err := r.Resolve(ctx, id, repository.Filter{})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if !latest {
		return out, nil
	}
	if len(paths) > 0 {
		for _, p := range paths {
			s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Host: host, Path: p})
			if err != nil {
				return nil, fmt.Errorf("path %s of host %s: %w", p, host, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	all, err := r.Snapshots(ctx, repository.Filter{Host: host})
	if err != nil {
		return nil, err
	}
	newest := map[string]repository.Snapshot{}
	for _, s := range all {
		if s.Stream {
			continue
		}
		if cur, ok := newest[s.Path]; !ok || s.Time.After(cur.Time) {
			newest[s.Path] = s
		}
	}
	if len(newest) == 0 {
		return nil, fmt.Errorf("%w: host %s has no directory snapshots", repository.ErrSnapshotNotFound, host)
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, newest[k])
	}
	return out, nil
}
