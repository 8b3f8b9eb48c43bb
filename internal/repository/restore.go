package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"strings"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/virtualfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
	"github.com/kopia/kopia/snapshot/snapshotfs"

	"github.com/stash-backup/stash/internal/chunker"
	"github.com/stash-backup/stash/internal/repository/blobmem"
)

// RestoreResult summarises a restore.
type RestoreResult struct {
	Snapshot   string `json:"snapshot"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Files      int64  `json:"files"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"durationMs"`
}

// RestoreStream writes the file name of snapshot s to w. For a stream
// snapshot name may be empty (the snapshot holds one file); for a directory
// snapshot it is the file's path inside the directory.
func (r *Reader) RestoreStream(ctx context.Context, s Snapshot, name string, w io.Writer, p Progress) (int64, error) {
	if s.man == nil || s.man.RootEntry == nil {
		return 0, fmt.Errorf("snapshot %s has no root", s.ID)
	}
	unlock, err := r.lockForRead(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	root := s.man.RootEntry
	var oid object.ID
	switch {
	case root.Type == snapshot.EntryTypeFile:
		if name != "" && name != root.Name && name != s.Path {
			return 0, fmt.Errorf("%w: snapshot %s holds %s, not %s", ErrSnapshotNotFound, s.ShortID(), root.Name, name)
		}
		oid = root.ObjectID
	default:
		if name == "" {
			return 0, fmt.Errorf("snapshot %s is a directory: name the file to write with --stdout NAME", s.ShortID())
		}
		e, err := snapshotfs.FilesystemEntryFromIDWithPath(ctx, r.rep, s.ID+"/"+storedPath(strings.TrimPrefix(name, "/")), false)
		if err != nil {
			return 0, fmt.Errorf("find %s in snapshot %s: %w", name, s.ShortID(), err)
		}
		h, ok := e.(object.HasObjectID)
		if !ok || e.IsDir() {
			return 0, fmt.Errorf("%s in snapshot %s is not a file", name, s.ShortID())
		}
		oid = h.ObjectID()
	}
	return r.copyObject(ctx, oid, w, p)
}

// readAhead is how many chunks of an object (1 MiB on average) are
// fetched, decrypted and decompressed ahead of the writer; readers is how
// many fetch at once.
//
// From an object store a reader waits on the network for most of its
// chunk's time, so both exceed the CPU count: four readers and eight
// chunks per CPU. From a local file system the prefetcher has the kernel
// read each chunk before its reader asks (prefetch.go), so a reader
// spends its time decoding: one more reader than the parallelism covers
// a read the hints missed, and two chunks per reader keep each busy while
// the writer takes the last. More would only hold more memory, every page
// of it faulted in first, which cost a cold restore from local disk more
// than the readers gained (docs/benchmarks-history.md).
//
// Both are bounded by the memory budget: a chunk is at most
// chunker.MaxSize, each chunk read ahead holds its data and each reader
// a chunk's stored bytes while it decodes them, so together they never
// hold more than the budget (at least one reader and two chunks ahead).
func (r *Reader) readAhead() int {
	want := 8 * r.opts.parallelism()
	if r.hintedReads() {
		want = 2 * r.readers()
	}
	return max(min(want, r.chunkSlots()-r.readers()), 2)
}

func (r *Reader) readers() int {
	want := 4 * r.opts.parallelism()
	if r.hintedReads() {
		want = r.opts.parallelism() + 1
	}
	return max(min(want, r.chunkSlots()/3), 1)
}

// chunkSlots is how many chunks of chunker.MaxSize the memory budget
// holds.
func (r *Reader) chunkSlots() int { return int(r.opts.readAheadBudget() / chunker.MaxSize) }

// streamWorkers is how many workers write a stream backup's chunks: the
// parallelism, fewer when their workers+2 buffers of chunker.MaxSize would
// not fit in the memory budget, and at least one.
func (r *Reader) streamWorkers() int {
	byMemory := int(r.opts.readAheadBudget()/chunker.MaxSize) - 2
	return max(min(r.opts.parallelism(), byMemory), 1)
}

// copyObject writes an object to w. A large object is a list of chunks;
// kopia's reader fetches them one by one, so chunks are fetched by several
// workers here and written in order.
func (r *Reader) copyObject(ctx context.Context, oid object.ID, w io.Writer, p Progress) (int64, error) {
	idx, indirect := oid.IndexObjectID()
	if !indirect {
		// One chunk: written as it comes out of the repository, without
		// a copy buffer, which cost more than the read for small files.
		b := contentReadBuffers.Get().(*readBuffers)
		defer contentReadBuffers.Put(b)
		data, err := r.readObject(ctx, oid, &b.packed, &b.data)
		if err != nil {
			return 0, fmt.Errorf("read object: %w", err)
		}
		n, err := w.Write(data)
		if p != nil {
			p.Add(int64(n))
		}
		return int64(n), err
	}
	dr, direct := r.rep.(repo.DirectRepository)
	if !direct {
		rd, err := r.rep.OpenObject(ctx, oid)
		if err != nil {
			return 0, fmt.Errorf("open object: %w", err)
		}
		defer rd.Close() //nolint:errcheck
		return copyChunks(ctx, w, rd, p)
	}
	entries, err := object.LoadIndexObject(ctx, indexReader{Reader: dr.ContentReader(), rep: r.rep}, idx)
	if err != nil {
		return 0, fmt.Errorf("read object index: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		data []byte
		err  error
	}
	// The dispatcher takes a semaphore slot before handing out chunk i, so
	// slots go to chunks in order and the writer's next chunk always has
	// one: fetching runs at most readAhead chunks (of a few MiB at most)
	// ahead of writing, whatever order the readers finish in. So chunk i
	// can take result slot i mod readAhead: the writer emptied it (chunk
	// i-readAhead) before it freed the semaphore slot chunk i waited for.
	// A slot per chunk would cost memory with the stream's length. For the
	// same reason chunk i is decoded into slot i's buffer, free by then.
	pf := r.newPrefetcher()
	if pf != nil {
		go pf.run(ctx, len(entries), contentRanges(ctx, dr.ContentReader(), entries))
	}
	ahead := min(r.readAhead(), max(len(entries), 1))
	slots := make([]chan result, ahead)
	bufs := make([][]byte, ahead)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	sem := make(chan struct{}, ahead)
	work := make(chan int)
	go func() {
		defer close(work)
		for i := range entries {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range r.readers() {
		go func() {
			// The stored bytes of the reader's chunk, until decoded.
			var packed blobmem.Buffer
			for i := range work {
				data, err := r.readObject(ctx, entries[i].Object, &packed, &bufs[i%len(bufs)])
				slots[i%len(slots)] <- result{data, err}
			}
		}()
	}
	var total int64
	for i := range entries {
		var res result
		select {
		case res = <-slots[i%len(slots)]:
		case <-ctx.Done():
			return total, ctx.Err()
		}
		if res.err != nil {
			return total, fmt.Errorf("read chunk %d of %d: %w", i+1, len(entries), res.err)
		}
		if int64(len(res.data)) != entries[i].Length {
			return total, fmt.Errorf("read chunk %d of %d: got %d bytes, want %d", i+1, len(entries), len(res.data), entries[i].Length)
		}
		n, err := w.Write(res.data)
		// Only now may chunk i+readAhead take this slot and its buffer.
		<-sem
		pf.wrote(i + 1)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if p != nil {
			p.Add(int64(n))
		}
	}
	return total, nil
}

// readObject returns the data of object oid, valid until packed and data
// are used again: a one-content object's as readContent decodes it, any
// other through kopia's object reader.
func (r *Reader) readObject(ctx context.Context, oid object.ID, packed *blobmem.Buffer, data *[]byte) ([]byte, error) {
	// A chunk is one content: take the content's bytes as they are
	// decoded, rather than copying them once more through an object
	// reader into a fresh buffer, whose copy and zeroing were a large
	// share of a restore's CPU.
	if cid, compressed, ok := oid.ContentID(); ok && !compressed {
		if dr, direct := r.rep.(repo.DirectRepository); direct {
			return r.readContent(ctx, dr.ContentReader(), cid, packed, data)
		}
	}
	rd, err := r.rep.OpenObject(ctx, oid)
	if err != nil {
		return nil, err
	}
	defer rd.Close() //nolint:errcheck
	buf := make([]byte, rd.Length())
	if _, err := io.ReadFull(rd, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// TreeRestoreOptions select what a directory restore writes.
type TreeRestoreOptions struct {
	// Include, if set, restores only paths matching one of these patterns
	// (and the directories leading to them).
	Include []string
	// Exclude skips paths matching one of these patterns.
	Exclude []string
	// Progress, if set, is told of bytes written.
	Progress Progress
	// Sparse leaves the all-zero blocks of restored files as holes.
	Sparse bool
}

// RestoreTree writes snapshot s into the directory target. A stream
// snapshot is written as target/<name>.
func (r *Reader) RestoreTree(ctx context.Context, s Snapshot, target string, o TreeRestoreOptions) (*RestoreResult, error) {
	if target == "" {
		return nil, errors.New("restore target directory is empty: pass --target DIR")
	}
	if err := checkPatterns(o); err != nil {
		return nil, err
	}
	unlock, err := r.lockForRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	root, err := snapshotfs.SnapshotRoot(r.rep, s.man)
	if err != nil {
		return nil, fmt.Errorf("open snapshot %s: %w", s.ShortID(), err)
	}
	if s.Stream {
		// A stream snapshot's root is its one file; restore it into the
		// target directory under its name (checked like any entry's).
		root = virtualfs.NewStaticDirectory("", []fs.Entry{root})
	}
	// Hard links the snapshot records (an import from restic) are made
	// again among the files this restore writes. Links that do not read
	// as paths inside the snapshot are a damaged or forged manifest: the
	// files are restored all the same, as copies.
	links, lerr := decodeLinks(s.man.Tags[linksTag])
	if lerr != nil {
		slog.Warn("hard links not restored: the files are restored as copies", "snapshot", s.ShortID(), "error", lerr)
	}
	var written *writtenFiles
	if len(links) > 0 && !s.Stream {
		written = &writtenFiles{m: map[string]bool{}}
	}
	files, bytes, err := restoreRoot(ctx, root, s.Stream, target, o, func(ctx context.Context, out *confinedOutput, root fs.Entry) (int64, int64, error) {
		out.written = written
		if dir, ok := root.(fs.Directory); ok && !r.byFile {
			if tr, ok := r.newTreeRestorer(out, o.Progress); ok {
				if err := tr.run(ctx, dir); err != nil {
					return 0, 0, err
				}
				return tr.files.Load(), tr.bytes.Load(), nil
			}
		}
		st, err := restoreEntry(ctx, out, root, o.Progress, r.opts.parallelism()*2)
		return int64(st.RestoredFileCount), st.RestoredTotalFileSize, err
	})
	if err != nil {
		return nil, fmt.Errorf("restore snapshot %s to %s: %w", s.ShortID(), target, err)
	}
	if written != nil {
		if err := Relink(target, written.only(links)); err != nil {
			return nil, fmt.Errorf("restore snapshot %s to %s: %w", s.ShortID(), target, err)
		}
	}
	return &RestoreResult{Snapshot: s.ID, Host: s.Host, Path: s.Path, Files: files, Bytes: bytes}, nil
}

// FSRestore is a tree of a repository of another format, read through
// kopia's fs interfaces, to restore as RestoreTree restores a snapshot.
type FSRestore struct {
	// Root is the tree; with Stream, a single file.
	Root   fs.Entry
	Stream bool
	// Packs, when set, lets a directory be restored pack by pack, as
	// this project's snapshots are (treerestore.go); files it does not
	// place are read through their own readers. MaxContent bounds a
	// content's size, for the workers' memory.
	Packs      PackSource
	MaxContent int64
	// Options give the parallelism and the memory budget.
	Options Options
}

// RestoreFS writes a tree of another format into target as RestoreTree
// writes a snapshot: names checked, include and exclude applied, nothing
// written outside target or through a symlink. A stream is written as
// target/<name>.
func RestoreFS(ctx context.Context, fr FSRestore, target string, o TreeRestoreOptions) (files, bytes int64, err error) {
	if target == "" {
		return 0, 0, errors.New("restore target directory is empty: pass --target DIR")
	}
	if err := checkPatterns(o); err != nil {
		return 0, 0, err
	}
	// Names as a backup stores them, which the output restores
	// (storednames.go).
	root := storedNames(fr.Root)
	if fr.Stream {
		root = virtualfs.NewStaticDirectory("", []fs.Entry{root})
	}
	return restoreRoot(ctx, root, fr.Stream, target, o, func(ctx context.Context, out *confinedOutput, root fs.Entry) (int64, int64, error) {
		if dir, ok := root.(fs.Directory); ok && fr.Packs != nil && !fr.Stream {
			tr := newTreeRestorer(out, o.Progress, fr.Packs, fr.Options, fr.MaxContent)
			if err := tr.run(ctx, dir); err != nil {
				return 0, 0, err
			}
			return tr.files.Load(), tr.bytes.Load(), nil
		}
		// A stream (one file), or a tree no PackSource places.
		st, err := restoreEntry(ctx, out, root, o.Progress, 2*fr.Options.parallelism())
		return int64(st.RestoredFileCount), st.RestoredTotalFileSize, err
	})
}

// restoreRoot checks and filters root's entries and writes them below
// target through a confined output, with write doing the writing.
func restoreRoot(ctx context.Context, root fs.Entry, stream bool, target string, o TreeRestoreOptions,
	write func(context.Context, *confinedOutput, fs.Entry) (files, bytes int64, err error)) (int64, int64, error) {
	if dir, ok := root.(fs.Directory); ok {
		// Every entry's name is checked before anything of its directory
		// is written: a name with "..", "/" or NUL never reaches the
		// output.
		root = &checkedDir{Directory: dir}
	}
	if dir, ok := root.(fs.Directory); ok && (len(o.Include) > 0 || len(o.Exclude) > 0) {
		root = &filteredDir{Directory: dir, rel: "", m: matcher{include: o.Include, exclude: o.Exclude}}
	}
	var keepMode os.FileMode = 0o750
	if st, err := os.Stat(target); err == nil {
		keepMode = st.Mode().Perm()
	}
	// The output writes only below target and never through a symlink,
	// whatever the snapshot holds or the target already has.
	out, err := newConfinedOutput(target, stream)
	if err != nil {
		return 0, 0, err
	}
	out.setSparse(o.Sparse)
	// kopia closes the output only when the restore succeeds.
	defer out.Close(ctx) //nolint:errcheck
	files, bytes, err := write(ctx, out, root)
	if err != nil {
		return 0, 0, err
	}
	if err := out.Close(ctx); err != nil {
		return 0, 0, err
	}
	if stream {
		// The synthetic directory around a stream has no mode of its own;
		// keep the target's (or a private one) rather than kopia's 0777.
		if err := os.Chmod(target, keepMode); err != nil {
			return 0, 0, err
		}
	}
	return files, bytes, nil
}

// checkPatterns refuses include and exclude patterns that do not parse.
func checkPatterns(o TreeRestoreOptions) error {
	for _, p := range append(append([]string{}, o.Include...), o.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	return nil
}

// restoreEntry restores root through kopia's restore, which reads each
// file's contents by itself.
func restoreEntry(ctx context.Context, out *confinedOutput, root fs.Entry, p Progress, parallel int) (restore.Stats, error) {
	var progressCb restore.ProgressCallback
	if p != nil {
		var last int64
		progressCb = func(_ context.Context, st restore.Stats) {
			cur := st.RestoredTotalFileSize + st.SkippedTotalFileSize
			if d := cur - last; d > 0 {
				p.Add(d)
				last = cur
			}
		}
	}
	// kopia's restore reads contents through the entries; it does not use the repository.
	return restore.Entry(ctx, nil, out, root, restore.Options{
		Parallel: parallel,
		// kopia restores below this depth as placeholders; restore all.
		RestoreDirEntryAtDepth: math.MaxInt32,
		ProgressCallback:       progressCb,
	})
}

// filteredDir hides entries that the include/exclude patterns reject.
type filteredDir struct {
	fs.Directory
	rel string
	m   matcher
}

func (d *filteredDir) wrap(e fs.Entry) (fs.Entry, bool) {
	rel := path.Join(d.rel, e.Name())
	if dir, ok := e.(fs.Directory); ok {
		if !d.m.dirWanted(rel) {
			return nil, false
		}
		if d.m.includedWhole(rel) && len(d.m.exclude) == 0 {
			return e, true
		}
		return &filteredDir{Directory: dir, rel: rel, m: d.m}, true
	}
	return e, d.m.fileWanted(rel)
}

func (d *filteredDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	w, ok := d.wrap(e)
	if !ok {
		return nil, fs.ErrEntryNotFound
	}
	return w, nil
}

func (d *filteredDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	var kept []fs.Entry
	err := fs.IterateEntries(ctx, d.Directory, func(_ context.Context, e fs.Entry) error {
		if w, ok := d.wrap(e); ok {
			kept = append(kept, w)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fs.StaticIterator(kept, nil), nil
}

// indexReader gives kopia's object index loader the content reader it
// expects: the direct content reader plus the repository's prefetch.
type indexReader struct {
	content.Reader
	rep repo.Repository
}

func (ir indexReader) PrefetchContents(ctx context.Context, ids []content.ID, hint string) []content.ID {
	return ir.rep.PrefetchContents(ctx, ids, hint)
}

// DirEntry exposes the wrapped directory's snapshot entry, which kopia's
// restore reads for metadata.
func (d *filteredDir) DirEntry() *snapshot.DirEntry {
	if h, ok := d.Directory.(snapshot.HasDirEntry); ok {
		return h.DirEntry()
	}
	return nil
}
