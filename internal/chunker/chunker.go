// Package chunker cuts a byte stream into content-defined chunks, so that
// an insertion or a change in a large stream moves only the chunk
// boundaries near it and the rest of the stream deduplicates.
//
// It is FastCDC (Xia et al., USENIX ATC 2016): a gear rolling hash, no
// hashing before the minimum size, and normalized chunking (a stricter
// mask before the average size, a looser one after it), which keeps chunk
// sizes close to the average. The gear hash costs one shift, one add and one
// table load per byte, several times less than kopia's buzhash splitter,
// which was the largest single cost of a stream backup
// (docs/benchmarks.md).
//
// The gear table is keyed per repository (Keyed): with one public table,
// whoever holds the bucket could tell from chunk sizes whether a known
// file or dump is stored, as borg and restic avoid with a per-repository
// table or polynomial. Repositories created before keyed tables keep the
// fixed one (Unkeyed).
//
// The boundaries only decide deduplication, never correctness: changing
// the table or the sizes would make the next backup of an unchanged stream
// upload it again, so for a given key they are fixed, and TestCutsArePinned
// and TestKeyedCutsArePinned guard them.
package chunker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Chunk size bounds, in bytes.
const (
	// MinSize is the smallest chunk, except the last one of a stream.
	MinSize = 256 << 10
	// AvgSize is where the stricter mask gives way to the looser one; the
	// mean chunk is slightly larger (about 1.1 MiB).
	AvgSize = 1 << 20
	// MaxSize is the largest chunk: a stream with no boundary (all zeros)
	// is cut every MaxSize bytes.
	MaxSize = 4 << 20
)

// The masks test the hash's high bits: bit k of a gear hash depends on the
// last k+1 bytes, so high bits give the 64-byte window the cut points need
// to be independent of where the chunk started. 2^-22 per byte before
// AvgSize and 2^-18 after it (normalization level 2 around 2^20).
const (
	maskStrict = ((uint64(1) << 22) - 1) << (64 - 22)
	maskLoose  = ((uint64(1) << 18) - 1) << (64 - 18)
)

// Chunker cuts streams with one gear table, which maps each byte value to
// a pseudo-random 64-bit number. It is safe for concurrent use.
type Chunker struct {
	gear [256]uint64
}

// unkeyed is the fixed table of repositories created before keyed tables.
var unkeyed = func() *Chunker {
	// splitmix64 from a fixed seed: the table is part of the chunk
	// boundaries' definition and must never change.
	c := &Chunker{}
	x := uint64(0x5354415348434443) // "STASHCDC"
	for i := range c.gear {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		c.gear[i] = z ^ (z >> 31)
	}
	return c
}()

// Unkeyed returns the chunker with the fixed, public table, for
// repositories that have no chunker key.
func Unkeyed() *Chunker { return unkeyed }

// KeySize is the size of a chunker key.
const KeySize = 32

// Keyed returns the chunker whose table is derived from key, a
// repository's secret: HMAC-SHA256 of the key over a counter, 8 bytes per
// byte value.
func Keyed(key []byte) (*Chunker, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("chunker key is %d bytes, want %d", len(key), KeySize)
	}
	c := &Chunker{}
	for blk := range 256 / 4 {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("stash chunker gear table v1"))
		m.Write([]byte{byte(blk)})
		sum := m.Sum(nil)
		for j := range 4 {
			c.gear[blk*4+j] = binary.LittleEndian.Uint64(sum[8*j:])
		}
	}
	return c, nil
}

// Cut returns the length of the chunk that starts at b[0]. b must hold at
// least MaxSize bytes unless it is the rest of the stream; then the result
// may be len(b). It is always between 1 and min(len(b), MaxSize) for a
// non-empty b, and 0 for an empty one.
func (c *Chunker) Cut(b []byte) int {
	n := len(b)
	if n <= MinSize {
		return n
	}
	if n > MaxSize {
		n = MaxSize
	}
	normal := min(AvgSize, n)
	// Hashing starts at MinSize: the first 64 bytes hashed see a partial
	// window, as in FastCDC; after that the hash depends only on content.
	g := &c.gear
	if i := find(g, b, MinSize, normal, maskStrict); i >= 0 {
		return i + 1
	}
	if i := find(g, b, normal, n, maskLoose); i >= 0 {
		return i + 1
	}
	return n
}

// window is how many bytes a gear hash depends on: each byte's table
// value is shifted out after 64 more bytes.
const window = 64

// hashAt is the gear hash of b after its byte end-1, hashing from
// max(from, end-window): the same value the hash rolled from from has
// there.
func hashAt(g *[256]uint64, b []byte, from, end int) uint64 {
	var fp uint64
	for _, c := range b[max(from, end-window):end] {
		fp = fp<<1 + g[c]
	}
	return fp
}

// span is how far the two lanes of find run side by side before they
// move on together. Both lanes hash the same number of bytes, so when one
// finds a cut, what the other hashed past it (or has still to hash before
// it) is wasted: with each lane taking half of the whole range, the lane
// after a cut near the range's start hashed as much again, 0.878 hashes
// per byte where 0.777 are needed (docs/benchmarks.md). A short span
// bounds that waste to half a span per range (0.785 per byte); each span
// costs its second lane 64 bytes of warm-up.
const span = 64 << 10

// find returns the first i in [lo, hi) where the gear hash rolled from
// MinSize has none of mask's bits set after byte i, or -1.
//
// The hash is rolled in two lanes, the first and the second half of each
// span, each one table load, one shift and one add per byte. One lane
// waits on its own previous value at every byte; two independent lanes
// keep the processor busy in those waits, 1.5 times as fast
// (BenchmarkCut). The second lane starts from the hash at its first byte,
// which depends only on the window before it, so the cut points are those
// of one lane (TestTwoLanesMatchOne, TestCutsArePinned).
func find(g *[256]uint64, b []byte, lo, hi int, mask uint64) int {
	fp := hashAt(g, b, MinSize, lo)
	for lo < hi {
		end := min(lo+span, hi)
		i, next := findSpan(g, b, lo, end, fp, mask)
		if i >= 0 {
			return i
		}
		fp, lo = next, end
	}
	return -1
}

// findSpan is find over [lo, hi), with fpA the hash before byte lo. When
// it finds no cut it returns -1 and the hash after byte hi-1, where the
// next span's first lane goes on.
func findSpan(g *[256]uint64, b []byte, lo, hi int, fpA, mask uint64) (int, uint64) {
	half := (hi - lo) / 2
	mid := lo + half
	a := b[lo:mid]
	c := b[mid : mid+half]
	fpC := hashAt(g, b, MinSize, mid)
	for i := range a {
		fpA = fpA<<1 + g[a[i]]
		fpC = fpC<<1 + g[c[i]]
		if fpA&mask == 0 {
			return lo + i, 0
		}
		if fpC&mask == 0 {
			// The second lane found one; the first may still find an
			// earlier one in the rest of its half.
			if j, _ := scan(g, a[i+1:], fpA, mask); j >= 0 {
				return lo + i + 1 + j, 0
			}
			return mid + i, 0
		}
	}
	// The second lane is one byte longer when the span is odd.
	j, fp := scan(g, b[mid+half:hi], fpC, mask)
	if j >= 0 {
		return mid + half + j, 0
	}
	return -1, fp
}

// scan rolls the hash fp over b and returns the first i after which it has
// none of mask's bits set, or -1 and the hash after all of b.
func scan(g *[256]uint64, b []byte, fp uint64, mask uint64) (int, uint64) {
	for i, c := range b {
		fp = fp<<1 + g[c]
		if fp&mask == 0 {
			return i, fp
		}
	}
	return -1, fp
}
