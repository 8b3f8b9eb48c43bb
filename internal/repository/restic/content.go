package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// maxGroupBytes bounds one read of a pack: consecutive blobs of a file
// that lie one after another in the same pack are read in one request up
// to this size.
const maxGroupBytes = 8 << 20

// blobRef is one blob of a file's content with where it lies.
type blobRef struct {
	id  ID
	loc blobLoc
}

func (b blobRef) size() int64 {
	if b.loc.uncompressedLength != 0 {
		return int64(b.loc.uncompressedLength)
	}
	return int64(b.loc.length) - overhead
}

// group is a run of blobs read with one request.
type group []blobRef

// plan looks up a file's content blobs and groups the runs that lie
// contiguously in one pack.
func (r *Repository) plan(ctx context.Context, content []ID) ([]group, int64, error) {
	var groups []group
	// cur and curPlain are the stored and decoded bytes of the last
	// group: both bound what one group holds in memory.
	var total, cur, curPlain int64
	for _, id := range content {
		loc, err := r.lookup(ctx, DataBlob, id)
		if err != nil {
			return nil, 0, err
		}
		// The index is input from storage: a group's buffers are sized
		// from it.
		if err := checkSize(DataBlob, id, loc); err != nil {
			return nil, 0, err
		}
		ref := blobRef{id: id, loc: loc}
		total += ref.size()
		if n := len(groups); n > 0 {
			last := groups[n-1][len(groups[n-1])-1]
			if last.loc.pack == loc.pack && last.loc.offset+last.loc.length == loc.offset &&
				cur+int64(loc.length) <= maxGroupBytes && curPlain+int64(loc.uncompressedLength) <= maxGroupBytes {
				groups[n-1] = append(groups[n-1], ref)
				cur += int64(loc.length)
				curPlain += int64(loc.uncompressedLength)
				continue
			}
		}
		groups = append(groups, group{ref})
		cur, curPlain = int64(loc.length), int64(loc.uncompressedLength)
	}
	return groups, total, nil
}

// buffers are reused for pack ranges and decompressed blobs: memory the
// process has not touched yet costs a page fault per page, which on the
// virtual machines backups run on costs more than reading the data.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// buffer returns a pooled buffer of n bytes.
func buffer(n int) *[]byte {
	b := buffers.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

// loaded is a group's blobs and the pooled memory they lie in.
type loaded struct {
	blobs [][]byte
	bufs  []*[]byte
}

// release hands the group's memory back; its blobs are not read after.
func (l *loaded) release() {
	for _, b := range l.bufs {
		buffers.Put(b)
	}
	l.blobs, l.bufs = nil, nil
}

// loadGroup reads a group's pack range once and verifies every blob.
// Compressed blobs are decoded into one buffer for the group, one after
// another.
func (r *Repository) loadGroup(ctx context.Context, g group) (loaded, error) {
	first, last := g[0].loc, g[len(g)-1].loc
	raw := buffer(int(last.offset + last.length - first.offset))
	l := loaded{bufs: []*[]byte{raw}}
	if err := r.readRange(ctx, PackFile, first.pack.String(), int64(first.offset), *raw); err != nil {
		l.release()
		return loaded{}, fmt.Errorf("read pack %s: %w", short(first.pack.String()), err)
	}
	var plain int
	for _, b := range g {
		plain += int(b.loc.uncompressedLength)
	}
	var out []byte
	if plain > 0 {
		p := buffer(plain)
		l.bufs = append(l.bufs, p)
		out = (*p)[:0]
	}
	l.blobs = make([][]byte, len(g))
	for i, b := range g {
		start := b.loc.offset - first.offset
		blob, err := r.decodeBlob(DataBlob, b.id, b.loc, (*raw)[start:start+b.loc.length], out[len(out):len(out):cap(out)])
		if err != nil {
			l.release()
			return loaded{}, err
		}
		if b.loc.uncompressedLength != 0 {
			out = out[:len(out)+len(blob)]
		}
		l.blobs[i] = blob
	}
	return l, nil
}

// prefetch reads groups ahead of the consumer, at most inflight at once,
// and hands their blobs over in order.
type prefetch struct {
	futures chan chan groupResult
	cancel  context.CancelFunc
}

type groupResult struct {
	l   loaded
	err error
}

func (r *Repository) prefetch(ctx context.Context, groups []group, inflight int) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{futures: make(chan chan groupResult, max(inflight-1, 0)), cancel: cancel}
	go func() {
		defer close(p.futures)
		for _, g := range groups {
			f := make(chan groupResult, 1)
			select {
			case p.futures <- f:
			case <-ctx.Done():
				return
			}
			go func() {
				l, err := r.loadGroup(ctx, g)
				f <- groupResult{l, err}
			}()
		}
	}()
	return p
}

// next returns the next group's blobs, or io.EOF after the last. The
// caller releases them.
func (p *prefetch) next() (loaded, error) {
	f, ok := <-p.futures
	if !ok {
		return loaded{}, io.EOF
	}
	res := <-f
	return res.l, res.err
}

func (p *prefetch) close() {
	p.cancel()
	for f := range p.futures {
		res := <-f
		res.l.release()
	}
}

// writeContent writes a file's content to w, reading ahead inflight
// groups, and returns the bytes written.
func (r *Repository) writeContent(ctx context.Context, content []ID, w io.Writer, inflight int, progress func(int64)) (int64, error) {
	groups, _, err := r.plan(ctx, content)
	if err != nil {
		return 0, err
	}
	p := r.prefetch(ctx, groups, inflight)
	defer p.close()
	var n int64
	for {
		l, err := p.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		for _, b := range l.blobs {
			m, err := w.Write(b)
			n += int64(m)
			if err != nil {
				l.release()
				return n, err
			}
			if progress != nil {
				progress(int64(m))
			}
		}
		l.release()
	}
}

// contentReader reads a file's content sequentially, with read-ahead, and
// seeks by restarting at the blob holding the new offset.
type contentReader struct {
	r        *Repository
	ctx      context.Context
	inflight int

	groups []group
	size   int64
	pos    int64
	// p fetches from the blob holding pos; skip is how much of its first
	// blob lies before pos; cur is what is left of the current blob.
	p    *prefetch
	skip int64
	held loaded // the group buf and cur lie in
	buf  [][]byte
	cur  []byte
}

func (r *Repository) newContentReader(ctx context.Context, content []ID, inflight int) (*contentReader, error) {
	groups, size, err := r.plan(ctx, content)
	if err != nil {
		return nil, err
	}
	return &contentReader{r: r, ctx: ctx, inflight: inflight, groups: groups, size: size}, nil
}

func (c *contentReader) Read(b []byte) (int, error) {
	for len(c.cur) == 0 {
		if len(c.buf) > 0 {
			c.cur, c.buf = c.buf[0], c.buf[1:]
			continue
		}
		if c.p == nil {
			c.start(c.pos)
		}
		c.held.release()
		l, err := c.p.next()
		if err != nil {
			return 0, err
		}
		c.held, c.buf = l, l.blobs
		if c.skip > 0 && len(c.buf) > 0 {
			c.buf[0], c.skip = c.buf[0][c.skip:], 0
		}
	}
	n := copy(b, c.cur)
	c.cur = c.cur[n:]
	c.pos += int64(n)
	return n, nil
}

// start begins reading at offset off.
func (c *contentReader) start(off int64) {
	var at int64
	for gi, g := range c.groups {
		for bi, b := range g {
			if at+b.size() > off {
				rest := append(group{}, g[bi:]...)
				gs := append([]group{rest}, c.groups[gi+1:]...)
				c.p = c.r.prefetch(c.ctx, gs, c.inflight)
				c.skip = off - at
				return
			}
			at += b.size()
		}
	}
	c.p = c.r.prefetch(c.ctx, nil, c.inflight)
}

func (c *contentReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += c.pos
	case io.SeekEnd:
		off += c.size
	}
	if off < 0 {
		return 0, errors.New("seek before the start of the file")
	}
	if off != c.pos {
		c.stop()
		c.pos = off
	}
	return off, nil
}

func (c *contentReader) stop() {
	if c.p != nil {
		c.p.close()
		c.p = nil
	}
	c.held.release()
	c.buf, c.cur = nil, nil
}

func (c *contentReader) Close() error {
	c.stop()
	return nil
}
