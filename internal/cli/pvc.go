package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/repository"
)

// splitList splits Stash's comma-separated Function parameters.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newBackupPVCCommand() *cobra.Command {
	var (
		f                                addonFlags
		paths, exclude, ignored          string
		targetKind, targetName, targetNS string
	)
	cmd := &cobra.Command{
		Use:   "backup-pvc --backup-paths=DIR[,DIR…]",
		Short: "Back up directories of a mounted volume (the pvc-backup Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			var ret *RetentionOutput
			stats, err := func() ([]repository.SnapshotStats, error) {
				dirs := splitList(paths)
				if len(dirs) == 0 {
					return nil, errors.New("--backup-paths is empty: set the BackupConfiguration's target.paths to the mounted directories to back up")
				}
				f.defaultHost()
				if err := f.checkCounts(); err != nil {
					return nil, err
				}
				src, err := f.source()
				if err != nil {
					return nil, err
				}
				r, err := f.openRepository(ctx, src)
				if err != nil {
					return nil, err
				}
				defer r.Close(ctx) //nolint:errcheck
				inv := f.invoker(ctx, src)
				tags := inv.Tags()
				if tags == nil {
					tags = map[string]string{}
				}
				if f.backupSession != "" {
					tags["backup-session"] = f.backupSession
				}
				st, err := r.BackupPaths(ctx, dirs, repository.BackupOptions{Host: f.hostname, Tags: tags, Exclude: splitList(exclude)})
				if err != nil {
					return nil, err
				}
				paths, taken := make([]string, len(st)), make([]string, len(st))
				for i, s := range st {
					paths[i], taken[i] = s.Path, s.Name
				}
				ret = f.applyRetention(ctx, r, inv, taken, paths...)
				return st, nil
			}()
			return f.finishBackup(start, stats, ret, err)
		},
	}
	f.register(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&paths, "backup-paths", "", "comma-separated directories to back up")
	fl.StringVar(&exclude, "exclude", "", "comma-separated patterns of files not to back up")
	fl.StringVar(&ignored, "args", "", "accepted for compatibility")
	fl.StringVar(&targetKind, "target-kind", "", "accepted for compatibility")
	fl.StringVar(&targetName, "target-name", "", "accepted for compatibility")
	fl.StringVar(&targetNS, "target-namespace", "", "accepted for compatibility")
	return cmd
}

func newRestorePVCCommand() *cobra.Command {
	var (
		f                                  addonFlags
		paths, snapshots, include, exclude string
		ignored, invokerKind, invokerName  string
		targetKind, targetName             string
	)
	cmd := &cobra.Command{
		Use:   "restore-pvc (--restore-paths=DIR[,DIR…] | --snapshots=ID[,ID…])",
		Short: "Restore directories into a mounted volume (the pvc-restore Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			err := func() error {
				f.defaultHost()
				src, err := f.source()
				if err != nil {
					return err
				}
				r, err := f.openRepository(ctx, src)
				if err != nil {
					return err
				}
				defer r.Close(ctx) //nolint:errcheck
				ids := splitList(snapshots)
				snaps, err := pvcSnapshots(ctx, r, orStr(f.sourceHostname, f.hostname), splitList(paths), ids)
				if err != nil {
					return err
				}
				// The snapshots "latest" chose follow those named by ID.
				if named := len(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == repository.Latest })); named < len(snaps) {
					for _, s := range snaps[named:] {
						f.warnLatest(ctx, r, repository.Filter{Host: s.Host, Path: s.Path}, s)
					}
				}
				// A directory snapshot goes back where it was taken, a path
				// the repository supplies: every one is checked before
				// anything is restored.
				reserved := f.reservedDirs(ctx, src)
				for _, s := range snaps {
					if err := checkRestoreDestination(s.Path, splitList(paths), reserved); err != nil {
						return fmt.Errorf("snapshot %s: %w", s.ShortID(), err)
					}
				}
				for _, s := range snaps {
					// A directory snapshot goes back where it was taken:
					// the volume is mounted at the same path.
					if _, err := r.RestoreTree(ctx, s, s.Path, repository.TreeRestoreOptions{Include: splitList(include), Exclude: splitList(exclude)}); err != nil {
						return fmt.Errorf("restore %s of snapshot %s: %w", s.Path, s.ShortID(), err)
					}
				}
				return nil
			}()
			return f.finishRestore(start, err)
		},
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&paths, "restore-paths", "", "comma-separated directories to restore (their latest snapshots of --source-hostname)")
	fl.StringVar(&snapshots, "snapshots", "", "comma-separated snapshot IDs, or latest (every path's newest)")
	fl.StringVar(&include, "include", "", "comma-separated patterns: restore only these")
	fl.StringVar(&exclude, "exclude", "", "comma-separated patterns not to restore")
	fl.StringVar(&ignored, "args", "", "accepted for compatibility")
	fl.StringVar(&invokerKind, "invoker-kind", "", "accepted for compatibility")
	fl.StringVar(&invokerName, "invoker-name", "", "accepted for compatibility")
	fl.StringVar(&targetKind, "target-kind", "", "accepted for compatibility")
	fl.StringVar(&targetName, "target-name", "", "accepted for compatibility")
	return cmd
}

// pvcSnapshots picks what a PVC restore restores: the given snapshot IDs;
// "latest" or no IDs means the newest snapshot of each path (of paths, or
// of every path the host backed up).
func pvcSnapshots(ctx context.Context, r *repository.Repository, host string, paths, ids []string) ([]repository.Snapshot, error) {
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
