package restic

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/repository"
)

// maxCheckErrors bounds the errors a check reports.
const maxCheckErrors = 100

// Check verifies the restic repository as `restic check` does, reading
// only: every pack the index names exists and is long enough, every tree
// of every snapshot loads (MAC and hash verified) and names only blobs the
// index holds; with readData, every blob of every pack is read and
// verified too.
func (r *Reader) Check(ctx context.Context, readData bool) (*repository.CheckResult, error) {
	res := &repository.CheckResult{ReadData: readData, ContentsCheck: "restic"}
	var mu sync.Mutex
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(res.Errors) < maxCheckErrors {
			res.Errors = append(res.Errors, fmt.Sprintf(format, a...))
		}
	}
	if err := r.repo.loadIndex(ctx); err != nil {
		fail("%v", err)
		return res, nil
	}
	sizes := map[ID]int64{}
	if err := r.repo.be.List(ctx, PackFile, func(name string, size int64) error {
		id, err := ParseID(name)
		if err == nil {
			sizes[id] = size
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	need := map[ID]int64{}
	byPack := map[ID][]blobKey{}
	for k, loc := range r.repo.index {
		need[loc.pack] = max(need[loc.pack], int64(loc.offset+loc.length))
		if readData {
			byPack[loc.pack] = append(byPack[loc.pack], k)
		}
	}
	for p, n := range need {
		size, ok := sizes[p]
		switch {
		case !ok:
			fail("pack %s is named by the index but missing from storage", short(p.String()))
		case size < n:
			fail("pack %s is %d bytes, shorter than the %d its blobs need: truncated", short(p.String()), size, n)
		}
	}
	snaps, err := r.all(ctx)
	if err != nil {
		fail("%v", err)
		return res, nil
	}
	res.Snapshots = len(snaps)
	for _, sk := range r.repo.Skipped() {
		fail("%s", sk)
	}
	// Trees are walked level by level, each level's trees loaded in
	// parallel.
	type treeRef struct {
		id    ID
		where string
	}
	var objects atomic.Int64
	seen := map[ID]bool{}
	var level []treeRef
	for _, s := range snaps {
		if !seen[s.tree] {
			seen[s.tree] = true
			level = append(level, treeRef{s.tree, "snapshot " + s.ShortID()})
		}
	}
	for len(level) > 0 {
		loaded := make([][]*Node, len(level))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.parallelism())
		for i, t := range level {
			g.Go(func() error {
				nodes, err := r.repo.LoadTree(gctx, t.id)
				if err != nil {
					fail("%s: %v", t.where, err)
					return nil
				}
				loaded[i] = nodes
				return gctx.Err()
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		var next []treeRef
		for i, nodes := range loaded {
			if nodes == nil {
				continue
			}
			objects.Add(1)
			for _, n := range nodes {
				switch n.Type {
				case "dir":
					if !seen[*n.Subtree] {
						seen[*n.Subtree] = true
						next = append(next, treeRef{*n.Subtree, level[i].where + "/" + n.Name})
					}
				case "file":
					for _, c := range n.Content {
						if _, ok := r.repo.index[blobKey{c, DataBlob}]; !ok {
							fail("%s/%s: data blob %s is not in the index", level[i].where, n.Name, short(c.String()))
						} else if !seen[c] {
							seen[c] = true
							objects.Add(1)
						}
					}
				}
			}
		}
		level = next
	}
	res.Objects = objects.Load()
	if readData {
		var read atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.parallelism())
		for p, keys := range byPack {
			if _, ok := sizes[p]; !ok {
				continue
			}
			g.Go(func() error {
				raw, err := r.repo.be.Get(gctx, PackFile, p.String(), 0, -1)
				if err != nil {
					fail("read pack %s: %v", short(p.String()), err)
					return nil
				}
				read.Add(int64(len(raw)))
				for _, k := range keys {
					loc := r.repo.index[k]
					if int64(loc.offset+loc.length) > int64(len(raw)) {
						continue // reported above
					}
					if _, err := r.repo.decodeBlob(k.t, k.id, loc, raw[loc.offset:loc.offset+loc.length], nil); err != nil {
						fail("%v", err)
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		res.BytesRead = read.Load()
	}
	res.OK = len(res.Errors) == 0
	return res, nil
}

// Stats reports the restic repository's size in storage, its snapshots
// and hosts, and the blobs its index holds.
func (r *Reader) Stats(ctx context.Context) (*repository.Stats, error) {
	snaps, err := r.all(ctx)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, t := range []FileType{KeyFile, SnapshotFile, IndexFile, PackFile} {
		if err := r.repo.be.List(ctx, t, func(_ string, size int64) error {
			total += size
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list %s: %w", t, err)
		}
	}
	hosts := map[string]bool{}
	var logical int64
	for _, s := range snaps {
		hosts[s.Host] = true
		logical += s.TotalSize
	}
	return &repository.Stats{
		Location:      r.repo.be.String() + " (restic format " + fmt.Sprint(r.repo.config.Version) + ")",
		SnapshotCount: len(snaps),
		Hosts:         len(hosts),
		TotalSize:     repository.FormatBytes(total),
		TotalBytes:    total,
		Blobs:         len(r.repo.index),
		LogicalBytes:  logical,
	}, nil
}
