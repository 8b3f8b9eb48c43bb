package cli

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/formats"
)

// repoFlags are shared by every `stash repo` command.
type repoFlags struct {
	files       []string
	repository  string
	namespace   string
	output      string
	compression string
	parallelism int
}

func (f *repoFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringSliceVarP(&f.files, "filename", "f", nil, "files or directories holding the Repository and its storage Secret (YAML)")
	pf.StringVar(&f.repository, "repository", "", "name of the Repository to use when the manifests hold several")
	pf.StringVarP(&f.namespace, "namespace", "n", manifest.DefaultNamespace, "namespace of the Repository")
	pf.StringVarP(&f.output, "output", "o", outputText, "output format: text or json")
	pf.StringVar(&f.compression, "compression", "", "compression for new data: zstd-fastest (default), zstd, s2-default, pgzip, none, …")
	pf.IntVar(&f.parallelism, "parallelism", 0, "concurrent hashing, compression and transfers (default: CPUs)")
}

// options resolves the flags (the Repository and its Secret come from
// the -f manifests, or from the cluster when no -f is given there) into repository options.
func (f *repoFlags) options(ctx context.Context) (repository.Options, error) {
	return f.optionsFor(ctx, f.repository)
}

// optionsFor resolves the Repository named name (any one when the
// manifests hold a single Repository and name is empty).
func (f *repoFlags) optionsFor(ctx context.Context, name string) (repository.Options, error) {
	if err := checkOutput(f.output); err != nil {
		return repository.Options{}, err
	}
	var (
		repo   *stashv1alpha1.Repository
		secret map[string][]byte
	)
	if len(f.files) == 0 && clusterAvailable() {
		var err error
		if repo, secret, err = clusterRepository(ctx, f.namespace, name); err != nil {
			return repository.Options{}, err
		}
	} else {
		set, err := manifest.Load(f.files...)
		if err != nil {
			return repository.Options{}, err
		}
		if repo, err = set.Repository(f.namespace, name); err != nil {
			return repository.Options{}, err
		}
		if secret, err = set.StorageSecret(repo); err != nil {
			return repository.Options{}, err
		}
	}
	loc, err := location.Resolve(repo.Spec.Backend, secret)
	if err != nil {
		return repository.Options{}, fmt.Errorf("Repository %s: %w", manifest.Key(repo.Namespace, repo.Name), err)
	}
	pw, err := location.Password(secret)
	if err != nil {
		return repository.Options{}, fmt.Errorf("Repository %s: Secret %s: %w", manifest.Key(repo.Namespace, repo.Name), repo.Spec.Backend.StorageSecretName, err)
	}
	return repository.Options{
		Location: loc, Password: pw,
		Compression: f.compression, Parallelism: f.parallelism,
	}, nil
}

func (f *repoFlags) open(ctx context.Context) (*repository.Repository, error) {
	o, err := f.options(ctx)
	if err != nil {
		return nil, err
	}
	return repository.Open(ctx, o)
}

// openReader opens the repository for listing, restoring and checking,
// this project's or a restic repository Stash wrote.
func (f *repoFlags) openReader(ctx context.Context) (repository.SnapshotReader, error) {
	o, err := f.options(ctx)
	if err != nil {
		return nil, err
	}
	return formats.OpenReader(ctx, o)
}

func newRepoCommand() *cobra.Command {
	f := &repoFlags{}
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Work with a backup repository described by a Stash Repository and its Secret",
	}
	f.register(cmd)
	cmd.AddCommand(
		newRepoInitCommand(f),
		newRepoBackupCommand(f),
		newRepoSnapshotsCommand(f),
		newRepoRestoreCommand(f),
		newRepoForgetCommand(f),
		newRepoCheckCommand(f),
		newRepoStatsCommand(f),
		newRepoWipeCommand(f),
		newRepoImportCommand(f),
	)
	return cmd
}

func newRepoInitCommand(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create an empty, encrypted repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd.Context())
			if err != nil {
				return err
			}
			if err := repository.Init(cmd.Context(), o); err != nil {
				return err
			}
			if f.output == outputJSON {
				return writeJSON(stdout, map[string]string{"location": o.Location.String(), "status": "created"})
			}
			fmt.Fprintf(stdout, "created repository at %s\n", o.Location)
			return nil
		},
	}
}

type backupFlags struct {
	host    string
	stdin   string
	tags    []string
	exclude []string
}

func newRepoBackupCommand(f *repoFlags) *cobra.Command {
	b := &backupFlags{}
	cmd := &cobra.Command{
		Use:   "backup --host H (--stdin NAME | PATH...)",
		Short: "Back up directories, or standard input as a file named NAME",
		Long: "Back up directories or files (one snapshot per path), or read standard input and store it as\n" +
			"one file named NAME (a database dump, say). The repository is created if it does not exist.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if (b.stdin == "") == (len(args) == 0) {
				return fmt.Errorf("give either --stdin NAME or one or more paths")
			}
			tags, err := repository.ParseTags(b.tags)
			if err != nil {
				return err
			}
			o, err := f.options(cmd.Context())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Directories are walked while the repository opens.
			walks, stopWalks := repository.StartTreeWalks(ctx, args)
			defer stopWalks()
			r, err := repository.OpenOrInit(ctx, o)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			bo := repository.BackupOptions{Host: b.host, Tags: tags, Exclude: b.exclude, Walks: walks}
			var stats []repository.SnapshotStats
			if b.stdin != "" {
				bar := newProgress(f.output, "backup "+b.stdin, -1)
				bo.Progress = bar
				s, err := r.BackupStream(ctx, b.stdin, cmd.InOrStdin(), bo)
				bar.finish()
				if err != nil {
					return err
				}
				stats = append(stats, *s)
			} else {
				bar := newProgress(f.output, "backup", -1)
				bo.Progress = bar
				stats, err = r.BackupPaths(ctx, args, bo)
				bar.finish()
				if err != nil {
					return err
				}
			}
			if f.output == outputJSON {
				return writeJSON(stdout, map[string]any{"hostname": b.host, "snapshots": stats})
			}
			for _, s := range stats {
				fmt.Fprintf(stdout, "snapshot %s of %s (host %s): %s total, %s uploaded, %d files (%d new, %d modified, %d unmodified) in %s\n",
					s.Name, s.Path, s.Host, s.TotalSize, s.Uploaded, *s.FileStats.TotalFiles, *s.FileStats.NewFiles,
					*s.FileStats.ModifiedFiles, *s.FileStats.UnmodifiedFiles, s.ProcessingTime)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&b.host, "host", "host-0", "Stash hostname the snapshot belongs to")
	fl.StringVar(&b.stdin, "stdin", "", "read standard input and store it as a file with this name")
	fl.StringSliceVar(&b.tags, "tag", nil, "tag the snapshot (key=value, repeatable)")
	fl.StringSliceVar(&b.exclude, "exclude", nil, "gitignore-style pattern of files not to back up (repeatable)")
	return cmd
}

func newRepoSnapshotsCommand(f *repoFlags) *cobra.Command {
	var flt filterFlags
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			filter, err := flt.filter()
			if err != nil {
				return err
			}
			r, err := f.openReader(ctx)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			snaps, err := r.Snapshots(ctx, filter)
			if err != nil {
				return err
			}
			if f.output == outputJSON {
				if snaps == nil {
					snaps = []repository.Snapshot{}
				}
				return writeJSON(stdout, snaps)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tPATH\tSIZE\tFILES\tTAGS")
			for _, s := range snaps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"),
					s.Host, s.Path, repository.FormatBytes(s.TotalSize), s.Files, strings.Join(s.TagList(), ","))
			}
			return tw.Flush()
		},
	}
	flt.register(cmd)
	return cmd
}

type filterFlags struct {
	host string
	path string
	tags []string
}

func (ff *filterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&ff.host, "host", "", "only snapshots of this host")
	cmd.Flags().StringVar(&ff.path, "path", "", "only snapshots of this path (or stream name)")
	cmd.Flags().StringSliceVar(&ff.tags, "tag", nil, "only snapshots with this tag (key or key=value, repeatable)")
}

func (ff *filterFlags) filter() (repository.Filter, error) {
	tags, err := repository.ParseTags(ff.tags)
	if err != nil {
		return repository.Filter{}, err
	}
	return repository.Filter{Host: ff.host, Path: ff.path, Tags: tags}, nil
}

func newRepoRestoreCommand(f *repoFlags) *cobra.Command {
	var (
		flt      filterFlags
		snap     string
		toStdout string
		target   string
		include  []string
		exclude  []string
	)
	cmd := &cobra.Command{
		Use:   "restore [--host H] [--snapshot ID|latest] (--stdout NAME | --target DIR)",
		Short: "Restore a snapshot into a directory, or write one file of it to standard output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (toStdout == "") == (target == "") {
				return fmt.Errorf("give either --stdout NAME or --target DIR")
			}
			ctx := cmd.Context()
			filter, err := flt.filter()
			if err != nil {
				return err
			}
			if toStdout != "" && filter.Path == "" && (snap == "" || snap == repository.Latest) {
				// The latest stream snapshot is the latest of that name.
				filter.Path = toStdout
			}
			r, err := f.openReader(ctx)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			s, err := r.Resolve(ctx, snap, filter)
			if err != nil {
				return err
			}
			start := time.Now()
			if toStdout != "" {
				bar := newProgress(f.output, "restore "+toStdout, s.TotalSize)
				name := toStdout
				if s.Stream {
					name = ""
				}
				w := cmd.OutOrStdout()
				n, err := r.RestoreStream(ctx, s, name, w, bar)
				bar.finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "restored %s from snapshot %s (host %s) in %s\n",
					repository.FormatBytes(n), s.ShortID(), s.Host, time.Since(start).Round(time.Millisecond))
				return nil
			}
			bar := newProgress(f.output, "restore", s.TotalSize)
			res, err := r.RestoreTree(ctx, s, target, repository.TreeRestoreOptions{Include: include, Exclude: exclude, Progress: bar})
			bar.finish()
			if err != nil {
				return err
			}
			res.DurationMS = time.Since(start).Milliseconds()
			if f.output == outputJSON {
				return writeJSON(stdout, res)
			}
			fmt.Fprintf(stdout, "restored snapshot %s (host %s, %s) to %s: %d files, %s in %s\n", s.ShortID(), s.Host, s.Path,
				target, res.Files, repository.FormatBytes(res.Bytes), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	flt.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&snap, "snapshot", repository.Latest, "snapshot ID (or unique prefix), or latest")
	fl.StringVar(&toStdout, "stdout", "", "write the file NAME of the snapshot to standard output")
	fl.StringVar(&target, "target", "", "restore into this directory")
	fl.StringSliceVar(&include, "include", nil, "restore only paths matching this pattern (repeatable)")
	fl.StringSliceVar(&exclude, "exclude", nil, "do not restore paths matching this pattern (repeatable)")
	return cmd
}

func newRepoForgetCommand(f *repoFlags) *cobra.Command {
	var (
		flt    filterFlags
		p      repository.Policy
		prune  bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "forget --keep-last N ... [--prune] [--dry-run]",
		Short: "Remove snapshots by retention policy, per host, path and invoker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			filter, err := flt.filter()
			if err != nil {
				return err
			}
			if p.Empty() {
				return fmt.Errorf("no retention policy given: set at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-tag")
			}
			r, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			res, err := r.Forget(ctx, p, filter, dryRun)
			if err != nil {
				return err
			}
			if prune && !dryRun {
				pr, err := r.Prune(ctx)
				if err != nil {
					return err
				}
				res.Prune = pr
			}
			if f.output == outputJSON {
				return writeJSON(stdout, res)
			}
			printForget(stdout, res)
			return nil
		},
	}
	flt.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&p.KeepLast, "keep-last", 0, "keep the last N snapshots")
	fl.IntVar(&p.KeepHourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	fl.IntVar(&p.KeepDaily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	fl.IntVar(&p.KeepWeekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	fl.IntVar(&p.KeepMonthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	fl.IntVar(&p.KeepYearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	fl.StringSliceVar(&p.KeepTags, "keep-tag", nil, "keep snapshots with this tag (key or key=value, repeatable)")
	fl.BoolVar(&prune, "prune", false, "free the space of removed snapshots")
	fl.BoolVar(&dryRun, "dry-run", false, "only show what would be removed")
	return cmd
}

func printForget(w io.Writer, res *repository.ForgetResult) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	for _, g := range res.Groups {
		inv := g.Invoker
		if inv == "" {
			inv = "none"
		}
		fmt.Fprintf(w, "host %s, path %s, invoker %s:\n", g.Host, g.Path, inv)
		for _, d := range g.Decisions {
			if d.Keep {
				fmt.Fprintf(w, "  keep   %s  %s  (%s)\n", d.Snapshot.ShortID(), d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(d.Reasons, ", "))
			} else {
				fmt.Fprintf(w, "  remove %s  %s\n", d.Snapshot.ShortID(), d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"))
			}
		}
	}
	fmt.Fprintf(w, "kept %d, %s %d snapshots\n", res.Kept, verb, res.Removed)
	if p := res.Prune; p != nil {
		fmt.Fprintf(w, "prune (%s): %s freed, repository %s -> %s\n", p.Mode, repository.FormatBytes(p.FreedBytes),
			repository.FormatBytes(p.SizeBefore), repository.FormatBytes(p.SizeAfter))
		if p.Reason != "" {
			fmt.Fprintf(w, "  %s\n", p.Reason)
		}
	}
}

func newRepoCheckCommand(f *repoFlags) *cobra.Command {
	var readData bool
	cmd := &cobra.Command{
		Use:   "check [--read-data]",
		Short: "Verify the repository's integrity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := f.openReader(ctx)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			res, err := r.Check(ctx, readData)
			if err != nil {
				return err
			}
			if f.output == outputJSON {
				if err := writeJSON(stdout, res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(stdout, "checked %d snapshots, %d objects", res.Snapshots, res.Objects)
				if readData {
					fmt.Fprintf(stdout, ", read %s", repository.FormatBytes(res.BytesRead))
				}
				fmt.Fprintln(stdout)
				for _, e := range res.Errors {
					fmt.Fprintln(stdout, "error:", e)
				}
			}
			if !res.OK {
				return fmt.Errorf("repository check found %d errors", len(res.Errors))
			}
			if f.output != outputJSON {
				fmt.Fprintln(stdout, "no errors found")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "also read, decrypt and verify all data")
	return cmd
}

func newRepoStatsCommand(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the repository's size and snapshot count",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := f.openReader(ctx)
			if err != nil {
				return err
			}
			defer r.Close(ctx) //nolint:errcheck
			st, err := r.Stats(ctx)
			if err != nil {
				return err
			}
			if f.output == outputJSON {
				return writeJSON(stdout, st)
			}
			fmt.Fprintf(stdout, "location:   %s\nsnapshots:  %d (%d hosts)\nsize:       %s in %d blobs\nlogical:    %s\n",
				st.Location, st.SnapshotCount, st.Hosts, st.TotalSize, st.Blobs, repository.FormatBytes(st.LogicalBytes))
			return nil
		},
	}
}

func newRepoWipeCommand(f *repoFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "wipe --yes",
		Short: "Delete the whole repository from its backend: every snapshot and all data (needs the password)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return fmt.Errorf("wipe deletes every snapshot in the repository and cannot be undone: pass --yes to confirm")
			}
			o, err := f.options(cmd.Context())
			if err != nil {
				return err
			}
			n, err := repository.Wipe(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.output == outputJSON {
				return writeJSON(stdout, map[string]any{"location": o.Location.String(), "deletedBlobs": n})
			}
			fmt.Fprintf(stdout, "wiped %s: deleted %d blobs\n", o.Location, n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that every snapshot is to be deleted")
	return cmd
}
