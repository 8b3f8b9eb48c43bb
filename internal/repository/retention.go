package repository

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// Policy is Stash's retention policy in numbers. Zero means "not used";
// a policy with nothing set keeps everything.
type Policy struct {
	KeepLast    int      `json:"keepLast,omitempty"`
	KeepHourly  int      `json:"keepHourly,omitempty"`
	KeepDaily   int      `json:"keepDaily,omitempty"`
	KeepWeekly  int      `json:"keepWeekly,omitempty"`
	KeepMonthly int      `json:"keepMonthly,omitempty"`
	KeepYearly  int      `json:"keepYearly,omitempty"`
	KeepTags    []string `json:"keepTags,omitempty"`
	// KeepIDs are snapshots kept whatever the rest says: the one a backup
	// step just took, which a policy of keepTags alone would otherwise
	// remove at once, since a new snapshot carries none of them.
	KeepIDs []string `json:"-"`
}

// PolicyFromAPI converts a Stash RetentionPolicy.
func PolicyFromAPI(p stashv1alpha1.RetentionPolicy) Policy {
	return Policy{
		KeepLast: int(p.KeepLast), KeepHourly: int(p.KeepHourly), KeepDaily: int(p.KeepDaily),
		KeepWeekly: int(p.KeepWeekly), KeepMonthly: int(p.KeepMonthly), KeepYearly: int(p.KeepYearly),
		KeepTags: p.KeepTags,
	}
}

// Empty reports whether the policy keeps everything.
func (p Policy) Empty() bool {
	return p.KeepLast <= 0 && p.KeepHourly <= 0 && p.KeepDaily <= 0 && p.KeepWeekly <= 0 &&
		p.KeepMonthly <= 0 && p.KeepYearly <= 0 && len(p.KeepTags) == 0
}

// Decision is the verdict on one snapshot.
type Decision struct {
	Snapshot Snapshot `json:"snapshot"`
	Keep     bool     `json:"keep"`
	// Reasons says why a kept snapshot is kept ("last snapshot",
	// "daily snapshot", "tag keep=yes", …).
	Reasons []string `json:"reasons,omitempty"`
}

// Group is the snapshots of one (host, path, invoker), decided.
type Group struct {
	Host string `json:"host"`
	Path string `json:"path"`
	// Invoker is the BackupConfiguration (or other invoker) whose sessions
	// took the group's snapshots, "namespace/Kind/name"; empty for the
	// snapshots that name none (imported ones, older ones).
	Invoker   string     `json:"invoker,omitempty"`
	Decisions []Decision `json:"decisions"`
}

type bucket struct {
	reason string
	count  int
	key    func(time.Time) string
}

// ApplyPolicy decides, per (host, path, invoker) group, which snapshots
// the policy keeps, as restic's forget does: within a group, newest first,
// a snapshot is kept when it carries a kept tag, is among the last N, or
// is the newest of an hour, day, ISO week, month or year that still has a
// quota. Times are compared in UTC. It is pure.
//
// The invoker is part of the group because Stash lets several
// BackupConfigurations write the same host and path into one Repository
// (two databases of one server, both host-0, both dumpfile.sql): grouped
// by host and path only, each one's keepLast would count the other's
// snapshots and forget them.
func ApplyPolicy(snaps []Snapshot, p Policy) []Group {
	groups := map[[3]string][]Snapshot{}
	for _, s := range snaps {
		k := [3]string{s.Host, s.Path, InvokerOf(s).String()}
		groups[k] = append(groups[k], s)
	}
	keys := make([][3]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		for n := range keys[i] {
			if keys[i][n] != keys[j][n] {
				return keys[i][n] < keys[j][n]
			}
		}
		return false
	})
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		out = append(out, Group{Host: k[0], Path: k[1], Invoker: k[2], Decisions: decideGroup(groups[k], p)})
	}
	return out
}

func decideGroup(snaps []Snapshot, p Policy) []Decision {
	sorted := append([]Snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Time.Equal(sorted[j].Time) {
			return sorted[i].Time.After(sorted[j].Time)
		}
		return sorted[i].ID > sorted[j].ID
	})
	buckets := []*bucket{
		{reason: "last snapshot", count: p.KeepLast, key: nil},
		{reason: "hourly snapshot", count: p.KeepHourly, key: func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{reason: "daily snapshot", count: p.KeepDaily, key: func(t time.Time) string { return t.Format("2006-01-02") }},
		{reason: "weekly snapshot", count: p.KeepWeekly, key: func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{reason: "monthly snapshot", count: p.KeepMonthly, key: func(t time.Time) string { return t.Format("2006-01") }},
		{reason: "yearly snapshot", count: p.KeepYearly, key: func(t time.Time) string { return t.Format("2006") }},
	}
	last := make([]string, len(buckets))
	empty := p.Empty()
	out := make([]Decision, 0, len(sorted))
	for _, s := range sorted {
		d := Decision{Snapshot: s}
		if empty {
			d.Keep, d.Reasons = true, []string{"no retention policy set"}
			out = append(out, d)
			continue
		}
		if slices.Contains(p.KeepIDs, s.ID) {
			d.Reasons = append(d.Reasons, "snapshot just taken")
		}
		for _, t := range p.KeepTags {
			if hasTag(s, t) {
				d.Reasons = append(d.Reasons, "tag "+t)
			}
		}
		for i, b := range buckets {
			if b.count <= 0 {
				continue
			}
			if b.key == nil {
				d.Reasons = append(d.Reasons, b.reason)
				b.count--
				continue
			}
			k := b.key(s.Time.UTC())
			if k != last[i] {
				d.Reasons = append(d.Reasons, b.reason)
				last[i] = k
				b.count--
			}
		}
		d.Keep = len(d.Reasons) > 0
		out = append(out, d)
	}
	return out
}

// hasTag reports whether s carries tag spec "key" or "key=value".
func hasTag(s Snapshot, spec string) bool {
	k, v, withValue := strings.Cut(spec, "=")
	got, ok := s.Tags[k]
	if !ok {
		return false
	}
	return !withValue || got == v
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
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("forget snapshots: %w", err)
	}
	return res, nil
}
