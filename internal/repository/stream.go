package repository

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"

	"github.com/stash-backup/stash/internal/bufpool"
	"github.com/stash-backup/stash/internal/chunker"
)

// streamWindow is how much of a stream is read ahead of the chunker: a few
// maximum chunks, so that refills (and the copy of the unchunked rest to the
// window's front) are rare.
const streamWindow = 4 * chunker.MaxSize

// indexPrefix is kopia's content prefix for object indexes (its
// indirectContentPrefix): such contents are packed with metadata.
const indexPrefix = content.IDPrefix("x")

// chunkSplitter is the kopia splitter each chunk is written with: larger
// than chunker.MaxSize, so kopia never cuts a chunk again and each chunk is
// one content.
const chunkSplitter = "FIXED-8M"

// streamWriter stores a stream as one kopia object. It does what kopia's
// object writer does, with two differences that cut a stream backup's CPU
// (docs/benchmarks.md): chunk boundaries come from internal/chunker (a gear
// hash, 2.9 times faster than kopia's buzhash), and chunks that sampling
// shows to be random (already compressed or encrypted data) are stored
// without trying to compress them. Chunks are written by parallel workers
// and listed in order in kopia's own index object format, so kopia reads,
// verifies and garbage-collects the result like any object it wrote
// (TestStreamWriterObjects, TestForgetAndPruneFreeSpace).
type streamWriter struct {
	rw       repo.RepositoryWriter
	chunker  *chunker.Chunker
	comp     compression.Name // for data and the index; "" or "none" when off
	workers  int
	name     string
	progress Progress
}

type chunkJob struct {
	idx int
	buf []byte
}

// write reads src to the end and returns the object holding it and its
// length. On error nothing refers to the contents written so far; kopia's
// maintenance removes them.
func (s *streamWriter) write(ctx context.Context, src io.Reader) (object.ID, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu      sync.Mutex
		entries []object.IndirectObjectEntry
		werr    error
	)
	fail := func(err error) {
		mu.Lock()
		if werr == nil {
			werr = err
		}
		mu.Unlock()
		cancel()
	}

	// Buffers circulate between the reader and the workers; their number
	// bounds memory (workers+2 chunks of at most MaxSize) and applies
	// back-pressure to the reader.
	bufs := bufpool.New(chunker.MaxSize, s.workers+2)
	defer bufs.Close()
	jobs := make(chan chunkJob)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for j := range jobs {
				oid, err := s.writeChunk(ctx, j.buf)
				if err != nil {
					fail(fmt.Errorf("write chunk %d of %s: %w", j.idx, s.name, err))
				} else {
					mu.Lock()
					entries[j.idx].Object = oid
					mu.Unlock()
				}
				bufs.Put(j.buf)
			}
		})
	}

	total, rerr := s.split(ctx, src, bufs, jobs, func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		idx := len(entries)
		entries = append(entries, object.IndirectObjectEntry{Start: entriesEnd(entries), Length: int64(n)})
		return idx
	})
	close(jobs)
	wg.Wait()
	if werr != nil {
		return object.EmptyID, 0, werr
	}
	if rerr != nil {
		return object.EmptyID, 0, rerr
	}

	switch len(entries) {
	case 0:
		// An empty object, as kopia stores it (one empty content).
		oid, err := s.writeChunk(ctx, nil)
		return oid, 0, err
	case 1:
		return entries[0].Object, total, nil
	}
	oid, err := s.writeIndex(ctx, entries)
	return oid, total, err
}

// writeChunk stores one chunk as one content through kopia's object
// writer, which hashes, deduplicates, compresses, encrypts and packs it.
func (s *streamWriter) writeChunk(ctx context.Context, b []byte) (object.ID, error) {
	comp := s.comp
	if incompressible(b) {
		comp = ""
	}
	w := s.rw.NewObjectWriter(ctx, object.WriterOptions{
		Description:        "STREAMFILE:" + s.name,
		Compressor:         comp,
		MetadataCompressor: s.comp,
		Splitter:           chunkSplitter,
	})
	defer w.Close() //nolint:errcheck
	if _, err := w.Write(b); err != nil {
		return object.EmptyID, err
	}
	return w.Result()
}

func entriesEnd(e []object.IndirectObjectEntry) int64 {
	if len(e) == 0 {
		return 0
	}
	last := e[len(e)-1]
	return last.Start + last.Length
}

// split reads src through a window, cuts chunks and hands each to the
// workers in a buffer from bufs; add records a chunk of n bytes and
// returns its index.
func (s *streamWriter) split(ctx context.Context, src io.Reader, bufs *bufpool.Pool, jobs chan<- chunkJob, add func(n int) int) (int64, error) {
	win := bufpool.Take(streamWindow)
	defer bufpool.Give(win)
	var total int64
	filled, eof := 0, false
	for {
		if !eof {
			n, err := io.ReadFull(src, win[filled:])
			filled += n
			if s.progress != nil && n > 0 {
				s.progress.Add(int64(n))
			}
			total += int64(n)
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				eof = true
			case err != nil:
				return total, fmt.Errorf("read stream %s: %w", s.name, err)
			}
		}
		data := win[:filled]
		for len(data) > 0 && (eof || len(data) >= chunker.MaxSize) {
			c := s.chunker.Cut(data)
			buf := bufs.Get(ctx.Done())
			if buf == nil {
				return total, ctx.Err()
			}
			buf = append(buf[:0], data[:c]...)
			select {
			case jobs <- chunkJob{idx: add(c), buf: buf}:
			case <-ctx.Done():
				return total, ctx.Err()
			}
			data = data[c:]
		}
		if eof {
			return total, nil
		}
		filled = copy(win, data)
	}
}

// writeIndex stores the list of chunks the way kopia's object writer does
// for an object of several chunks: a JSON index object in "x" contents,
// referred to with one more level of indirection.
func (s *streamWriter) writeIndex(ctx context.Context, entries []object.IndirectObjectEntry) (object.ID, error) {
	iw := s.rw.NewObjectWriter(ctx, object.WriterOptions{
		Description:        "LIST(STREAMFILE:" + s.name + ")",
		Prefix:             indexPrefix,
		Compressor:         s.comp,
		MetadataCompressor: s.comp,
	})
	defer iw.Close() //nolint:errcheck
	index := struct {
		StreamID string                       `json:"stream"`
		Entries  []object.IndirectObjectEntry `json:"entries"`
	}{"kopia:indirect", entries}
	if err := json.NewEncoder(iw).Encode(index); err != nil {
		return object.EmptyID, fmt.Errorf("write index of %s: %w", s.name, err)
	}
	iid, err := iw.Result()
	if err != nil {
		return object.EmptyID, fmt.Errorf("write index of %s: %w", s.name, err)
	}
	oid, err := object.ParseID("I" + iid.String())
	if err != nil {
		return object.EmptyID, fmt.Errorf("index of %s: %w", s.name, err)
	}
	return oid, nil
}

// Sampling for incompressible: up to 32 windows of 256 bytes spread over
// the chunk, at least 4 (a 4 KiB file is read whole). 256 random bytes hold
// about 162 distinct values (rarely below 140); text has at most 95
// (printable ASCII), base64 64.
const (
	sampleWindows  = 32
	sampleWindow   = 256
	randomDistinct = 128
	// minSampled is the smallest input sampled; below it compressing is
	// cheap anyway.
	minSampled = 4 * sampleWindow * 4
)

// incompressible reports whether every sampled window of b looks like
// random bytes, for which zstd would spend its time and then store the
// chunk uncompressed anyway. One window that does not (text next to a
// compressed column, say) keeps compression on for the chunk.
func incompressible(b []byte) bool {
	if len(b) < minSampled {
		return false
	}
	windows := min(sampleWindows, len(b)/(sampleWindow*4))
	step := (len(b) - sampleWindow) / (windows - 1)
	for w := range windows {
		var seen [4]uint64
		for _, c := range b[w*step : w*step+sampleWindow] {
			seen[c>>6] |= 1 << (c & 63)
		}
		n := bits.OnesCount64(seen[0]) + bits.OnesCount64(seen[1]) + bits.OnesCount64(seen[2]) + bits.OnesCount64(seen[3])
		if n < randomDistinct {
			return false
		}
	}
	return true
}
