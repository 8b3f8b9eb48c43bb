package repository

import (
	"context"
	"fmt"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"

	"github.com/stash-backup/stash/internal/repository/retention"
)

// Policy is Stash's retention policy in numbers (retention.Policy).
type Policy = retention.Policy

// Decision is the verdict on one snapshot.
type Decision = retention.Decision[Snapshot]

// Group is the snapshots of one (host, path, invoker), decided.
type Group = retention.Group[Snapshot]

// ApplyPolicy decides, per (host, path, invoker) group, which snapshots
// the policy keeps (retention.Apply).
func ApplyPolicy(snaps []Snapshot, p Policy) []Group {
	return retention.Apply(snaps, func(s Snapshot) retention.Snapshot {
		return retention.Snapshot{ID: s.ID, Host: s.Host, Path: s.Path, Invoker: InvokerOf(s).String(), Time: s.Time, Tags: s.Tags}
	}, p)
}

// ForgetResult is what Forget decided and did.
type ForgetResult struct {
	Groups  []Group `json:"groups"`
	Kept    int     `json:"kept"`
	Removed int     `json:"removed"`
	DryRun  bool    `json:"dryRun"`
	// Prune is set when prune ran after the forget.
	Prune *PruneResult `json:"prune,omitempty"`
}

// Forget applies policy p to the snapshots matching f and, unless dryRun,
// deletes the snapshots it does not keep. Their data is freed by Prune.
// Each (host, path, invoker) group is decided on its own (ApplyPolicy); a
// backup step passes its invoker in f.Invoker so that it decides its own
// group only, by its own policy.
func (r *Repository) Forget(ctx context.Context, p Policy, f Filter, dryRun bool) (*ForgetResult, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{Groups: ApplyPolicy(snaps, p), DryRun: dryRun}
	var remove []manifest.ID
	for _, g := range res.Groups {
		for _, d := range g.Decisions {
			if d.Keep {
				res.Kept++
			} else {
				res.Removed++
				remove = append(remove, manifest.ID(d.Snapshot.ID))
			}
		}
	}
	if dryRun || len(remove) == 0 {
		return res, nil
	}
	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "stash forget"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			for _, id := range remove {
				if err := w.DeleteManifest(ctx, id); err != nil {
					return fmt.Errorf("delete snapshot %s: %w", id, err)
				}
			}
			return dropTreePrints(ctx, w, remove)
		})
	if err != nil {
		return nil, fmt.Errorf("forget snapshots: %w", err)
	}
	return res, nil
}
