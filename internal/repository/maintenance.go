package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/content/index"
	"github.com/kopia/kopia/repo/content/indexblob"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot/snapshotfs"
	"github.com/kopia/kopia/snapshot/snapshotgc"
	"github.com/kopia/kopia/snapshot/snapshotmaintenance"

	"github.com/stash-backup/stash/internal/repository/location"
)

// Prune modes.
const (
	// PruneImmediate freed unreferenced data at once, holding the
	// repository exclusively.
	PruneImmediate = "immediate"
	// PruneDeferred ran kopia's safe maintenance because another client
	// was writing: unreferenced data is freed by a later prune, once it has
	// been unreferenced for 24 hours.
	PruneDeferred = "deferred"
)

// PruneResult reports what a prune freed.
type PruneResult struct {
	Mode        string `json:"mode"`
	Reason      string `json:"reason,omitempty"`
	SizeBefore  int64  `json:"sizeBefore"`
	SizeAfter   int64  `json:"sizeAfter"`
	FreedBytes  int64  `json:"freedBytes"`
	BlobsBefore int    `json:"blobsBefore"`
	BlobsAfter  int    `json:"blobsAfter"`
}

// Prune runs full maintenance so that data no snapshot references is
// deleted from the storage. When no other client holds the repository it
// frees the data at once; otherwise it runs kopia's concurrency-safe
// maintenance and says so in the result.
func (r *Repository) Prune(ctx context.Context) (*PruneResult, error) {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return nil, errors.New("prune needs direct storage access")
	}
	before, nBefore, err := storageSize(ctx, r.st)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{SizeBefore: before, BlobsBefore: nBefore}
	safety := maintenance.SafetyFull
	excl, who, err := r.lockExclusiveNow(ctx)
	switch {
	case err == nil:
		defer excl.Release()
		safety = maintenance.SafetyNone
		res.Mode = PruneImmediate
	case errors.Is(err, errBusy):
		res.Mode = PruneDeferred
		res.Reason = "repository in use by " + who + ": unreferenced data is freed by a later prune once 24 hours old"
	default:
		return nil, err
	}
	if res.Mode == PruneImmediate {
		r.deletes.set(excl.Check)
		err = pruneNow(ctx, dr, r.opts.parallelism(), func() error { return r.stillExclusive(ctx, excl) })
		r.deletes.set(nil)
	} else {
		// kopia's safe maintenance writes packs of its own (rewritten
		// contents) before it indexes them: it holds the shared lock, as
		// a backup does, so that no other client's immediate prune starts
		// meanwhile and deletes them as unreferenced.
		shared, lerr := r.lockShared(ctx)
		if lerr != nil {
			return nil, fmt.Errorf("prune: %w", lerr)
		}
		err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "stash prune"},
			func(ctx context.Context, w repo.DirectRepositoryWriter) error {
				return snapshotmaintenance.Run(ctx, w, maintenance.ModeFull, true, safety)
			})
		shared.Release()
	}
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	after, nAfter, err := storageSize(ctx, r.st)
	if err != nil {
		return nil, err
	}
	res.SizeAfter, res.BlobsAfter = after, nAfter
	res.FreedBytes = max(before-after, 0)
	return res, nil
}

// Maintain runs kopia's concurrency-safe maintenance when it is due (quick
// hourly, full daily, by the repository's maintenance schedule) and does
// nothing otherwise. It is for repositories that never prune: without it
// their indexes and short packs grow with every backup, and data no
// snapshot references is never freed. It deletes only what has been
// unreferenced for kopia's safety margins, so it is safe beside other
// writers, kopia's own clients included. It reports whether it ran.
func (r *Repository) Maintain(ctx context.Context) (bool, error) {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return false, errors.New("maintenance needs direct storage access")
	}
	mode, err := maintenanceDue(ctx, dr, dr.Time())
	if err != nil || mode == maintenance.ModeNone {
		return false, err
	}
	// Held shared for the reason a deferred prune holds it: no immediate
	// prune may delete the packs this writes before they are indexed.
	shared, err := r.lockShared(ctx)
	if err != nil {
		return false, fmt.Errorf("maintenance: %w", err)
	}
	defer shared.Release()
	err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "stash maintenance"},
		func(ctx context.Context, w repo.DirectRepositoryWriter) error {
			return snapshotmaintenance.Run(ctx, w, mode, false, maintenance.SafetyFull)
		})
	if err != nil {
		return false, fmt.Errorf("%s maintenance: %w", mode, err)
	}
	return true, nil
}

// maintenanceDue is the maintenance the schedule asks for at now, if any.
func maintenanceDue(ctx context.Context, dr repo.DirectRepository, now time.Time) (maintenance.Mode, error) {
	p, err := maintenance.GetParams(ctx, dr)
	if err != nil {
		return maintenance.ModeNone, fmt.Errorf("read maintenance schedule: %w", err)
	}
	s, err := maintenance.GetSchedule(ctx, dr)
	if err != nil {
		return maintenance.ModeNone, fmt.Errorf("read maintenance schedule: %w", err)
	}
	switch {
	case p.FullCycle.Enabled && !now.Before(s.NextFullMaintenanceTime):
		return maintenance.ModeFull, nil
	case p.QuickCycle.Enabled && !now.Before(s.NextQuickMaintenanceTime):
		return maintenance.ModeQuick, nil
	}
	return maintenance.ModeNone, nil
}

func storageSize(ctx context.Context, st blob.Storage) (int64, int, error) {
	var total int64
	var n int
	err := st.ListBlobs(ctx, "", func(md blob.Metadata) error {
		total += md.Length
		n++
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list storage: %w", err)
	}
	return total, n, nil
}

// CheckResult reports an integrity check.
type CheckResult struct {
	OK            bool     `json:"ok"`
	Snapshots     int      `json:"snapshots"`
	Objects       int64    `json:"objects"`
	ReadData      bool     `json:"readData"`
	BytesRead     int64    `json:"bytesRead"`
	Errors        []string `json:"errors,omitempty"`
	ContentsCheck string   `json:"contentsCheck"`
}

// maxCheckErrors bounds the errors a check collects before it stops.
const maxCheckErrors = 100

// Check verifies the repository: every index entry points into a pack blob
// that exists with the right size, and every file and directory of every
// snapshot resolves to contents in the index. With readData, it also
// reads, decrypts and hash-verifies all data.
func (r *Reader) Check(ctx context.Context, readData bool) (*CheckResult, error) {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return nil, errors.New("check needs direct storage access")
	}
	unlock, err := r.lockForRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &CheckResult{ReadData: readData, ContentsCheck: "ok"}
	pct := 0.0
	if readData {
		pct = 100
	}
	if err := dr.ContentReader().VerifyContents(ctx, content.VerifyOptions{
		ContentReadPercentage:     pct,
		ContentIterateParallelism: r.opts.parallelism(),
	}); err != nil {
		res.ContentsCheck = err.Error()
		res.Errors = append(res.Errors, "contents: "+err.Error())
	}
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(snaps)
	var objects, bytesRead atomic.Int64
	for _, s := range snaps {
		if len(res.Errors) >= maxCheckErrors {
			break
		}
		root, err := snapshotfs.SnapshotRoot(r.rep, s.man)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("snapshot %s: %v", s.ShortID(), err))
			continue
		}
		r.checkEntry(ctx, s, "", root, readData, &objects, &bytesRead, res)
	}
	res.Objects = objects.Load()
	res.BytesRead = bytesRead.Load()
	res.OK = len(res.Errors) == 0
	return res, nil
}

func (r *Reader) checkEntry(ctx context.Context, s Snapshot, rel string, e fs.Entry, readData bool, objects, bytesRead *atomic.Int64, res *CheckResult) {
	if len(res.Errors) >= maxCheckErrors {
		return
	}
	fail := func(err error) {
		res.Errors = append(res.Errors, fmt.Sprintf("snapshot %s (%s %s) /%s: %v", s.ShortID(), s.Host, s.Path, rel, err))
	}
	if h, ok := e.(object.HasObjectID); ok {
		objects.Add(1)
		if _, err := r.rep.VerifyObject(ctx, h.ObjectID()); err != nil {
			fail(err)
			return
		}
		if readData && !e.IsDir() {
			n, err := r.copyObject(ctx, h.ObjectID(), discard{}, nil)
			bytesRead.Add(n)
			if err != nil {
				fail(err)
				return
			}
		}
	}
	dir, ok := e.(fs.Directory)
	if !ok {
		return
	}
	err := fs.IterateEntries(ctx, dir, func(ctx context.Context, child fs.Entry) error {
		name := child.Name()
		if rel != "" {
			name = rel + "/" + name
		}
		r.checkEntry(ctx, s, name, child, readData, objects, bytesRead, res)
		return nil
	})
	if err != nil {
		fail(err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Stats describes a repository's size and contents.
type Stats struct {
	Location      string `json:"location"`
	SnapshotCount int    `json:"snapshotCount"`
	Hosts         int    `json:"hosts"`
	TotalSize     string `json:"totalSize"`
	TotalBytes    int64  `json:"totalBytes"`
	Blobs         int    `json:"blobs"`
	// LogicalBytes is the sum of the sizes of all snapshots' data, before
	// deduplication and compression.
	LogicalBytes int64 `json:"logicalBytes"`
}

// Stats returns the repository's size in storage and its snapshot count.
func (r *Reader) Stats(ctx context.Context) (*Stats, error) {
	size, n, err := storageSize(ctx, r.st)
	if err != nil {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	hosts := map[string]bool{}
	var logical int64
	for _, s := range snaps {
		hosts[s.Host] = true
		logical += s.TotalSize
	}
	return &Stats{
		Location: r.opts.Location.String(), SnapshotCount: len(snaps), Hosts: len(hosts),
		TotalSize: FormatBytes(size), TotalBytes: size, Blobs: n, LogicalBytes: logical,
	}, nil
}

// pruneNow frees unreferenced data at once; the caller holds the exclusive
// lock, and stillExclusive re-checks it before each destructive phase. kopia's full maintenance rewrites short packs before it drops
// deleted contents, which copies dead data into new packs; here the order
// is: mark what no snapshot references, drop it from the indexes, delete
// packs left with no live content, then compact packs that are mostly dead
// and delete the packs that emptied.
func pruneNow(ctx context.Context, dr repo.DirectRepository, parallel int, stillExclusive func() error) error {
	safety := maintenance.SafetyNone
	return repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "stash prune"},
		func(ctx context.Context, w repo.DirectRepositoryWriter) error {
			return maintenance.RunExclusive(ctx, w, maintenance.ModeFull, true, func(ctx context.Context, rp maintenance.RunParameters) error {
				if err := stillExclusive(); err != nil {
					return err
				}
				if err := snapshotgc.Run(ctx, w, true, safety, rp.MaintenanceStartTime); err != nil {
					return fmt.Errorf("mark unreferenced data: %w", err)
				}
				dropAndDelete := func() error {
					if err := w.Flush(ctx); err != nil {
						return err
					}
					// Index entries keep whole-second deletion times and
					// only those strictly older than the cut-off drop.
					if err := sleepCtx(ctx, time.Until(time.Now().Truncate(time.Second).Add(1100*time.Millisecond))); err != nil {
						return err
					}
					if err := stillExclusive(); err != nil {
						return err
					}
					if _, err := w.ContentManager().CompactIndexes(ctx, indexblob.CompactOptions{
						AllIndexes: true, DropDeletedBefore: w.Time(), DisableEventualConsistencySafety: true,
					}); err != nil {
						return fmt.Errorf("drop deleted contents: %w", err)
					}
					if _, err := maintenance.DeleteUnreferencedPacks(ctx, w, maintenance.DeleteUnreferencedPacksOptions{
						Parallel: parallel, NotAfterTime: w.Time(),
					}, safety); err != nil {
						return fmt.Errorf("delete unreferenced packs: %w", err)
					}
					return nil
				}
				if err := dropAndDelete(); err != nil {
					return err
				}
				if err := stillExclusive(); err != nil {
					return err
				}
				if _, err := maintenance.RewriteContents(ctx, w, &maintenance.RewriteContentsOptions{
					Parallel: parallel, ContentIDRange: index.AllIDs, ShortPacks: true,
				}, safety); err != nil {
					return fmt.Errorf("compact packs: %w", err)
				}
				return dropAndDelete()
			})
		})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Wipe deletes every blob of the repository at opts.Location: all
// snapshots and all data. It first opens the repository, so only someone
// holding its password can wipe it, and a location that holds no Stash
// repository is never touched. A location that also holds a restic
// repository is refused (ErrForeignRepository), and of what shares the
// prefix only blobs this project writes are deleted. It returns how many
// blobs it deleted.
func Wipe(ctx context.Context, opts Options) (int, error) {
	r, err := OpenReader(ctx, opts)
	if err != nil {
		return 0, err
	}
	if err := r.Close(ctx); err != nil {
		return 0, err
	}
	st, err := newStorage(ctx, opts.Location, false)
	if err != nil {
		return 0, err
	}
	defer st.Close(ctx) //nolint:errcheck
	if found, err := holdsRestic(ctx, opts.Location, st); err != nil {
		return 0, err
	} else if found {
		return 0, fmt.Errorf("%w (Stash's format) beside this one at %s: wipe refuses, since deleting by prefix could take Stash's backups with it; move this repository's snapshots elsewhere with `stash repo import`, or delete the restic repository first with its own tools", ErrForeignRepository, opts.Location)
	}
	var ids []blob.ID
	if err := st.ListBlobs(ctx, "", func(m blob.Metadata) error {
		if ownBlob.MatchString(string(m.BlobID)) {
			ids = append(ids, m.BlobID)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("list blobs of %s: %w", opts.Location, err)
	}
	// The format blob goes last, so an interrupted wipe leaves a
	// repository that still opens and can be wiped again.
	sort.Slice(ids, func(i, j int) bool { return !isFormatBlob(ids[i]) && isFormatBlob(ids[j]) })
	for i, id := range ids {
		if err := st.DeleteBlob(ctx, id); err != nil && !errors.Is(err, blob.ErrBlobNotFound) {
			return i, fmt.Errorf("delete blob %s of %s: %w", id, opts.Location, err)
		}
	}
	if opts.Location.Kind == location.KindLocal {
		// kopia's record of the directory layout, which it wrote.
		if err := os.Remove(filepath.Join(opts.Location.Filesystem.Path, ".shards")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return len(ids), fmt.Errorf("remove %s: %w", filepath.Join(opts.Location.Filesystem.Path, ".shards"), err)
		}
	}
	return len(ids), nil
}

func isFormatBlob(id blob.ID) bool {
	return id == format.KopiaRepositoryBlobID || id == format.KopiaBlobCfgBlobID
}
