package repository

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"github.com/stash-backup/stash/internal/repository/blobmem"
	"path"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/chunker"
)

// A tree restore writes files in the order their contents lie in the
// repository's packs, not file by file: kopia's restore reads each small
// file's content with a request of its own, so a tree of many small files
// costs a request (an open and a read here, a GET on S3) per file. Here a
// batch of files is planned first (which content of which pack goes where
// in which file), then each pack is read in a few large ranges and every
// content in them written to every place that needs it. Files are written
// under temporary names and put in place once whole (confinedOutput).
//
// The walk runs ahead of the writing, one batch of files at a time, so
// memory follows the batch, not the tree.
var (
	// restoreBatchFiles is how many files are planned at once.
	restoreBatchFiles = 16384
	// maxOpenRestoreFiles is how many partly written files keep their
	// descriptors between writes; beyond it they are closed and reopened.
	maxOpenRestoreFiles int64 = 256
)

const (
	// packReadMax is the longest range of a pack read at once (unless a
	// single content is longer).
	packReadMax = 4 << 20
	// packGapMax is the longest stretch of unneeded bytes read through
	// rather than split into two reads.
	packGapMax = 1 << 20
	// dirLookahead is how many subdirectories of a directory are listed
	// ahead of the walk.
	dirLookahead = 8
)

// restoreFile is a file of the snapshot being restored.
type restoreFile struct {
	rel   string
	entry fs.File
	// refs are its contents in order, or nil when kopia's object reader
	// writes it (an object this planner does not read itself).
	refs []PackedContent

	mu   sync.Mutex
	left int // contents still to write
	t    *tempFile
	done bool
}

// PackedContent is one content of a file as a pack-ordered restore reads
// it: where it lies stored, and where it goes in the file.
type PackedContent struct {
	// ID names the content in its source: a content stored once and
	// needed by several files is read once.
	ID string
	// Pack, Offset and Length are where its stored bytes lie.
	Pack           string
	Offset, Length int64
	// FileOffset and Size are where its plain bytes go in the file.
	FileOffset, Size int64

	cid  content.ID   // this project's own snapshots
	info content.Info // and where and how the content is stored
}

// PackSource is what a pack-ordered tree restore reads from: this
// project's repositories, or a restic repository Stash wrote.
type PackSource interface {
	// Contents returns file f's contents in order, covering it whole,
	// or ok false when f is to be written through its own reader.
	Contents(ctx context.Context, f fs.File) (cs []PackedContent, ok bool, err error)
	// ReadPack reads length bytes at off of pack into dst.
	ReadPack(ctx context.Context, pack string, off, length int64, dst blob.OutputBuffer) error
	// Content returns content c verified and decoded; raw is its stored
	// bytes, a slice of a range ReadPack read. The source may decode into
	// scratch (growing it): the result is read only until the next call
	// with the same scratch.
	Content(ctx context.Context, c PackedContent, raw []byte, scratch *[]byte) ([]byte, error)
}

// rangeHolder is a PackSource that reads its contents through storage
// reads of its own, served from the range a restore holds meanwhile.
type rangeHolder interface {
	hold(pack string, start int64, data []byte) (release func())
}

// target is where a content goes: a file and an offset in it.
type target struct {
	f           *restoreFile
	off, length int64
}

// packContent is a content of a pack and every place it goes.
type packContent struct {
	c    PackedContent
	into []target
}

// packWork is what a batch needs of one pack.
type packWork struct {
	id       string
	contents []*packContent
	byID     map[string]*packContent
}

type walkedDir struct {
	rel string
	d   fs.Directory
}

// treeRestorer restores one directory snapshot into out.
type treeRestorer struct {
	src      PackSource
	out      *confinedOutput
	progress Progress
	workers  int

	open    atomic.Int64 // descriptors held by partly written files
	files   atomic.Int64
	bytes   atomic.Int64
	written atomic.Int64
	flush   chan struct{}
	dirs    []walkedDir // in walk order; the walk's goroutine appends
	lists   chan struct{}

	mu      sync.Mutex
	pending map[*restoreFile]struct{} // created, not yet whole
}

func (r *Reader) newTreeRestorer(out *confinedOutput, p Progress) (*treeRestorer, bool) {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return nil, false
	}
	// The splitters this project writes with cut at chunker.MaxSize at
	// most (a kopia client's may cut larger, which costs memory, not
	// correctness).
	return newTreeRestorer(out, p, &kopiaPacks{r: r, cr: dr.ContentReader()}, r.opts, chunker.MaxSize), true
}

// newTreeRestorer restores from src into out: twice as many workers as
// the options' parallelism, fewer when a quarter of the memory limit
// would not hold each one's pack range and two contents of up to
// maxContent bytes beside it.
func newTreeRestorer(out *confinedOutput, p Progress, src PackSource, o Options, maxContent int64) *treeRestorer {
	byMemory := int(o.readAheadBudget() / (packReadMax + 2*maxContent))
	return &treeRestorer{
		src: src, out: out, progress: p,
		workers: max(min(2*o.parallelism(), byMemory), 1),
		lists:   make(chan struct{}, dirLookahead),
		flush:   make(chan struct{}, 1),
	}
}

// kopiaPacks is the PackSource of this project's repositories: the
// content decoder decrypts, checks and decompresses each content from the
// range read; kopia does it for a form the decoder does not know, reading
// from the range held.
type kopiaPacks struct {
	r  *Reader
	cr content.Reader
}

func (k *kopiaPacks) ReadPack(ctx context.Context, pack string, off, length int64, dst blob.OutputBuffer) error {
	return k.r.st.GetBlob(ctx, blob.ID(pack), off, length, dst)
}

func (k *kopiaPacks) Content(ctx context.Context, c PackedContent, raw []byte, scratch *[]byte) ([]byte, error) {
	return k.r.decodeContent(ctx, k.cr, c.info, raw, scratch)
}

func (k *kopiaPacks) hold(pack string, start int64, data []byte) func() {
	return k.r.held.hold(blob.ID(pack), start, data)
}

// job is a unit of writing: a range of a pack with the contents in it,
// or a file kopia's reader writes whole.
type job struct {
	pack       string
	start, end int64
	contents   []*packContent
	whole      *restoreFile
}

// run restores root and everything below it: the walk hands batches of
// files to the planner, the planner hands jobs to the workers, each stage
// running ahead of the next by a batch or a few jobs.
func (t *treeRestorer) run(ctx context.Context, root fs.Directory) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []*restoreFile, 1)
	jobs := make(chan job, t.workers)
	go func() {
		defer close(batches)
		var batch []*restoreFile
		send := func() error {
			select {
			case batches <- batch:
				batch = nil
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := t.walk(ctx, root, "", nil, func(f *restoreFile) error {
			batch = append(batch, f)
			if len(batch) < restoreBatchFiles {
				return nil
			}
			return send()
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		if err != nil {
			cancel(err)
		}
	}()
	go func() {
		defer close(jobs)
		for b := range batches {
			if ctx.Err() == nil {
				if err := t.planBatch(ctx, b, jobs); err != nil {
					cancel(err)
				}
			}
		}
	}()
	flushed := t.startFlusher(ctx)
	var wg sync.WaitGroup
	for range t.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := t.do(ctx, j); err != nil {
					cancel(err)
				}
			}
		}()
	}
	// jobs is closed once the planner is done, which is once the walk is.
	wg.Wait()
	close(t.flush)
	<-flushed
	if err := context.Cause(ctx); err != nil {
		t.discardPending()
		return err
	}
	// A directory's times and mode are set once everything in it is
	// written, the deepest first.
	for i := len(t.dirs) - 1; i >= 0; i-- {
		if err := t.out.FinishDirectory(ctx, t.dirs[i].rel, t.dirs[i].d); err != nil {
			return err
		}
	}
	return nil
}

// flushEvery is how many bytes a restore writes between two flushes of
// the target's filesystem in the background. The restore is reported done
// only after a last flush (confinedOutput.Close); writing back as it goes
// leaves that one little to do, and keeps the dirty pages a memory-limited
// pod's cgroup is charged for few.
const flushEvery = 256 << 20

// startFlusher flushes the target's filesystem each time write signals
// t.flush, until t.flush is closed; the returned channel is closed then.
func (t *treeRestorer) startFlusher(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range t.flush {
			if ctx.Err() == nil {
				t.out.flush() //nolint:errcheck // the last flush reports
			}
		}
	}()
	return done
}

// noteWritten counts n bytes written and signals the flusher each time
// another flushEvery bytes are.
func (t *treeRestorer) noteWritten(n int64) {
	if t.progress != nil {
		t.progress.Add(n)
	}
	if w := t.written.Add(n); w/flushEvery != (w-n)/flushEvery {
		select {
		case t.flush <- struct{}{}:
		default: // a flush is pending already
		}
	}
}

// discardPending removes the temporary files of files not yet whole.
func (t *treeRestorer) discardPending() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for f := range t.pending {
		f.mu.Lock()
		if f.t != nil && !f.done {
			t.out.discardFile(f.t)
		}
		f.mu.Unlock()
	}
	t.pending = nil
}

// listing is a directory's entries, listed ahead of the walk.
type listing struct {
	ready   chan struct{}
	entries []fs.Entry
	err     error
}

func (t *treeRestorer) list(ctx context.Context, d fs.Directory) *listing {
	l := &listing{ready: make(chan struct{})}
	go func() {
		defer close(l.ready)
		select {
		case t.lists <- struct{}{}:
		case <-ctx.Done():
			l.err = context.Cause(ctx)
			return
		}
		l.entries, l.err = fs.GetAllEntries(ctx, d)
		<-t.lists
	}()
	return l
}

// walk creates directory d (rel) and its symlinks, hands its files to
// emit, and walks its subdirectories. A directory is listed whole (its
// names checked) before anything in it is written.
func (t *treeRestorer) walk(ctx context.Context, d fs.Directory, rel string, l *listing, emit func(*restoreFile) error) error {
	if err := t.out.BeginDirectory(ctx, rel, d); err != nil {
		return err
	}
	t.dirs = append(t.dirs, walkedDir{rel: rel, d: d})
	if l == nil {
		l = t.list(ctx, d)
	}
	<-l.ready
	if l.err != nil {
		return fmt.Errorf("list %s in the snapshot: %w", orRoot(rel), l.err)
	}
	var subs []fs.Directory
	for _, e := range l.entries {
		if sd, ok := e.(fs.Directory); ok {
			subs = append(subs, sd)
		}
	}
	// listed[i] is started once, dirLookahead ahead of the walk.
	listed := make([]*listing, len(subs))
	started := 0
	ahead := func(upTo int) {
		for ; started < min(upTo, len(subs)); started++ {
			listed[started] = t.list(ctx, subs[started])
		}
	}
	ahead(dirLookahead)
	si := 0
	for _, e := range l.entries {
		p := path.Join(rel, e.Name())
		switch e := e.(type) {
		case fs.Directory:
			ahead(si + 1 + dirLookahead)
			sub := listed[si]
			listed[si] = nil
			si++
			if err := t.walk(ctx, e, p, sub, emit); err != nil {
				return err
			}
		case fs.Symlink:
			if err := t.out.CreateSymlink(ctx, p, e); err != nil {
				return err
			}
		case fs.File:
			if err := emit(&restoreFile{rel: p, entry: e}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s in the snapshot: unsupported entry type %T", p, e)
		}
	}
	return nil
}

func orRoot(rel string) string {
	if rel == "" {
		return "the snapshot's root"
	}
	return rel
}

// plan finds f's contents and where they lie (f.refs). A file whose object
// is not a plain list of contents (an empty file, or a layout this planner
// does not read) keeps no refs and is written whole through kopia's object
// reader.
func (t *treeRestorer) plan(ctx context.Context, f *restoreFile) error {
	if f.entry.Size() == 0 {
		return nil
	}
	cs, ok, err := t.src.Contents(ctx, f.entry)
	if err != nil {
		return fmt.Errorf("%s: %w", f.rel, err)
	}
	if ok {
		f.refs = cs
	}
	return nil
}

// Contents finds the contents of a file of this project's snapshots and
// where they lie.
func (k *kopiaPacks) Contents(ctx context.Context, f fs.File) ([]PackedContent, bool, error) {
	h, ok := f.(object.HasObjectID)
	if !ok {
		return nil, false, nil
	}
	oid := h.ObjectID()
	var refs []PackedContent
	if cid, compressed, ok := oid.ContentID(); ok {
		if compressed {
			return nil, false, nil
		}
		refs = []PackedContent{{cid: cid, Size: f.Size()}}
	} else {
		idx, ok := oid.IndexObjectID()
		if !ok {
			return nil, false, nil
		}
		entries, err := object.LoadIndexObject(ctx, indexReader{Reader: k.cr, rep: k.r.rep}, idx)
		if err != nil {
			return nil, false, fmt.Errorf("read the chunk list: %w", err)
		}
		var end int64
		for _, e := range entries {
			cid, compressed, ok := e.Object.ContentID()
			// Contiguous contents adding up to the file's size, or
			// kopia's reader, which checks every layout it knows.
			if !ok || compressed || e.Start != end || e.Length <= 0 {
				return nil, false, nil
			}
			refs = append(refs, PackedContent{cid: cid, FileOffset: e.Start, Size: e.Length})
			end += e.Length
		}
		if end != f.Size() {
			return nil, false, nil
		}
	}
	for i := range refs {
		info, err := k.cr.ContentInfo(ctx, refs[i].cid)
		if err != nil {
			return nil, false, fmt.Errorf("find content %s: %w", refs[i].cid, err)
		}
		if info.Deleted {
			return nil, false, fmt.Errorf("content %s: %w", refs[i].cid, content.ErrContentNotFound)
		}
		refs[i].info = info
		refs[i].ID = refs[i].cid.String()
		refs[i].Pack = string(info.PackBlobID)
		refs[i].Offset, refs[i].Length = int64(info.PackOffset), int64(info.PackedLength)
	}
	return refs, true, nil
}

// planBatch plans files (in parallel) and hands out their jobs: the
// ranges of each pack in the order packs are first needed, then the files
// kopia's reader writes whole.
func (t *treeRestorer) planBatch(ctx context.Context, files []*restoreFile, jobs chan<- job) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(t.workers)
	for _, f := range files {
		g.Go(func() error { return t.plan(gctx, f) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var packs []*packWork
	byPack := map[string]*packWork{}
	var whole []*restoreFile
	for _, f := range files {
		if f.refs == nil {
			whole = append(whole, f)
			continue
		}
		f.left = len(f.refs)
		for _, ref := range f.refs {
			pw := byPack[ref.Pack]
			if pw == nil {
				pw = &packWork{id: ref.Pack, byID: map[string]*packContent{}}
				byPack[pw.id] = pw
				packs = append(packs, pw)
			}
			pc := pw.byID[ref.ID]
			if pc == nil {
				pc = &packContent{c: ref}
				pw.byID[ref.ID] = pc
				pw.contents = append(pw.contents, pc)
			}
			pc.into = append(pc.into, target{f: f, off: ref.FileOffset, length: ref.Size})
		}
		f.refs = nil
	}
	send := func(j job) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for _, pw := range packs {
		for _, j := range packRanges(pw) {
			if err := send(j); err != nil {
				return err
			}
		}
	}
	for _, f := range whole {
		if err := send(job{whole: f}); err != nil {
			return err
		}
	}
	return nil
}

// packRanges splits what is needed of pack pw into ranges of at most
// packReadMax (or one content, if longer), reading through gaps of up to
// packGapMax.
func packRanges(pw *packWork) []job {
	cs := pw.contents
	slices.SortFunc(cs, func(a, b *packContent) int { return cmp.Compare(a.c.Offset, b.c.Offset) })
	var out []job
	for i := 0; i < len(cs); {
		start := cs[i].c.Offset
		end := start + cs[i].c.Length
		j := i + 1
		for ; j < len(cs); j++ {
			off := cs[j].c.Offset
			e := off + cs[j].c.Length
			if off-end > packGapMax || e-start > packReadMax {
				break
			}
			end = max(end, e)
		}
		out = append(out, job{pack: pw.id, start: start, end: end, contents: cs[i:j]})
		i = j
	}
	return out
}

// do runs one job.
func (t *treeRestorer) do(ctx context.Context, j job) error {
	if j.whole != nil {
		return t.restoreWhole(ctx, j.whole)
	}
	return t.restoreRange(ctx, j.pack, j.start, j.end, j.contents)
}

// restoreWhole writes f through kopia's object reader.
func (t *treeRestorer) restoreWhole(ctx context.Context, f *restoreFile) error {
	if err := t.out.WriteFile(ctx, f.rel, f.entry, t.noteWritten); err != nil {
		return err
	}
	f.done = true
	t.files.Add(1)
	t.bytes.Add(f.entry.Size())
	return nil
}

// packBuffers hold pack ranges being restored from; scratchBuffers hold
// contents a source decodes outside the range.
var (
	packBuffers    = sync.Pool{New: func() any { return new(blobmem.Buffer) }}
	scratchBuffers = sync.Pool{New: func() any { return new([]byte) }}
)

// restoreRange reads [start, end) of pack id once and writes the contents
// cs that lie in it. The source decodes each content from the range; a
// source that reads through storage of its own has its reads of the pack
// served from the range held in memory meanwhile.
func (t *treeRestorer) restoreRange(ctx context.Context, id string, start, end int64, cs []*packContent) error {
	buf := packBuffers.Get().(*blobmem.Buffer)
	defer packBuffers.Put(buf)
	buf.Reset()
	// Room for the range and for the last, empty read of ReadFrom, so that
	// the buffer is never grown (doubled) on the way.
	buf.Grow(int(end-start) + bytes.MinRead)
	if err := t.src.ReadPack(ctx, id, start, end-start, buf); err != nil {
		return fmt.Errorf("read pack %s for %s: %w", id, cs[0].into[0].f.rel, err)
	}
	if int64(buf.Len()) != end-start {
		return fmt.Errorf("read pack %s for %s: got %d bytes at %d, want %d", id, cs[0].into[0].f.rel, buf.Len(), start, end-start)
	}
	held := buf.Bytes()
	if h, ok := t.src.(rangeHolder); ok {
		release := h.hold(id, start, held)
		defer release()
	}
	scratch := scratchBuffers.Get().(*[]byte)
	defer scratchBuffers.Put(scratch)
	for _, c := range cs {
		raw := held[c.c.Offset-start : c.c.Offset-start+c.c.Length]
		data, err := t.src.Content(ctx, c.c, raw, scratch)
		if err != nil {
			return fmt.Errorf("read content %s of %s: %w", c.c.ID, c.into[0].f.rel, err)
		}
		for _, to := range c.into {
			if err := t.write(to, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// write puts one content at its place in its file, and the file in place
// once it is whole.
func (t *treeRestorer) write(to target, data []byte) error {
	f := to.f
	if int64(len(data)) != to.length {
		return fmt.Errorf("%s: the content at offset %d has %d bytes, the snapshot says %d", f.rel, to.off, len(data), to.length)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.t == nil {
		tf, err := t.out.createFile(f.rel)
		if err != nil {
			return err
		}
		f.t = tf
		t.open.Add(1)
		t.mu.Lock()
		if t.pending == nil {
			t.pending = map[*restoreFile]struct{}{}
		}
		t.pending[f] = struct{}{}
		t.mu.Unlock()
	} else if f.t.f == nil {
		if err := t.out.reopenFile(f.t); err != nil {
			return err
		}
		t.open.Add(1)
	}
	// A content of zeros is left a hole when asked (the file is new, and
	// its size set when it is whole).
	if !t.out.sparse || !zeros(data) {
		if _, err := f.t.f.WriteAt(data, to.off); err != nil {
			return fmt.Errorf("write %s in %s: %w", f.rel, t.out.rootPath, err)
		}
	}
	t.noteWritten(int64(len(data)))
	f.left--
	switch {
	case f.left == 0:
		t.open.Add(-1)
		if t.out.sparse {
			if err := f.t.f.Truncate(f.entry.Size()); err != nil {
				return fmt.Errorf("write %s in %s: %w", f.rel, t.out.rootPath, err)
			}
		}
		if err := t.out.commitFile(f.t, f.entry); err != nil {
			return err
		}
		f.done = true
		t.mu.Lock()
		delete(t.pending, f)
		t.mu.Unlock()
		t.files.Add(1)
		t.bytes.Add(f.entry.Size())
	case t.open.Load() > maxOpenRestoreFiles:
		t.open.Add(-1)
		if err := t.out.closeFile(f.t); err != nil {
			return err
		}
	}
	return nil
}
