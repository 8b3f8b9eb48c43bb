package dump

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"

	"github.com/stash-backup/stash/internal/bufpool"
)

// The read-ahead holds a dump's output while the repository opens (or
// while the data mover is momentarily busy): opening derives a key, which
// takes a while when it shares the CPU with the dump, and the tool must not
// wait meanwhile. It keeps up to aheadItems blocks of aheadBlock bytes of the dump,
// in at most aheadRaw blocks of memory and aheadCompressed bytes of
// compressed blocks: 64 MiB in all, as before blocks were compressed, but
// up to 256 MiB of a dump that compresses well.
const (
	aheadBlock = 1 << 20
	aheadItems = 256
	aheadRaw   = 48
	// aheadCompressed bounds the memory compressed blocks take.
	aheadCompressed = 16 << 20
	// aheadBacklog is how many blocks must wait for the reader before the
	// filler compresses what it reads: only while the reader is behind
	// (the repository still opening), not while it keeps up.
	aheadBacklog = 2
)

// aheadItem is a block of the source, compressed with S2 or not.
type aheadItem struct {
	b          []byte
	compressed bool
}

// aheadReader reads its source on a goroutine, so that the writer of the
// source (a dump tool) does not wait on the reader until the read-ahead is
// full.
//
// While the reader is behind, the blocks are kept compressed with S2: a
// dump is text, which S2 makes 3 to 30 times smaller at more than 1 GB/s.
// Memory the process has not touched yet costs a page fault per page, 2-4
// ms per MiB on the virtual machines backups run on, more than compressing
// a MiB and decompressing it again; and the same memory holds a longer
// stretch of the dump (docs/benchmarks.md).
type aheadReader struct {
	full   chan aheadItem
	blocks *bufpool.Pool // raw blocks, reused before new ones are made
	done   chan struct{}
	once   sync.Once

	// Only the reader touches these.
	cur    []byte
	curBuf []byte // the raw block cur is in, to return; nil for dec
	dec    []byte // where compressed blocks are decompressed

	err        error // the source's error, valid once full is closed
	read       atomic.Int64
	compressed atomic.Int64 // bytes of compressed blocks waiting
}

func newAheadReader(src io.Reader, block, raw, items int) *aheadReader {
	a := &aheadReader{
		full:   make(chan aheadItem, items),
		blocks: bufpool.New(block, raw),
		done:   make(chan struct{}),
	}
	go a.fill(src, block)
	return a
}

func (a *aheadReader) fill(src io.Reader, block int) {
	defer close(a.full)
	var scratch []byte // S2 output before it is copied to its exact size
	for {
		buf := a.blocks.Get(a.done)
		if buf == nil {
			return
		}
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			it := aheadItem{b: buf[:n]}
			if len(a.full) >= aheadBacklog && a.compressed.Load() < aheadCompressed {
				if scratch == nil {
					scratch = make([]byte, s2.MaxEncodedLen(block))
				}
				// Worth it only if it saves a quarter: random data
				// (compressed columns) stays as it is.
				if c := s2.Encode(scratch, buf[:n]); len(c) < n-n/4 {
					it = aheadItem{b: append([]byte(nil), c...), compressed: true}
					a.compressed.Add(int64(len(it.b)))
					a.blocks.Put(buf)
				}
			}
			select {
			case a.full <- it:
			case <-a.done:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return
		}
		if err != nil {
			a.err = err
			return
		}
	}
}

// Read implements io.Reader.
func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.curBuf != nil {
			a.blocks.Put(a.curBuf)
			a.curBuf = nil
		}
		it, ok := <-a.full
		if !ok {
			if a.err != nil {
				return 0, a.err
			}
			return 0, io.EOF
		}
		if !it.compressed {
			a.cur, a.curBuf = it.b, it.b
			continue
		}
		a.compressed.Add(-int64(len(it.b)))
		n, err := s2.DecodedLen(it.b)
		if err != nil {
			return 0, fmt.Errorf("read-ahead: %w", err)
		}
		if cap(a.dec) < n {
			a.dec = make([]byte, n)
		}
		if a.cur, err = s2.Decode(a.dec[:cap(a.dec)], it.b); err != nil {
			return 0, fmt.Errorf("read-ahead: %w", err)
		}
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	a.read.Add(int64(n))
	return n, nil
}

// Close stops reading ahead; the source is left to its owner.
func (a *aheadReader) Close() {
	a.once.Do(func() { close(a.done) })
}
