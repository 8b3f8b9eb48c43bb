package restic

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/stash-backup/stash/internal/repository"
)

// ImportTag is the tag an imported snapshot carries: the full ID of the
// restic snapshot it was copied from, so that a second import skips it.
const ImportTag = "stash.appscode.com/restic-snapshot"

// ImportOptions select what Import copies.
type ImportOptions struct {
	// Snapshots are restic snapshot IDs (or unique prefixes); empty means
	// every snapshot Filter matches.
	Snapshots []string
	// Filter selects by host, path and tags.
	Filter repository.Filter
	// Progress, if set, is told of each snapshot as it starts and ends.
	Progress func(ImportEvent)
	// Bytes, if set, is told of bytes read as they are copied.
	Bytes repository.Progress
}

// ImportEvent reports one snapshot of an import.
type ImportEvent struct {
	// Index counts the snapshots to copy, from 1 to Total.
	Index, Total int
	From         repository.Snapshot
	// Done is false when the copy starts, true when it ended; Result is
	// then set.
	Done   bool
	Result *ImportedSnapshot
}

// ImportedSnapshot is one snapshot an import copied.
type ImportedSnapshot struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Host       string    `json:"host"`
	Path       string    `json:"path"`
	Time       time.Time `json:"time"`
	Bytes      int64     `json:"bytes"`
	Uploaded   int64     `json:"uploadedBytes"`
	DurationMS int64     `json:"durationMs"`
	// Warnings say what the copy could not keep as it was.
	Warnings []string `json:"warnings,omitempty"`
}

// ImportResult sums up an import.
type ImportResult struct {
	Imported []ImportedSnapshot `json:"imported"`
	// Skipped counts the chosen snapshots an earlier import copied.
	Skipped    int   `json:"skipped"`
	Bytes      int64 `json:"bytes"`
	Uploaded   int64 `json:"uploadedBytes"`
	DurationMS int64 `json:"durationMs"`
}

// Import copies restic snapshots into dst, oldest first, each with its
// time, host, path and tags, and the tag ImportTag naming its origin.
// Snapshots copied before (found by that tag in dst) are skipped, so an
// import run again copies only what is new; within dst, data already
// there is not stored twice. Nothing is written to the restic repository.
func (r *Reader) Import(ctx context.Context, dst *repository.Repository, o ImportOptions) (*ImportResult, error) {
	start := time.Now()
	if err := r.repo.CheckLocks(ctx); err != nil {
		return nil, err
	}
	chosen, err := r.chooseImport(ctx, o)
	if err != nil {
		return nil, err
	}
	have, err := dst.Snapshots(ctx, repository.Filter{Tags: map[string]string{ImportTag: ""}})
	if err != nil {
		return nil, fmt.Errorf("list the snapshots imported before: %w", err)
	}
	done := map[string]bool{}
	for _, s := range have {
		done[s.Tags[ImportTag]] = true
	}
	res := &ImportResult{}
	var todo []snapshot
	for _, s := range chosen {
		if done[s.ID] {
			res.Skipped++
			continue
		}
		todo = append(todo, s)
	}
	for i, s := range todo {
		if o.Progress != nil {
			o.Progress(ImportEvent{Index: i + 1, Total: len(todo), From: s.Snapshot})
		}
		imp, err := r.importOne(ctx, dst, s, o.Bytes)
		if err != nil {
			return res, fmt.Errorf("import snapshot %s (host %s, %s): %w", s.ShortID(), s.Host, s.Path, err)
		}
		res.Imported = append(res.Imported, *imp)
		res.Bytes += imp.Bytes
		res.Uploaded += imp.Uploaded
		if o.Progress != nil {
			o.Progress(ImportEvent{Index: i + 1, Total: len(todo), From: s.Snapshot, Done: true, Result: imp})
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, nil
}

// chooseImport returns the snapshots o names, oldest first.
func (r *Reader) chooseImport(ctx context.Context, o ImportOptions) ([]snapshot, error) {
	all, err := r.all(ctx)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, ref := range o.Snapshots {
		s, err := r.Resolve(ctx, ref, o.Filter)
		if err != nil {
			return nil, err
		}
		want[s.ID] = true
	}
	var out []snapshot
	for _, s := range all {
		if len(want) > 0 && !want[s.ID] || len(want) == 0 && !o.Filter.Match(s.Snapshot) {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Reader) importOne(ctx context.Context, dst *repository.Repository, s snapshot, p repository.Progress) (*ImportedSnapshot, error) {
	start := time.Now()
	tags := maps.Clone(s.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[ImportTag] = s.ID
	bo := repository.BackupOptions{Host: s.Host, Tags: tags, Time: s.Time, EndTime: s.EndTime, Progress: p}
	var stats *repository.SnapshotStats
	var err error
	v := &view{r: r.repo, inflight: 2}
	if s.Stream {
		var cr *contentReader
		cr, err = r.repo.newContentReader(ctx, s.root.Content, r.streamAhead())
		if err != nil {
			return nil, err
		}
		defer cr.Close()
		stats, err = dst.BackupStream(ctx, s.Path, cr, bo)
	} else {
		root, rerr := v.rootEntry(s.root)
		if rerr != nil {
			return nil, rerr
		}
		// The walk has seen every file once the source is read: the
		// snapshot records restic's hard links, which a restore makes
		// again.
		bo.HardLinks = v.linkGroups
		stats, err = dst.BackupEntry(ctx, root, s.Path, bo)
	}
	if err != nil {
		return nil, err
	}
	imp := &ImportedSnapshot{
		From: s.ID, To: stats.Name, Host: s.Host, Path: s.Path, Time: s.Time,
		Bytes: stats.TotalBytes, Uploaded: stats.UploadedBytes, DurationMS: time.Since(start).Milliseconds(),
		Warnings: v.lost(),
	}
	return imp, nil
}
