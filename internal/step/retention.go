package step

import (
	"github.com/stash-backup/stash/internal/repository/retention"

	"context"
	"fmt"
	"time"

	"github.com/stash-backup/stash/internal/repository"
)

// applyRetention forgets (and prunes) snapshots by the --retention-*
// flags after a successful backup, for each (host, path) the backup wrote
// (taken). It returns nil when the flags set no policy; an error is in
// the result, not returned: the backup's snapshots are committed whatever
// retention does.
//
// Only inv's snapshots are decided: another BackupConfiguration writing
// the same host and path into the Repository keeps its own, by its own
// policy. The snapshots just taken are always kept, which matters to a
// policy of keepTags alone.
func (o *Options) applyRetention(ctx context.Context, r *repository.Repository, inv repository.Invoker, taken []repository.SnapshotStats) *RetentionOutput {
	p := retention.FromAPI(o.Retention)
	if p.Empty() {
		o.maintain(ctx, r)
		return nil
	}
	type source struct{ host, path string }
	var sources []source
	seen := map[source]bool{}
	for _, s := range taken {
		p.KeepIDs = append(p.KeepIDs, s.Name)
		src := source{orStr(s.Host, o.Hostname), s.Path}
		if !seen[src] {
			seen[src] = true
			sources = append(sources, src)
		}
	}
	out := &RetentionOutput{DryRun: o.Retention.DryRun}
	for _, src := range sources {
		res, err := r.Forget(ctx, p, repository.Filter{Host: src.host, Path: src.path, Invoker: &inv}, o.Retention.DryRun)
		if err != nil {
			out.Error = fmt.Sprintf("apply retention policy to %s: %v", src.path, err)
			return out
		}
		out.SnapshotsRemoved += res.Removed
		if res.DryRun {
			// A dry run is for reading what would go.
			for _, g := range res.Groups {
				for _, d := range g.Decisions {
					if !d.Keep {
						fmt.Fprintf(o.log(), "stash: retention dry run: would forget snapshot %s of %s (%s)\n",
							d.Snapshot.ShortID(), src.path, d.Snapshot.Time.Format(time.RFC3339))
					}
				}
			}
		}
	}
	if o.Retention.Prune && !o.Retention.DryRun {
		if _, err := r.Prune(ctx); err != nil {
			out.Error = fmt.Sprintf("prune: %v", err)
			return out
		}
		out.Pruned = true
	} else if !o.Retention.DryRun {
		o.maintain(ctx, r)
	}
	return out
}

// maintain runs kopia's safe maintenance when it is due, for repositories
// that never prune. The snapshot is already committed: a failure is a
// warning, and the next backup tries again.
func (o *Options) maintain(ctx context.Context, r *repository.Repository) {
	if _, err := r.Maintain(ctx); err != nil {
		o.warn("repository maintenance: %v (the backup is committed; the next backup retries)", err)
	}
}
