package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kopia/kopia/snapshot"
)

// ErrSnapshotNotFound is returned when no snapshot matches a request.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// Filter selects snapshots; empty fields match everything.
type Filter struct {
	Host string
	Path string
	// Tags must all be present with equal values (an empty value matches
	// any value).
	Tags map[string]string
	// Invoker, when set, selects the snapshots of that invoker (InvokerOf);
	// a pointer to the zero Invoker selects those that name none.
	Invoker *Invoker
}

// Match reports whether s passes the filter; a snapshot of several
// paths matches any of them.
func (f Filter) Match(s Snapshot) bool { return f.match(s) }

func (f Filter) match(s Snapshot) bool {
	if f.Host != "" && s.Host != f.Host {
		return false
	}
	if f.Path != "" && s.Path != f.Path && !slices.Contains(s.Paths, f.Path) {
		return false
	}
	for k, v := range f.Tags {
		got, ok := s.Tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	if f.Invoker != nil && InvokerOf(s) != *f.Invoker {
		return false
	}
	return true
}

// Snapshots lists the complete snapshots matching f, oldest first.
func (r *Reader) Snapshots(ctx context.Context, f Filter) ([]Snapshot, error) {
	sources, err := snapshot.ListSources(ctx, r.rep)
	if err != nil {
		return nil, fmt.Errorf("list snapshot sources: %w", err)
	}
	var out []Snapshot
	for _, src := range sources {
		if f.Host != "" && src.Host != f.Host {
			continue
		}
		if f.Path != "" && src.Path != f.Path {
			continue
		}
		mans, err := snapshot.ListSnapshots(ctx, r.rep, src)
		if err != nil {
			return nil, fmt.Errorf("list snapshots of %s: %w", src, err)
		}
		for _, m := range mans {
			if m.IncompleteReason != "" {
				continue
			}
			s := fromManifest(m)
			if f.match(s) {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Latest is the snapshot reference that resolves to the newest snapshot.
const Latest = "latest"

// Resolve finds one snapshot: "latest" (or "") is the newest matching f;
// anything else is a snapshot ID or a unique prefix of one (at least four
// characters), which must also match f.
func (r *Reader) Resolve(ctx context.Context, ref string, f Filter) (Snapshot, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return Snapshot{}, err
	}
	return ResolveIn(snaps, ref, f)
}

// ResolveIn is Resolve over snaps, the snapshots matching f oldest
// first.
func ResolveIn(snaps []Snapshot, ref string, f Filter) (Snapshot, error) {
	if ref == "" || ref == Latest {
		if len(snaps) == 0 {
			return Snapshot{}, fmt.Errorf("%w: no snapshot%s", ErrSnapshotNotFound, f.describe())
		}
		return snaps[len(snaps)-1], nil
	}
	if len(ref) < 4 {
		return Snapshot{}, fmt.Errorf("snapshot ID %q is too short: give at least 4 characters, or %q", ref, Latest)
	}
	var found []Snapshot
	for _, s := range snaps {
		if s.ID == ref {
			return s, nil
		}
		if strings.HasPrefix(s.ID, ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return Snapshot{}, fmt.Errorf("%w: no snapshot %q%s", ErrSnapshotNotFound, ref, f.describe())
	case 1:
		return found[0], nil
	}
	return Snapshot{}, fmt.Errorf("snapshot ID %q is ambiguous (%d snapshots start with it): give more characters", ref, len(found))
}

func (f Filter) describe() string {
	var parts []string
	if f.Host != "" {
		parts = append(parts, "host "+f.Host)
	}
	if f.Path != "" {
		parts = append(parts, "path "+f.Path)
	}
	for k, v := range f.Tags {
		parts = append(parts, "tag "+k+"="+v)
	}
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, ", ")
}
