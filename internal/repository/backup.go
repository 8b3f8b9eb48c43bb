package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/upload"

	"github.com/stash-backup/stash/internal/chunker"
	"github.com/stash-backup/stash/internal/jsonscan"
	"github.com/stash-backup/stash/internal/repository/lock"
)

// Progress receives the bytes read from the source as a backup or restore
// goes. Implementations must be safe for concurrent use.
type Progress interface {
	Add(n int64)
}

// BackupOptions describe one backup.
type BackupOptions struct {
	// Host is the Stash hostname the snapshot belongs to; required.
	Host string
	// Tags are recorded on the snapshot (backup session, invoker, …).
	Tags map[string]string
	// Exclude holds gitignore-style patterns of files not to back up
	// (directory backups only).
	Exclude []string
	// Progress, if set, is told of each chunk read from the source.
	Progress Progress
	// Time and EndTime, when set, are recorded as the snapshot's start
	// and end instead of now: an import keeps the original snapshot's.
	Time, EndTime time.Time
	// BeforeCommit, if set, runs after the source is fully read and before
	// the snapshot is recorded; an error aborts the snapshot. A dump
	// command's exit status goes here, so that a failed or truncated dump
	// never becomes a snapshot.
	BeforeCommit func() error
	// HardLinks, if set, runs once a directory's source is fully read
	// and gives the groups of paths (relative to the directory, as
	// written on disk) that are one file; the snapshot records them and
	// a restore links those files again. An import from restic sets it:
	// kopia's uploader stores each path as a file of its own.
	HardLinks func() [][]string
	// Walks holds walks of the directories to back up started ahead
	// (StartTreeWalks), by absolute path; a directory without one is
	// walked when its backup starts.
	Walks map[string]*TreeWalk
}

func (o *BackupOptions) check() error {
	if o.Host == "" {
		return errors.New("backup host is empty: pass --host (Stash uses host-0 for a single host)")
	}
	if strings.ContainsAny(o.Host, "@/") {
		return fmt.Errorf("backup host %q must not contain '@' or '/'", o.Host)
	}
	return nil
}

// streamChunk is the buffer size when copying a restored stream to its
// writer.
const streamChunk = 1 << 20

// BackupStream stores everything read from src as a snapshot holding one
// file, name (for example dumpfile.sql).
func (r *Repository) BackupStream(ctx context.Context, name string, src io.Reader, o BackupOptions) (*SnapshotStats, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("stream name %q must be a plain file name such as dumpfile.sql", name)
	}
	return r.writeSnapshot(ctx, "stash backup stream "+name, o, func(ctx context.Context, f *snapshotFrame) (*SnapshotStats, error) {
		source := snapshot.SourceInfo{Host: o.Host, UserName: clientUser, Path: name}
		prev := r.latestManifest(ctx, source)
		oid, n, err := f.stream(name).write(ctx, src)
		if err != nil {
			return nil, err
		}
		if o.BeforeCommit != nil {
			if err := o.BeforeCommit(); err != nil {
				return nil, fmt.Errorf("stream %s not committed: %w", name, err)
			}
		}
		if err := f.held.Check(); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		start, end := o.times(f.start, time.Now())
		man := &snapshot.Manifest{
			Source:      source,
			Description: "stash stream backup",
			StartTime:   fs.UTCTimestampFromTime(start),
			EndTime:     fs.UTCTimestampFromTime(end),
			RootEntry: &snapshot.DirEntry{
				Name:        name,
				Type:        snapshot.EntryTypeFile,
				Permissions: 0o600,
				FileSize:    n,
				ModTime:     fs.UTCTimestampFromTime(start),
				ObjectID:    oid,
			},
			Tags: toKopiaTags(o.Tags),
		}
		man.Stats.TotalFileSize = n
		man.Stats.TotalFileCount = 1
		id, err := snapshot.SaveSnapshot(ctx, f.w, man)
		if err != nil {
			return nil, fmt.Errorf("save snapshot of %s: %w", name, err)
		}
		fsNew, fsMod, fsSame := int64(1), int64(0), int64(0)
		if prev != nil && prev.RootEntry != nil {
			fsNew = 0
			if prev.RootEntry.ObjectID == oid {
				fsSame = 1
			} else {
				fsMod = 1
			}
		}
		return &SnapshotStats{
			Name:       string(id),
			Path:       name,
			Host:       o.Host,
			TotalBytes: n,
			FileStats: FileStats{
				TotalFiles: int64p(1), NewFiles: int64p(fsNew),
				ModifiedFiles: int64p(fsMod), UnmodifiedFiles: int64p(fsSame),
			},
		}, nil
	})
}

// snapshotFrame is what a snapshot that writes its own objects works in:
// one kopia write session, under the shared lock, started at start.
type snapshotFrame struct {
	w     repo.RepositoryWriter
	comp  compression.Name
	cut   *chunker.Chunker
	held  *lock.Held
	start time.Time
	o     BackupOptions
	r     *Repository
}

// stream returns a writer of one file's object.
func (f *snapshotFrame) stream(name string) *streamWriter {
	return &streamWriter{
		rw: f.w, comp: f.comp, name: name, progress: f.o.Progress, chunker: f.cut,
		// Hashing, compression and encryption of chunks run on every
		// core while the chunker reads on.
		workers: f.r.streamWorkers(),
	}
}

// writeSnapshot runs body, which writes and saves one snapshot, in a
// snapshotFrame, and completes its stats with what was uploaded.
func (r *Repository) writeSnapshot(ctx context.Context, purpose string, o BackupOptions, body func(context.Context, *snapshotFrame) (*SnapshotStats, error)) (*SnapshotStats, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	comp, err := r.opts.compressor()
	if err != nil {
		return nil, err
	}
	held, err := r.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	cut, err := r.streamChunker(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var uploaded atomic.Int64
	var stats *SnapshotStats
	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{
		Purpose:  purpose,
		OnUpload: func(n int64) { uploaded.Add(n) },
	}, func(ctx context.Context, w repo.RepositoryWriter) error {
		var err error
		stats, err = body(ctx, &snapshotFrame{w: w, comp: comp, cut: cut, held: held, start: start, o: o, r: r})
		return err
	})
	if err != nil {
		return nil, err
	}
	// Uploads finish at the session's flush, after the callback returns.
	r.finishStats(stats, uploaded.Load(), start)
	return stats, nil
}

func (r *Repository) finishStats(s *SnapshotStats, uploaded int64, start time.Time) {
	d := time.Since(start)
	s.UploadedBytes = uploaded
	s.DurationMS = d.Milliseconds()
	s.TotalSize = FormatBytes(s.TotalBytes)
	s.Uploaded = FormatBytes(uploaded)
	s.ProcessingTime = formatDuration(d)
}

func copyChunks(ctx context.Context, dst io.Writer, src io.Reader, p Progress) (int64, error) {
	buf := make([]byte, streamChunk)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
			if p != nil {
				p.Add(int64(n))
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// latestManifest returns the newest complete snapshot of a source, or nil.
func (r *Repository) latestManifest(ctx context.Context, si snapshot.SourceInfo) *snapshot.Manifest {
	mans, err := snapshot.ListSnapshots(ctx, r.rep, si)
	if err != nil {
		return nil
	}
	var best *snapshot.Manifest
	for _, m := range mans {
		if m.IncompleteReason != "" {
			continue
		}
		if best == nil || m.StartTime.After(best.StartTime) {
			best = m
		}
	}
	return best
}

// BackupPaths stores each directory (or file) in paths as its own snapshot,
// so that retention applies per (host, path) as in Stash.
func (r *Repository) BackupPaths(ctx context.Context, paths []string, o BackupOptions) ([]SnapshotStats, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("no path to back up")
	}
	var out []SnapshotStats
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return out, fmt.Errorf("back up %s: %w", p, err)
		}
		if _, err := os.Lstat(abs); err != nil {
			return out, fmt.Errorf("back up %s: %w", p, err)
		}
		s, err := r.backupPath(ctx, abs, o)
		if err != nil {
			return out, err
		}
		out = append(out, *s)
	}
	return out, nil
}

// times returns the start and end a snapshot records: the given ones, or
// those of an import.
func (o *BackupOptions) times(start, end time.Time) (time.Time, time.Time) {
	if !o.Time.IsZero() {
		start = o.Time
		end = o.EndTime
		if end.IsZero() || end.Before(start) {
			end = start
		}
	}
	return start, end
}

func (r *Repository) backupPath(ctx context.Context, abs string, o BackupOptions) (*SnapshotStats, error) {
	entry, err := localfs.NewEntry(abs)
	if err == nil {
		entry, err = plainRoot(entry)
	}
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", abs, err)
	}
	var reuse *treeReuse
	if _, ok := entry.(fs.Directory); ok {
		walk := o.Walks[abs]
		if walk == nil {
			walk = StartTreeWalk(ctx, abs)
			defer walk.Stop()
		}
		reuse = newTreeReuse(walk, o.Exclude)
	}
	return r.backupEntry(ctx, entry, abs, o, reuse)
}

// BackupEntry stores the tree entry (a local directory, or the snapshot
// of another repository read through kopia's fs interfaces) as a
// directory snapshot of path.
func (r *Repository) BackupEntry(ctx context.Context, entry fs.Entry, abs string, o BackupOptions) (*SnapshotStats, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	entry, err := plainRoot(entry)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", abs, err)
	}
	return r.backupEntry(ctx, entry, abs, o, nil)
}

// backupEntry is BackupEntry, taking unchanged directories whole from the
// previous snapshot when reuse is set (treereuse.go).
func (r *Repository) backupEntry(ctx context.Context, entry fs.Entry, abs string, o BackupOptions, reuse *treeReuse) (*SnapshotStats, error) {
	comp, err := r.opts.compressor()
	if err != nil {
		return nil, err
	}
	held, err := r.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer held.Release()

	source := snapshot.SourceInfo{Host: o.Host, UserName: clientUser, Path: abs}
	pol := &policy.Policy{
		FilesPolicy:       policy.FilesPolicy{IgnoreRules: o.Exclude},
		CompressionPolicy: policy.CompressionPolicy{CompressorName: comp},
		MetadataCompressionPolicy: policy.MetadataCompressionPolicy{
			CompressorName: comp,
		},
	}
	tree := policy.BuildTree(map[string]*policy.Policy{".": pol}, policy.DefaultPolicy)

	prev := r.latestManifest(ctx, source)
	if reuse != nil {
		reuse.load(ctx, r.rep, prev)
		entry = reuse.wrap(entry)
	}
	// Names that are not UTF-8 are stored escaped (storednames.go).
	entry = storedNames(entry)
	start := time.Now()
	var uploaded atomic.Int64
	var stats *SnapshotStats
	counter := &fileCounter{Progress: o.Progress, root: abs}

	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{
		Purpose:  "stash backup " + abs,
		OnUpload: func(n int64) { uploaded.Add(n) },
	}, func(ctx context.Context, w repo.RepositoryWriter) error {
		if err := keepEverything(ctx, w); err != nil {
			return err
		}
		u := upload.NewUploader(w)
		u.ParallelUploads = r.opts.parallelism()
		u.Progress = counter
		// Checkpoints are saved as incomplete snapshots, which listing and
		// restore never show; they only let kopia skip re-hashing on retry.
		// kopia applies its retention policy at each one: keepEverything.
		u.CheckpointInterval = 45 * time.Minute
		var previous []*snapshot.Manifest
		if prev != nil {
			previous = append(previous, prev)
		}
		man, err := u.Upload(ctx, entry, tree, source, previous...)
		if err != nil {
			return fmt.Errorf("back up %s: %w", abs, err)
		}
		if man.IncompleteReason != "" {
			return fmt.Errorf("back up %s: incomplete: %s", abs, man.IncompleteReason)
		}
		// kopia counts a file or directory it could not read in
		// ErrorCount (IgnoredErrorCount only under an ignore policy) and
		// still returns a manifest, without those entries: committing it
		// would report a backup of what it left out.
		if n := man.Stats.ErrorCount + man.Stats.IgnoredErrorCount; n > 0 {
			return fmt.Errorf("back up %s: %d entries could not be read%s", abs, n, firstFailure(man))
		}
		if o.BeforeCommit != nil {
			if err := o.BeforeCommit(); err != nil {
				return fmt.Errorf("snapshot of %s not committed: %w", abs, err)
			}
		}
		if err := held.Check(); err != nil {
			return fmt.Errorf("back up %s: %w", abs, err)
		}
		man.Tags = toKopiaTags(o.Tags)
		if o.HardLinks != nil {
			v, err := encodeLinks(o.HardLinks())
			if err != nil {
				return fmt.Errorf("back up %s: %w", abs, err)
			}
			if v != "" {
				if man.Tags == nil {
					man.Tags = map[string]string{}
				}
				man.Tags[linksTag] = v
			}
		}
		if !o.Time.IsZero() {
			st, end := o.times(o.Time, o.EndTime)
			man.StartTime, man.EndTime = fs.UTCTimestampFromTime(st), fs.UTCTimestampFromTime(end)
		}
		id, err := snapshot.SaveSnapshot(ctx, w, man)
		if err != nil {
			return fmt.Errorf("save snapshot of %s: %w", abs, err)
		}
		if reuse != nil {
			if err := reuse.save(ctx, w, id, source); err != nil {
				return fmt.Errorf("back up %s: %w", abs, err)
			}
		}
		total := int64(man.Stats.TotalFileCount + man.Stats.CachedFiles)
		totalBytes := man.Stats.TotalFileSize
		if ds := man.RootEntry.DirSummary; ds != nil {
			total, totalBytes = ds.TotalFileCount, ds.TotalFileSize
		}
		newFiles, modified := counter.classify(ctx, w, prev, r.opts.parallelism())
		unmodified := total - newFiles - modified
		stats = &SnapshotStats{
			Name:       string(id),
			Path:       abs,
			Host:       o.Host,
			TotalBytes: totalBytes,
			FileStats: FileStats{
				TotalFiles: int64p(total), NewFiles: int64p(newFiles),
				ModifiedFiles: int64p(modified), UnmodifiedFiles: int64p(unmodified),
			},
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.finishStats(stats, uploaded.Load(), start)
	return stats, nil
}

// fileCounter is an upload.Progress that remembers which files were hashed
// (not taken unchanged from the previous snapshot), to tell new files from
// modified ones afterwards.
type fileCounter struct {
	upload.NullUploadProgress
	Progress Progress
	// root is the directory backed up; kopia reports symlinks as hashed
	// files too, and they are not counted as files.
	root string

	mu     sync.Mutex
	hashed []string
}

func (c *fileCounter) HashedBytes(n int64) {
	if c.Progress != nil {
		c.Progress.Add(n)
	}
}

func (c *fileCounter) CachedFile(_ string, size int64) {
	if c.Progress != nil {
		c.Progress.Add(size)
	}
}

func (c *fileCounter) FinishedHashingFile(fname string, _ int64) {
	if fi, err := os.Lstat(filepath.Join(c.root, fname)); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return
	}
	c.mu.Lock()
	c.hashed = append(c.hashed, fname)
	c.mu.Unlock()
}

// classify splits hashed files into new ones (absent from prev) and
// modified ones (present in prev). kopia hashes a file again only when its
// size, time, mode or owner changed, and restic, whose counts Stash
// reported, counts a file whose metadata changed as modified whatever its
// content; so does this, which spares reading the new snapshot's
// directories back.
func (c *fileCounter) classify(ctx context.Context, rep repo.Repository, prev *snapshot.Manifest, parallel int) (newFiles, modified int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev == nil {
		return int64(len(c.hashed)), 0
	}
	inPrev := treeHas(ctx, rep, prev, c.hashed, parallel)
	for _, f := range c.hashed {
		if inPrev(f) {
			modified++
		} else {
			newFiles++
		}
	}
	return newFiles, modified
}

// treeHas returns a function that tells whether a file of files (paths
// relative to the snapshot root) is in the snapshot. It reads
// only the directories holding those files and their ancestors, each once,
// parallel workers at a time: directory objects come from the storage (no
// local cache), and with a 1 % change spread over a large tree, nearly
// every directory holds a hashed file.
func treeHas(ctx context.Context, rep repo.Repository, man *snapshot.Manifest, files []string, parallel int) func(rel string) bool {
	if man.RootEntry == nil || man.RootEntry.Type != snapshot.EntryTypeDirectory {
		return func(string) bool { return false }
	}
	// wanted holds every directory to list and its ancestors ("" is the
	// root).
	wanted := map[string]bool{"": true}
	for _, f := range files {
		dir := path.Dir(strings.TrimPrefix(filepath.ToSlash(f), "/"))
		for dir != "." && dir != "/" && !wanted[dir] {
			wanted[dir] = true
			dir = path.Dir(dir)
		}
	}
	var (
		mu   sync.Mutex
		dirs = map[string]map[string]bool{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, max(parallel, 1))
	)
	var visit func(rel string, oid object.ID)
	visit = func(rel string, oid object.ID) {
		defer wg.Done()
		sem <- struct{}{}
		listed, err := listDir(ctx, rep, oid)
		<-sem
		if err != nil {
			return
		}
		entries := make(map[string]bool, len(listed))
		for _, e := range listed {
			entries[e.Name] = true
			if e.Dir {
				if childRel := path.Join(rel, e.Name); wanted[childRel] {
					wg.Add(1)
					go visit(childRel, e.Obj)
				}
			}
		}
		mu.Lock()
		dirs[rel] = entries
		mu.Unlock()
	}
	wg.Add(1)
	visit("", man.RootEntry.ObjectID)
	wg.Wait()
	return func(rel string) bool {
		dir := path.Dir(strings.TrimPrefix(filepath.ToSlash(rel), "/"))
		if dir == "." {
			dir = ""
		}
		return dirs[dir][path.Base(rel)]
	}
}

// listedEntry is what treeHas reads of a directory entry: its object ID
// only for a subdirectory, which it may descend into.
type listedEntry struct {
	Name string
	Dir  bool
	Obj  object.ID
}

// listDir reads the entries of the directory object oid: only names,
// types and subdirectories' object IDs. kopia's directory reader decodes every field
// (times, modes, the summaries of subdirectories), which took longer than
// the uploader's own walk when a change touched most directories.
func listDir(ctx context.Context, rep repo.Repository, oid object.ID) ([]listedEntry, error) {
	rd, err := rep.OpenObject(ctx, oid)
	if err != nil {
		return nil, err
	}
	defer rd.Close() //nolint:errcheck
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	var out []listedEntry
	err = jsonscan.Members(b, func(key, val []byte) error {
		if string(key) != "entries" {
			return nil
		}
		return jsonscan.Elements(val, func(v []byte) error {
			var e listedEntry
			var obj []byte
			err := jsonscan.Members(v, func(key, val []byte) error {
				var err error
				switch string(key) {
				case "name":
					e.Name, err = jsonscan.String(val)
				case "type":
					var t string
					t, err = jsonscan.String(val)
					e.Dir = snapshot.EntryType(t) == snapshot.EntryTypeDirectory
				case "obj":
					obj = val
				}
				return err
			})
			if err == nil && e.Dir {
				var s string
				if s, err = jsonscan.String(obj); err == nil {
					e.Obj, err = object.ParseID(s)
				}
			}
			out = append(out, e)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", oid, err)
	}
	return out, nil
}

// firstFailure names the first entry kopia could not read, as ": path:
// error", or "".
func firstFailure(man *snapshot.Manifest) string {
	if man.RootEntry == nil || man.RootEntry.DirSummary == nil || len(man.RootEntry.DirSummary.FailedEntries) == 0 {
		return ""
	}
	e := man.RootEntry.DirSummary.FailedEntries[0]
	return fmt.Sprintf(", first %s: %s", e.EntryPath, e.Error)
}
