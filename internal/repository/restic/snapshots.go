package restic

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/repository"
)

// snapshotJSON is a restic snapshot object.
type snapshotJSON struct {
	Time     time.Time `json:"time"`
	Tree     *ID       `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Tags     []string  `json:"tags"`
	Summary  *struct {
		BackupEnd  time.Time `json:"backup_end"`
		TotalFiles int64     `json:"total_files_processed"`
		TotalBytes int64     `json:"total_bytes_processed"`
	} `json:"summary"`
}

// snapshot is a restic snapshot as this project lists it, with what a
// restore needs: the tree and, for a stream, its one file.
type snapshot struct {
	repository.Snapshot
	tree ID
	// root is the node the snapshot restores: the directory at Path, or
	// the stream's file.
	root *Node
}

// loadSnapshots reads every snapshot object and its root tree.
func (r *Repository) loadSnapshots(ctx context.Context) ([]snapshot, error) {
	var names []string
	if err := r.be.List(ctx, SnapshotFile, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if err := r.loadIndex(ctx); err != nil {
		return nil, err
	}
	loaded := make([]snapshot, len(names))
	failed := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listWorkers())
	for i, name := range names {
		g.Go(func() error {
			// One damaged snapshot must not hide the others: it is left
			// out of the listing and reported (Skipped, and by Check).
			loaded[i], failed[i] = r.loadSnapshot(gctx, name)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []snapshot
	for i := range names {
		if failed[i] != nil {
			r.skipped = append(r.skipped, failed[i].Error())
			continue
		}
		out = append(out, loaded[i])
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Skipped lists the snapshots the listing left out, each with why.
func (r *Repository) Skipped() []string { return r.skipped }

func (r *Repository) loadSnapshot(ctx context.Context, name string) (snapshot, error) {
	plain, err := r.LoadUnpacked(ctx, SnapshotFile, name)
	if err != nil {
		return snapshot{}, fmt.Errorf("read snapshot: %w", err)
	}
	var sj snapshotJSON
	if err := json.Unmarshal(plain, &sj); err != nil {
		return snapshot{}, fmt.Errorf("snapshot %s is not restic's JSON: %w", short(name), err)
	}
	if sj.Tree == nil {
		return snapshot{}, fmt.Errorf("snapshot %s has no tree", short(name))
	}
	s := snapshot{tree: *sj.Tree}
	s.ID, s.Host, s.Time, s.EndTime, s.Format = name, sj.Hostname, sj.Time.UTC(), sj.Time.UTC(), "restic"
	if sj.Summary != nil {
		if !sj.Summary.BackupEnd.IsZero() {
			s.EndTime = sj.Summary.BackupEnd.UTC()
		}
		s.Files, s.TotalSize = sj.Summary.TotalFiles, sj.Summary.TotalBytes
	}
	for _, t := range sj.Tags {
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		k, v, _ := strings.Cut(t, "=")
		s.Tags[k] = v
	}
	paths := make([]string, 0, len(sj.Paths))
	for _, p := range sj.Paths {
		paths = append(paths, path.Clean("/"+strings.TrimPrefix(p, "/")))
	}
	sort.Strings(paths)
	switch len(paths) {
	case 0:
		s.Path = "/"
	case 1:
		s.Path = paths[0]
	default:
		s.Path, s.Paths = commonParent(paths), paths
	}
	// A restic snapshot holds its paths from the root ("/data/x" is the
	// tree's data, then its x); the node at Path is what it restores.
	root, err := r.Lookup(ctx, s.tree, s.Path)
	if err != nil {
		return snapshot{}, fmt.Errorf("snapshot %s: %w", short(name), err)
	}
	s.root = root
	if root.Type == "file" && len(paths) == 1 {
		// restic backup --stdin --stdin-filename NAME: a stream, which
		// this project names by its file name.
		s.Stream, s.Path = true, root.Name
		s.TotalSize, s.Files = int64(root.Size), 1
	}
	return s, nil
}

// commonParent is the longest directory that holds every path.
func commonParent(paths []string) string {
	parent := path.Dir(paths[0])
	for _, p := range paths[1:] {
		for parent != "/" && !strings.HasPrefix(p, parent+"/") {
			parent = path.Dir(parent)
		}
	}
	return parent
}

// snapshotCache keeps the listed snapshots for the life of a Reader: a
// restore resolves and then reads, and listing loads every root tree.
type snapshotCache struct {
	once  sync.Once
	snaps []snapshot
	err   error
}
