package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/restic"
)

func newRepoImportCommand(f *repoFlags) *cobra.Command {
	var (
		from, to  string
		flt       filterFlags
		snapshots []string
	)
	cmd := &cobra.Command{
		Use:   "import --from RESTIC_REPOSITORY --to REPOSITORY [--snapshot ID]... [--host H] [--path P]",
		Short: "Copy the snapshots of a restic repository Stash wrote into a repository of this project",
		Long: `Copies snapshots from the restic repository of Repository --from (one Stash
wrote) into the repository of Repository --to, oldest first, each with its
time, host, path and tags. What an earlier import copied is skipped, so
running it again copies only what is new. The restic repository is only
read. Both Repositories come from -f manifests, or from the cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("give both --from (the Repository of the restic repository) and --to (the Repository to copy into)")
			}
			if from == to {
				return fmt.Errorf("--from and --to both name Repository %s: import into a Repository with another prefix", from)
			}
			ctx := cmd.Context()
			filter, err := flt.filter()
			if err != nil {
				return err
			}
			fo, err := f.optionsFor(ctx, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			do, err := f.optionsFor(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			src, err := restic.OpenReader(ctx, fo)
			if errors.Is(err, restic.ErrNotRestic) {
				return fmt.Errorf("--from %s: %w: import reads the restic repositories Stash wrote", from, err)
			}
			if err != nil {
				return fmt.Errorf("--from %s: %w", from, err)
			}
			defer src.Close(ctx) //nolint:errcheck
			dst, err := repository.OpenOrInit(ctx, do)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer dst.Close(ctx) //nolint:errcheck
			start := time.Now()
			res, err := src.Import(ctx, dst, restic.ImportOptions{
				Snapshots: snapshots, Filter: filter,
				Progress: func(e restic.ImportEvent) {
					s := e.From
					if !e.Done {
						fmt.Fprintf(os.Stderr, "[%d/%d] snapshot %s (host %s, %s, %s) ...\n", e.Index, e.Total, s.ShortID(), s.Host, s.Path, s.Time.Local().Format("2006-01-02 15:04:05"))
						return
					}
					r := e.Result
					fmt.Fprintf(os.Stderr, "[%d/%d] snapshot %s -> %s: %s read, %s uploaded in %s\n", e.Index, e.Total, s.ShortID(), shortID(r.To),
						repository.FormatBytes(r.Bytes), repository.FormatBytes(r.Uploaded), time.Duration(r.DurationMS)*time.Millisecond)
					for _, w := range r.Warnings {
						fmt.Fprintf(os.Stderr, "  warning: %s\n", w)
					}
				},
			})
			if err != nil {
				return err
			}
			if f.output == outputJSON {
				if res.Imported == nil {
					res.Imported = []restic.ImportedSnapshot{}
				}
				return writeJSON(stdout, res)
			}
			fmt.Fprintf(stdout, "imported %d snapshots (%s read, %s uploaded) in %s; %d imported before, skipped\n",
				len(res.Imported), repository.FormatBytes(res.Bytes), repository.FormatBytes(res.Uploaded),
				time.Since(start).Round(time.Millisecond), res.Skipped)
			return nil
		},
	}
	flt.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "the Repository whose prefix holds the restic repository")
	fl.StringVar(&to, "to", "", "the Repository to copy into (created if it holds none)")
	fl.StringSliceVar(&snapshots, "snapshot", nil, "restic snapshot ID or short ID to import (repeatable; default: all)")
	return cmd
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
