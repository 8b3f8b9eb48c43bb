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
func cuts(data []byte) []int { return cutsWith(unkeyed, data) }

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
			c := unkeyed.Cut(d)
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
			d = d[unkeyed.Cut(d):]
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
		fp = fp<<1 + unkeyed.gear[b[i]]
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
		if got, want := unkeyed.Cut(b), cutOneLane(b); got != want {
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
	// after it, the first hit falls where that point puts it: in a second
	// lane, just after a first lane's end, at a span's first bytes, or in
	// a later span of either mask.
	points := []int{AvgSize + 3<<19 - 64, AvgSize + 3<<19 + 1, AvgSize + 3<<19 + 5000, MinSize + 3<<18 + 7}
	for _, start := range []int{MinSize, MinSize + 5*span, AvgSize, AvgSize + 17*span} {
		points = append(points, start+span/2-64, start+span/2+1, start+span-1, start+span+1)
	}
	for _, zeros := range points {
		b := append(make([]byte, zeros), random(MaxSize, 8)...)[:MaxSize]
		check("second lane", b)
	}
}

// TestSpanEdges places a hit at chosen bytes around the lanes' and spans'
// edges: a window of 64 bytes whose hash has none of the strict mask's
// bits set, after zeros, which never cut. Cut must find it there. A hit
// in the first 64 bytes of a span checks that a span's first lane goes on
// with the hash the last span ended with, which random data seldom
// reaches.
func TestSpanEdges(t *testing.T) {
	hit := hitWindow(t)
	var ends []int
	for _, start := range []int{MinSize + span, MinSize + 7*span, AvgSize, AvgSize + span, AvgSize + 20*span} {
		for _, d := range []int{0, 1, 10, window - 1, window, span/2 - 1, span / 2, span/2 + 1, span/2 + 10, span - 1} {
			ends = append(ends, start+d)
		}
	}
	for _, end := range ends {
		b := make([]byte, MaxSize)
		copy(b[end+1-window:], hit)
		want := end + 1
		if got := cutOneLane(b); got != want {
			t.Fatalf("hit ending at %d: one lane cuts at %d, want %d", end, got, want)
		}
		if got := unkeyed.Cut(b); got != want {
			t.Fatalf("hit ending at %d: Cut %d, want %d", end, got, want)
		}
	}
}

// hitWindow finds 64 bytes whose gear hash, after zeros, has none of
// maskStrict's bits set and that do not hit before their last byte.
func hitWindow(t *testing.T) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 9))
	w := make([]byte, window)
	for range 1 << 20 {
		for i := range window - 1 {
			w[i] = byte(r.Uint32())
		}
		var fp uint64
		early := false
		for _, c := range w[:window-1] {
			fp = fp<<1 + unkeyed.gear[c]
			early = early || fp&maskLoose == 0
		}
		if early {
			continue
		}
		for x := range 256 {
			if (fp<<1+unkeyed.gear[x])&maskStrict == 0 {
				w[window-1] = byte(x)
				return w
			}
		}
	}
	t.Fatal("no window found")
	return nil
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// TestKeyedCutsArePinned fails when the derivation of a keyed table
// changes: repositories' keys would then cut their streams anew.
func TestKeyedCutsArePinned(t *testing.T) {
	c, err := Keyed(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(cutsWith(c, random(12<<20, 4)))
	const want = "[1085995 1052140 313150 1161803 1598906 1391121 1174666 2327893 1100329 1376909]"
	if got != want {
		t.Fatalf("cut points of the pinned stream under key 1 changed:\n got %s\nwant %s", got, want)
	}
}

// TestKeysCutApart: one key cuts the same data alike every time; two keys
// cut it at different points, so chunk sizes say nothing across
// repositories; and a keyed table still keeps chunks near the average
// and resynchronizes after an insertion.
func TestKeysCutApart(t *testing.T) {
	data := random(32<<20, 9)
	a1, _ := Keyed(testKey(1))
	a2, _ := Keyed(testKey(1))
	b, _ := Keyed(testKey(2))
	ca, cb := cutsWith(a1, data), cutsWith(b, data)
	if fmt.Sprint(ca) != fmt.Sprint(cutsWith(a2, data)) {
		t.Fatal("one key cut the same data differently")
	}
	ends := func(cs []int) map[int]bool {
		m, at := map[int]bool{}, 0
		for _, c := range cs[:len(cs)-1] {
			at += c
			m[at] = true
		}
		return m
	}
	shared := 0
	ea := ends(ca)
	for e := range ends(cb) {
		if ea[e] {
			shared++
		}
	}
	if shared > len(ca)/10 {
		t.Errorf("keys 1 and 2 share %d of %d cut points", shared, len(ca))
	}
	if unk := ends(cutsWith(unkeyed, data)); len(unk) > 0 {
		same := 0
		for e := range unk {
			if ea[e] {
				same++
			}
		}
		if same > len(ca)/10 {
			t.Errorf("key 1 shares %d of %d cut points with the public table", same, len(ca))
		}
	}
	if avg := len(data) / len(ca); avg < AvgSize*9/10 || avg > AvgSize*14/10 {
		t.Errorf("keyed average chunk %d bytes", avg)
	}
	if _, err := Keyed([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func cutsWith(c *Chunker, data []byte) []int {
	var out []int
	for len(data) > 0 {
		n := c.Cut(data)
		out = append(out, n)
		data = data[n:]
	}
	return out
}
