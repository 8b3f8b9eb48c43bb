// Package retention decides which snapshots a Stash retention policy
// keeps, as restic's forget does. It is pure: the repository lists the
// snapshots and deletes what is not kept.
package retention

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

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

// FromAPI converts a Stash RetentionPolicy.
func FromAPI(p stashv1alpha1.RetentionPolicy) Policy {
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

// Snapshot is what a decision needs to know of a snapshot.
type Snapshot struct {
	ID, Host, Path string
	// Invoker names the invoker whose sessions took the snapshot,
	// "namespace/Kind/name", or is empty.
	Invoker string
	Time    time.Time
	Tags    map[string]string
}

// Decision is the verdict on one snapshot, of the caller's type S.
type Decision[S any] struct {
	Snapshot S    `json:"snapshot"`
	Keep     bool `json:"keep"`
	// Reasons says why a kept snapshot is kept ("last snapshot",
	// "daily snapshot", "tag keep=yes", …).
	Reasons []string `json:"reasons,omitempty"`
}

// Group is the snapshots of one (host, path, invoker), decided.
type Group[S any] struct {
	Host string `json:"host"`
	Path string `json:"path"`
	// Invoker is the BackupConfiguration (or other invoker) whose sessions
	// took the group's snapshots, "namespace/Kind/name"; empty for the
	// snapshots that name none (imported ones, older ones).
	Invoker   string        `json:"invoker,omitempty"`
	Decisions []Decision[S] `json:"decisions"`
}

type bucket struct {
	reason string
	count  int
	key    func(time.Time) string
}

// Apply decides, per (host, path, invoker) group, which snapshots the
// policy keeps (describe says what each of snaps is), as restic's forget does: within a group, newest first,
// a snapshot is kept when it carries a kept tag, is among the last N, or
// is the newest of an hour, day, ISO week, month or year that still has a
// quota. Times are compared in UTC. It is pure.
//
// The invoker is part of the group because Stash lets several
// BackupConfigurations write the same host and path into one Repository
// (two databases of one server, both host-0, both dumpfile.sql): grouped
// by host and path only, each one's keepLast would count the other's
// snapshots and forget them.
func Apply[S any](snaps []S, describe func(S) Snapshot, p Policy) []Group[S] {
	type item struct {
		s S
		d Snapshot
	}
	groups := map[[3]string][]item{}
	for _, s := range snaps {
		d := describe(s)
		k := [3]string{d.Host, d.Path, d.Invoker}
		groups[k] = append(groups[k], item{s, d})
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
	out := make([]Group[S], 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		ds := make([]Snapshot, len(g))
		for i, it := range g {
			ds[i] = it.d
		}
		dec := decideGroup(ds, p)
		// decideGroup returns its verdicts newest first, by index into g.
		group := Group[S]{Host: k[0], Path: k[1], Invoker: k[2], Decisions: make([]Decision[S], len(dec))}
		for i, d := range dec {
			group.Decisions[i] = Decision[S]{Snapshot: g[d.index].s, Keep: d.keep, Reasons: d.reasons}
		}
		out = append(out, group)
	}
	return out
}

type verdict struct {
	index   int
	keep    bool
	reasons []string
}

func decideGroup(snaps []Snapshot, p Policy) []verdict {
	order := make([]int, len(snaps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := snaps[order[i]], snaps[order[j]]
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		return a.ID > b.ID
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
	out := make([]verdict, 0, len(order))
	for _, idx := range order {
		s := snaps[idx]
		d := verdict{index: idx}
		if empty {
			d.keep, d.reasons = true, []string{"no retention policy set"}
			out = append(out, d)
			continue
		}
		if slices.Contains(p.KeepIDs, s.ID) {
			d.reasons = append(d.reasons, "snapshot just taken")
		}
		for _, t := range p.KeepTags {
			if hasTag(s, t) {
				d.reasons = append(d.reasons, "tag "+t)
			}
		}
		for i, b := range buckets {
			if b.count <= 0 {
				continue
			}
			if b.key == nil {
				d.reasons = append(d.reasons, b.reason)
				b.count--
				continue
			}
			k := b.key(s.Time.UTC())
			if k != last[i] {
				d.reasons = append(d.reasons, b.reason)
				last[i] = k
				b.count--
			}
		}
		d.keep = len(d.reasons) > 0
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
