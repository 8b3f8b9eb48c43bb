package galera

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"strings"
)

// xbstream is the archive format of an SST and of a backup
// (xtrabackup.stream): chunks of files, each "XBSTCK01", a flags byte, a
// type byte ('P' payload, 'S' sparse payload, 'E' end of file), the
// path's length (4 bytes, little-endian) and the path; payload chunks go
// on with the payload's length and offset (8 bytes each), its CRC-32
// (IEEE) and the payload. Percona's sparse chunks carry a map of holes
// before the payload. mariabackup's mbstream writes the same format.
const (
	chunkMagic = "XBSTCK01"
	// flagIgnorable marks a chunk of a type a reader may skip.
	flagIgnorable = 0x01
	// maxPath bounds a path, so that a hostile stream cannot make the
	// checker hold an unbounded header.
	maxPath = 4096
	// CompletionMarker is the file a backup tool writes when the copy is
	// complete (its LSNs): a stream without it was cut short.
	CompletionMarker = "xtrabackup_checkpoints"
	// GaleraInfo holds the cluster's UUID and the backup's seqno.
	GaleraInfo = "xtrabackup_galera_info"
)

// Checker passes an xbstream through to W and checks it on the way: every
// chunk well formed, every payload's CRC-32, every path relative and
// inside the directory it is extracted into, every file ended. Close says
// whether the stream was complete: it ended between chunks, every file it
// began it ended, and it holds the backup tool's completion marker.
type Checker struct {
	// W receives the stream as it is checked; nil when the checker
	// extracts it itself (NewExtractor).
	W io.Writer
	x *extraction

	hdr      []byte // the header being read
	need     int    // header bytes still wanted before the next state
	state    int
	typ      byte
	flags    byte
	sparse   int
	path     string
	off      int64  // where the payload being passed goes in its file
	left     uint64 // payload bytes still to pass
	crc      uint32
	want     uint32
	checkCRC bool
	capture  bool

	open  map[string]bool
	files map[string]bool
	// ends holds, for each file of payload chunks only, where its next
	// chunk must start: mbstream refuses a chunk out of order, and so
	// does the extractor (Percona's sparse chunks are left to xbstream).
	ends map[string]uint64
	// small holds the content of the few small files a restore needs
	// (the Galera position).
	small map[string][]byte
	total int64
}

const (
	stMagic = iota // magic, flags, type, path length
	stPath
	stPayloadHdr
	stSparseMap
	stPayload
)

// NewChecker returns a Checker writing to w.
func NewChecker(w io.Writer) *Checker {
	return &Checker{W: w, need: 14, open: map[string]bool{}, files: map[string]bool{}, ends: map[string]uint64{}, small: map[string][]byte{}}
}

// Write checks p and passes it on in one write (a pipe to the extracting
// tool costs a system call per write, and chunk headers are a few bytes
// each); a malformed stream fails at once, before p is passed on.
func (c *Checker) Write(p []byte) (int, error) {
	if err := c.check(p); err != nil {
		return 0, err
	}
	if c.W != nil {
		if _, err := c.W.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// check runs p through the checker's state.
func (c *Checker) check(p []byte) error {
	for len(p) > 0 {
		if c.state == stPayload {
			k := int(min(uint64(len(p)), c.left))
			if c.checkCRC {
				c.crc = crc32.Update(c.crc, crc32.IEEETable, p[:k])
			}
			if c.capture {
				c.small[c.path] = append(c.small[c.path], p[:k]...)
			}
			if c.x != nil {
				if err := c.x.write(c.path, c.off, p[:k]); err != nil {
					return err
				}
				c.off += int64(k)
			}
			c.total += int64(k)
			p = p[k:]
			c.left -= uint64(k)
			if c.left == 0 {
				if err := c.endPayload(); err != nil {
					return err
				}
			}
			continue
		}
		k := min(len(p), c.need-len(c.hdr))
		c.hdr = append(c.hdr, p[:k]...)
		c.total += int64(k)
		p = p[k:]
		if len(c.hdr) == c.need {
			if err := c.header(); err != nil {
				return err
			}
		}
	}
	return nil
}

// next makes the checker wait for n header bytes in state s.
func (c *Checker) next(s, n int) {
	c.state, c.need, c.hdr = s, n, c.hdr[:0]
}

// header acts on a complete header part.
func (c *Checker) header() error {
	h := c.hdr
	switch c.state {
	case stMagic:
		if string(h[:8]) != chunkMagic {
			return fmt.Errorf("xbstream: no chunk at byte %d (not an xbstream, or a stream cut and joined)", c.total-int64(len(h)))
		}
		c.flags, c.typ = h[8], h[9]
		l := binary.LittleEndian.Uint32(h[10:14])
		if l == 0 || l > maxPath {
			return fmt.Errorf("xbstream: a chunk's path is %d bytes long", l)
		}
		c.next(stPath, int(l))
	case stPath:
		p := string(h)
		if err := checkPath(p); err != nil {
			return err
		}
		c.path = p
		switch c.typ {
		case 'E':
			if !c.open[p] && !c.files[p] {
				// An empty file is only its end chunk.
				c.files[p] = true
				if c.x != nil {
					if _, err := c.x.create(p); err != nil {
						return err
					}
				}
			}
			delete(c.open, p)
			if c.x != nil {
				if err := c.x.end(p); err != nil {
					return err
				}
			}
			c.next(stMagic, 14)
		case 'P':
			c.next(stPayloadHdr, 20)
		case 'S':
			c.next(stPayloadHdr, 24)
		default:
			if c.flags&flagIgnorable == 0 {
				return fmt.Errorf("xbstream: chunk of unknown type %q for %s", c.typ, p)
			}
			// An ignorable chunk of an unknown type has no payload
			// this reader knows how to skip: refuse rather than guess.
			return fmt.Errorf("xbstream: ignorable chunk of unknown type %q for %s: this reader cannot skip it", c.typ, p)
		}
	case stPayloadHdr:
		off := 0
		c.sparse = 0
		if c.typ == 'S' {
			c.sparse = int(binary.LittleEndian.Uint32(h[0:4]))
			off = 4
		}
		c.left = binary.LittleEndian.Uint64(h[off:])
		at := binary.LittleEndian.Uint64(h[off+8:])
		c.want = binary.LittleEndian.Uint32(h[off+16:])
		c.crc = 0
		// The checksum of a sparse chunk is not verified: its
		// coverage (map and payload) is Percona's, and no Percona
		// tool runs here to hold a check to it.
		c.checkCRC = c.typ == 'P'
		if err := c.place(at); err != nil {
			return err
		}
		c.open[c.path] = true
		c.files[c.path] = true
		c.capture = (c.path == GaleraInfo || c.path == CompletionMarker) && len(c.small[c.path]) < 4096
		if c.sparse > 0 {
			if c.sparse > 1<<20 {
				return fmt.Errorf("xbstream: %s: a sparse map of %d entries", c.path, c.sparse)
			}
			c.next(stSparseMap, c.sparse*8)
			return nil
		}
		c.startPayload()
	case stSparseMap:
		c.startPayload()
	}
	return nil
}

// place checks where a payload chunk goes: a file's payload chunks follow
// one another, each starting where the one before it ended, and a file
// once ended is not written again. A sparse chunk's offsets are Percona's
// to define: its file is not followed further, and the extractor refuses
// it.
func (c *Checker) place(at uint64) error {
	p := c.path
	if c.files[p] && !c.open[p] {
		return fmt.Errorf("xbstream: %s has more data after its end chunk", p)
	}
	if c.typ == 'S' {
		if c.x != nil {
			return fmt.Errorf("xbstream: %s: a sparse chunk, which only Percona's xbstream writes and extracts", p)
		}
		c.ends[p] = math.MaxUint64
		return nil
	}
	end, seen := c.ends[p]
	if end != math.MaxUint64 {
		if seen && at != end || !seen && at != 0 {
			return fmt.Errorf("xbstream: %s: a chunk at offset %d, where the file is %d bytes long: out of order", p, at, end)
		}
		if at+c.left < at || at+c.left > math.MaxInt64 {
			return fmt.Errorf("xbstream: %s: a chunk of %d bytes at offset %d", p, c.left, at)
		}
		c.ends[p] = at + c.left
	}
	c.off = int64(at)
	return nil
}

func (c *Checker) startPayload() {
	if c.left == 0 {
		// endPayload cannot fail for an empty payload's CRC (0).
		_ = c.endPayload()
		return
	}
	c.state, c.hdr = stPayload, c.hdr[:0]
}

func (c *Checker) endPayload() error {
	if c.checkCRC && c.crc != c.want {
		return fmt.Errorf("xbstream: %s: payload checksum %08x, the chunk says %08x: the stream is damaged", c.path, c.crc, c.want)
	}
	c.next(stMagic, 14)
	return nil
}

// checkPath refuses a path that would leave the directory it is extracted
// into, or that no backup tool writes.
func checkPath(p string) error {
	if strings.ContainsRune(p, 0) || strings.HasPrefix(p, "/") || p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("xbstream: path %q leaves the data directory: refused", p)
	}
	return nil
}

// ErrIncomplete is what Close returns for a stream cut short.
var ErrIncomplete = errors.New("xbstream incomplete")

// Close checks that the stream is complete, and closes the files an
// extractor holds open (always: also after a failed stream).
func (c *Checker) Close() error {
	err := c.complete()
	if c.x != nil {
		if xerr := c.x.close(); err == nil {
			err = xerr
		}
	}
	return err
}

func (c *Checker) complete() error {
	switch {
	case c.state != stMagic || len(c.hdr) > 0:
		return fmt.Errorf("%w: it ends inside a chunk of %s after %d bytes", ErrIncomplete, c.path, c.total)
	case len(c.open) > 0:
		for p := range c.open {
			return fmt.Errorf("%w: %s has no end chunk", ErrIncomplete, p)
		}
	case !c.files[CompletionMarker]:
		return fmt.Errorf("%w: no %s, which the backup tool writes last", ErrIncomplete, CompletionMarker)
	}
	return nil
}

// Files returns the number of files seen.
func (c *Checker) Files() int { return len(c.files) }

// Bytes returns the number of bytes passed.
func (c *Checker) Bytes() int64 { return c.total }

// Position returns the Galera position (uuid, seqno) the stream's
// xtrabackup_galera_info gives, if it has one.
func (c *Checker) Position() (Position, bool) {
	b, ok := c.small[GaleraInfo]
	if !ok {
		return Position{}, false
	}
	pos, err := ParsePosition(string(b))
	return pos, err == nil
}
