package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// AddFile stores what src holds, to its end, as the file name of the
// directory snapshot being written.
type AddFile func(name string, src io.Reader) error

// BackupFiles stores the files produce adds, one after another, as one
// directory snapshot of path (a name for what the files are, such as the
// interim directory a dump tool would have written them to). Nothing
// touches the local disk: an application's per-index or per-table files
// stream straight into the repository. The snapshot is committed only
// when produce returns nil; names are plain file names, each given once.
// The result is an ordinary kopia directory, which tree restores, checks
// and kopia's own tools read.
func (r *Repository) BackupFiles(ctx context.Context, dirPath string, produce func(add AddFile) error, o BackupOptions) (*SnapshotStats, error) {
	if dirPath == "" || strings.ContainsRune(dirPath, 0) {
		return nil, fmt.Errorf("file set path %q: give the path the files belong to, such as /stash-data/elasticsearch", dirPath)
	}
	return r.writeSnapshot(ctx, "stash backup files "+dirPath, o, func(ctx context.Context, f *snapshotFrame) (*SnapshotStats, error) {
		source := snapshot.SourceInfo{Host: o.Host, UserName: clientUser, Path: dirPath}
		prev := r.previousFiles(ctx, source)
		var (
			dm       snapshotfs.DirManifestBuilder
			total    int64
			counts   [3]int64 // new, modified, unmodified
			seen     = map[string]bool{}
			modTime  = fs.UTCTimestampFromTime(f.start)
			numFiles int64
		)
		add := func(name string, src io.Reader) error {
			if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
				return fmt.Errorf("file name %q in %s: must be a plain file name", name, dirPath)
			}
			if seen[name] {
				return fmt.Errorf("file %s added twice to %s", name, dirPath)
			}
			seen[name] = true
			oid, n, err := f.stream(path.Join(dirPath, name)).write(ctx, src)
			if err != nil {
				return err
			}
			dm.AddEntry(&snapshot.DirEntry{
				Name: name, Type: snapshot.EntryTypeFile, Permissions: 0o600,
				FileSize: n, ModTime: modTime, ObjectID: oid,
			})
			total += n
			numFiles++
			switch old, ok := prev[name]; {
			case !ok:
				counts[0]++
			case old == oid:
				counts[2]++
			default:
				counts[1]++
			}
			return nil
		}
		if err := produce(add); err != nil {
			return nil, fmt.Errorf("files of %s not committed: %w", dirPath, err)
		}
		if err := f.held.Check(); err != nil {
			return nil, fmt.Errorf("files of %s: %w", dirPath, err)
		}
		man := dm.Build(modTime, "")
		dirOID, err := snapshotfs.WriteDirManifest(ctx, f.w, ".", man, f.comp)
		if err != nil {
			return nil, fmt.Errorf("write the directory of %s: %w", dirPath, err)
		}
		end := time.Now()
		sm := &snapshot.Manifest{
			Source:      source,
			Description: "stash file set backup",
			StartTime:   fs.UTCTimestampFromTime(f.start),
			EndTime:     fs.UTCTimestampFromTime(end),
			RootEntry: &snapshot.DirEntry{
				Name: path.Base(dirPath), Type: snapshot.EntryTypeDirectory, Permissions: 0o700,
				ModTime: modTime, ObjectID: dirOID, DirSummary: man.Summary,
			},
			Tags: toKopiaTags(o.Tags),
		}
		sm.Stats.TotalFileSize = total
		sm.Stats.TotalFileCount = int32(numFiles)
		sm.Stats.TotalDirectoryCount = 1
		id, err := snapshot.SaveSnapshot(ctx, f.w, sm)
		if err != nil {
			return nil, fmt.Errorf("save snapshot of %s: %w", dirPath, err)
		}
		return &SnapshotStats{
			Name: string(id), Path: dirPath, Host: o.Host, TotalBytes: total,
			FileStats: FileStats{
				TotalFiles: int64p(numFiles), NewFiles: int64p(counts[0]),
				ModifiedFiles: int64p(counts[1]), UnmodifiedFiles: int64p(counts[2]),
			},
		}, nil
	})
}

// previousFiles maps the files of the source's latest snapshot to their
// objects, to count what changed; empty when there is none.
func (r *Repository) previousFiles(ctx context.Context, source snapshot.SourceInfo) map[string]object.ID {
	out := map[string]object.ID{}
	prev := r.latestManifest(ctx, source)
	if prev == nil || prev.RootEntry == nil || prev.RootEntry.Type != snapshot.EntryTypeDirectory {
		return out
	}
	dir, ok := snapshotfs.EntryFromDirEntry(r.rep, prev.RootEntry).(fs.Directory)
	if !ok {
		return out
	}
	_ = fs.IterateEntries(ctx, dir, func(_ context.Context, e fs.Entry) error {
		if h, ok := e.(object.HasObjectID); ok && !e.IsDir() {
			out[e.Name()] = h.ObjectID()
		}
		return nil
	})
	return out
}

// RestoreFiles calls each with every file of the directory snapshot s in
// the order cmp gives (nil: name order), reading from the repository as
// each reads: a file each does not read is not fetched.
func (r *Reader) RestoreFiles(ctx context.Context, s Snapshot, cmp func(a, b string) int, each func(name string, src io.Reader) error) error {
	if s.man == nil || s.man.RootEntry == nil || s.man.RootEntry.Type != snapshot.EntryTypeDirectory {
		return fmt.Errorf("snapshot %s is not a file set (a directory snapshot)", s.ShortID())
	}
	dir, ok := snapshotfs.EntryFromDirEntry(r.rep, s.man.RootEntry).(fs.Directory)
	if !ok {
		return fmt.Errorf("snapshot %s: the root is not a directory", s.ShortID())
	}
	// One listing and one read lock serve every file: looking each file
	// up by its path would decode the directory again per file, and a
	// lock per file would write and delete a lock blob each.
	unlock, err := r.lockForRead(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	oids := map[string]object.ID{}
	var names []string
	if err := fs.IterateEntries(ctx, dir, func(_ context.Context, e fs.Entry) error {
		if !e.IsDir() && e.Mode().IsRegular() {
			raw, err := rawName(e.Name())
			if err != nil {
				return err
			}
			h, ok := e.(object.HasObjectID)
			if !ok {
				return fmt.Errorf("%s has no object", raw)
			}
			names = append(names, raw)
			oids[raw] = h.ObjectID()
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list snapshot %s: %w", s.ShortID(), err)
	}
	slices.Sort(names)
	if cmp != nil {
		slices.SortStableFunc(names, cmp)
	}
	for _, name := range names {
		oid := oids[name]
		lr := &lazyFile{open: func(pw *io.PipeWriter) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := r.copyObject(ctx, oid, pw, nil)
				pw.CloseWithError(err)
				done <- err
			}()
			return done
		}}
		err := each(name, lr)
		if rerr := lr.close(); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("file %s of snapshot %s: %w", name, s.ShortID(), err)
		}
	}
	return nil
}

// lazyFile is a file of a file set that starts its restore on the first
// Read, so that a file the reader skips costs nothing.
type lazyFile struct {
	open func(*io.PipeWriter) <-chan error
	pr   *io.PipeReader
	done <-chan error
}

func (l *lazyFile) Read(p []byte) (int, error) {
	if l.pr == nil {
		pr, pw := io.Pipe()
		l.pr, l.done = pr, l.open(pw)
	}
	return l.pr.Read(p)
}

// close stops the restore if it started and returns its error.
func (l *lazyFile) close() error {
	if l.pr == nil {
		return nil
	}
	l.pr.CloseWithError(errors.New("the reader of the file stopped"))
	return <-l.done
}
