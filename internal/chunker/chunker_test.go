package chunker

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kopia/kopia/repo/splitter"
)

func random(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// cuts splits data the way a caller does: Cut on what is left, with at
// least MaxSize bytes unless at the end.
func cuts(data []byte) []int {
	var out []int
	for len(data) > 0 {
		c := Cut(data)
		out = append(out, c)
		data = data[c:]
	}
	return out
}

func TestCutBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"below min", make([]byte, MinSize-1)},
		{"exactly min", make([]byte, MinSize)},
		{"zeros", make([]byte, 3*MaxSize+5)},
		{"random", random(32<<20, 1)},
		{"text", bytes.Repeat([]byte("INSERT INTO t VALUES (1, 'stash');\n"), 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := cuts(tc.data)
			total := 0
			for i, c := range cs {
				total += c
				if c > MaxSize || c < 1 {
					t.Fatalf("chunk %d has %d bytes, want 1..%d", i, c, MaxSize)
				}
				if c < MinSize && i != len(cs)-1 {
					t.Fatalf("chunk %d of %d has %d bytes, below MinSize and not last", i, len(cs), c)
				}
			}
			if total != len(tc.data) {
				t.Fatalf("chunks cover %d bytes of %d", total, len(tc.data))
			}
		})
	}
}

func TestZerosCutAtMax(t *testing.T) {
	cs := cuts(make([]byte, 2*MaxSize+1))
	if len(cs) != 3 || cs[0] != MaxSize || cs[1] != MaxSize || cs[2] != 1 {
		t.Fatalf("zeros cut as %v, want [%d %d 1]", cs, MaxSize, MaxSize)
	}
}

func TestAverageSize(t *testing.T) {
	data := random(128<<20, 2)
	cs := cuts(data)
	avg := len(data) / len(cs)
	// The expected mean is about 1.1 MiB; a wrong mask (say, low bits)
	// moves it far away.
	if avg < 900<<10 || avg > 1400<<10 {
		t.Fatalf("mean chunk %d bytes over %d chunks, want about 1.1 MiB", avg, len(cs))
	}
}

// TestResync is the point of content-defined chunking: after an insertion
// near the start, the boundaries further on are the same, so the chunks
// after the change deduplicate.
func TestResync(t *testing.T) {
	data := random(40<<20, 3)
	edited := append(append(append([]byte{}, data[:5<<20]...), []byte("a few inserted bytes")...), data[5<<20:]...)
	set := func(d []byte) map[[32]byte]bool {
		m := map[[32]byte]bool{}
		for len(d) > 0 {
			c := Cut(d)
			m[sha256.Sum256(d[:c])] = true
			d = d[c:]
		}
		return m
	}
	a, b := set(data), set(edited)
	shared := 0
	for k := range b {
		if a[k] {
			shared++
		}
	}
	if changed := len(b) - shared; changed > 3 {
		t.Fatalf("an insertion changed %d of %d chunks, want at most 3", changed, len(b))
	}
}

// TestCutsArePinned fails when the table, the masks or the sizes change:
// that would silently end deduplication against existing snapshots.
func TestCutsArePinned(t *testing.T) {
	got := fmt.Sprint(cuts(random(12<<20, 4)))
	const want = "[1119814 1185311 1424581 1698633 1229769 1906663 1220272 1230345 1493087 74437]"
	if got != want {
		t.Fatalf("cut points of the pinned stream changed:\n got %s\nwant %s", got, want)
	}
}

func BenchmarkCut(b *testing.B) {
	data := random(64<<20, 5)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d := data
		for len(d) > 0 {
			d = d[Cut(d):]
		}
	}
}

// BenchmarkKopiaBuzhash is the splitter stream backups used before, on the
// same data, for comparison (docs/benchmarks.md).
func BenchmarkKopiaBuzhash(b *testing.B) {
	data := random(64<<20, 5)
	f := splitter.GetFactory("DYNAMIC-1M-BUZHASH")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s := f()
		d := data
		for len(d) > 0 {
			n := s.NextSplitPoint(d)
			if n < 0 {
				break
			}
			d = d[n:]
		}
		s.Close()
	}
}

// cutOneLane is Cut as FastCDC describes it, one byte after the other.
func cutOneLane(b []byte) int {
	n := len(b)
	if n <= MinSize {
		return n
	}
	n = min(n, MaxSize)
	normal := min(AvgSize, n)
	var fp uint64
	for i := MinSize; i < n; i++ {
		fp = fp<<1 + gear[b[i]]
		mask := maskLoose
		if i < normal {
			mask = maskStrict
		}
		if fp&mask == 0 {
			return i + 1
		}
	}
	return n
}

// TestTwoLanesMatchOne: the two-lane Cut finds the cut points of the plain
// one-lane loop, wherever the first hit falls: in either lane, in both, at
// the lanes' edges, in the odd last byte, or nowhere.
func TestTwoLanesMatchOne(t *testing.T) {
	check := func(name string, b []byte) {
		t.Helper()
		if got, want := Cut(b), cutOneLane(b); got != want {
			t.Fatalf("%s (%d bytes): Cut %d, one lane %d", name, len(b), got, want)
		}
	}
	r := rand.New(rand.NewPCG(6, 6))
	for i := range 300 {
		// Random lengths around the interesting sizes.
		sizes := []int{MinSize + 1 + r.IntN(200), MinSize + r.IntN(AvgSize), AvgSize + r.IntN(200) - 100, MaxSize, MaxSize + r.IntN(1000)}
		n := sizes[i%len(sizes)]
		check("random", random(n, uint64(i)))
	}
	// Text with a rarely matching hash, so that many cuts fall late or at
	// MaxSize; and zeros, which never cut.
	text := bytes.Repeat([]byte("INSERT INTO t VALUES (42, 'stash');\n"), MaxSize/36+10)
	for _, n := range []int{MinSize + 65, MinSize + 129, AvgSize - 1, AvgSize, AvgSize + 1, AvgSize + 3, MaxSize - 1, MaxSize, len(text)} {
		check("text", text[:n])
		check("zeros", make([]byte, n))
	}
	// Lengths from MinSize to MaxSize, of both parities: the lanes' split
	// moves with the length, so the first hit falls in either lane and
	// near their edges.
	base := random(MaxSize+1, 7)
	for off := MinSize; off < MaxSize; off += 4099 {
		check("prefix", base[:off+1])
		check("prefix", base[:off+2])
	}
	// Zeros never cut, so with zeros up to some point and random bytes
	// after it, the first hit is in the second lane (and, for some
	// points, just after the first lane's end).
	for _, zeros := range []int{AvgSize + 3<<19 - 64, AvgSize + 3<<19 + 1, AvgSize + 3<<19 + 5000, MinSize + 3<<18 + 7} {
		b := append(make([]byte, zeros), random(MaxSize, 8)...)[:MaxSize]
		check("second lane", b)
	}
}
