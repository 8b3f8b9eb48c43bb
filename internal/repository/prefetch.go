package repository

import (
	"context"
	"sync/atomic"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
)

// A stream restore from a local repository hints the kernel which ranges
// of which pack files its readers will read, so that the disk reads
// ahead while the chunks before are decoded, rather than a chunk at a
// time as each reader asks. The hints stay within prefetchWindow stored
// bytes of the chunk being written: far enough to cover the disk's
// latency, near enough not to queue ahead of the readers' own reads
// (larger windows restored more slowly). Each hint covers at most
// prefetchRun bytes of one pack. Object stores get no hints: the
// readers' requests run in parallel there.
const (
	prefetchWindow = 32 << 20
	prefetchRun    = 4 << 20
)

// filePaths is what a local repository's storage (kopia's filesystem
// storage) tells about where a blob lies.
type filePaths interface {
	GetShardedPathAndFilePath(ctx context.Context, id blob.ID) (shardPath, filePath string, err error)
}

// packRange is where a chunk is stored.
type packRange struct {
	pack blob.ID
	off  int64
	n    int64
}

// prefetcher hints a restore's pack reads ahead of its writer.
type prefetcher struct {
	paths  filePaths
	advise func(path string, off, n int64)
	// done is how many chunks the writer has written; kick wakes a
	// prefetcher waiting for it to move.
	done atomic.Int64
	kick chan struct{}
}

// newPrefetcher returns a prefetcher for r's storage, or nil when it is no
// local file system or the system takes no advice.
func (r *Reader) newPrefetcher() *prefetcher {
	p, advise := r.hints()
	if advise == nil {
		return nil
	}
	return &prefetcher{paths: p, advise: advise, kick: make(chan struct{}, 1)}
}

// hints returns where r's storage keeps its packs and how to advise the
// kernel of reads ahead; a nil advise when the storage is no local file
// system or the system takes no advice.
func (r *Reader) hints() (filePaths, func(path string, off, n int64)) {
	p, ok := r.st.(filePaths)
	switch {
	case !ok:
		return nil, nil
	case r.advise != nil:
		return p, r.advise
	case canAdvise:
		return p, adviseWillNeed
	}
	return p, nil
}

// hintedReads says a stream restore's reads are hinted ahead (see
// readers).
func (r *Reader) hintedReads() bool {
	_, advise := r.hints()
	return advise != nil
}

// wrote tells the prefetcher the writer has written n chunks.
func (p *prefetcher) wrote(n int) {
	if p == nil {
		return
	}
	p.done.Store(int64(n))
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// contentRanges returns where each one-content chunk of entries is stored;
// at the first chunk that is not (or not in the index), the rest are left
// unhinted.
func contentRanges(ctx context.Context, cr content.Reader, entries []object.IndirectObjectEntry) func(int) (packRange, bool) {
	return func(i int) (packRange, bool) {
		cid, compressed, ok := entries[i].Object.ContentID()
		if !ok || compressed {
			return packRange{}, false
		}
		info, err := cr.ContentInfo(ctx, cid)
		if err != nil {
			return packRange{}, false
		}
		return packRange{pack: info.PackBlobID, off: int64(info.PackOffset), n: int64(info.PackedLength)}, true
	}
}

// run hints the ranges of chunks 0..n-1 in order, each only once the
// hinted bytes not yet written leave it room in prefetchWindow, until all
// are hinted, locate fails or ctx ends. Hints are advice: nothing that
// goes wrong here fails the restore.
func (p *prefetcher) run(ctx context.Context, n int, locate func(int) (packRange, bool)) {
	var (
		run      packRange // the hint being gathered
		sizes    = make([]int64, 0, n)
		hinted   int64 // bytes of chunks 0..i-1
		written  int64 // bytes of the chunks written
		nwritten int
	)
	flush := func() {
		if run.n == 0 {
			return
		}
		if _, path, err := p.paths.GetShardedPathAndFilePath(ctx, run.pack); err == nil {
			p.advise(path, run.off, run.n)
		}
		run = packRange{}
	}
	for i := range n {
		if ctx.Err() != nil {
			return
		}
		r, ok := locate(i)
		if !ok {
			break
		}
		sizes = append(sizes, r.n)
		if hinted+r.n-written > prefetchWindow {
			// Hint what was gathered, then wait for the writer to make
			// room for a whole run, so that hints stay few and long.
			flush()
			for {
				for d := int(p.done.Load()); nwritten < d && nwritten < i; nwritten++ {
					written += sizes[nwritten]
				}
				if hinted+r.n-written <= prefetchWindow-prefetchRun || nwritten == i {
					break
				}
				select {
				case <-p.kick:
				case <-ctx.Done():
					return
				}
			}
		}
		if r.pack == run.pack && run.n > 0 && r.off >= run.off && r.off+r.n-run.off <= prefetchRun {
			run.n = max(run.n, r.off+r.n-run.off)
		} else {
			flush()
			run = r
		}
		hinted += r.n
	}
	flush()
}
