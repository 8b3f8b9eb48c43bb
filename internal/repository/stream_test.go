package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stash-backup/stash/internal/chunker"
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestStreamWriterObjects checks that streams written by streamWriter are
// objects kopia itself reads back byte for byte and verifies, at the sizes
// where the object's shape changes: empty, one chunk, several chunks, and
// chunks cut at the maximum size.
func TestStreamWriterObjects(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{42}},
		{"below min chunk", testStream(chunker.MinSize-1, 11)},
		{"several chunks", testStream(9<<20, 12)},
		{"random", randomBytes(6<<20, 13)},
		{"zeros cut at max", make([]byte, 2*chunker.MaxSize+7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := r.BackupStream(ctx, "s.bin", bytes.NewReader(tc.data), BackupOptions{Host: tc.name[:3]})
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.Resolve(ctx, st.Name, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			oid := s.man.RootEntry.ObjectID
			if _, indirect := oid.IndexObjectID(); indirect != (len(tc.data) > chunker.MaxSize) {
				t.Errorf("object %v of %d bytes: indirect = %v", oid, len(tc.data), indirect)
			}
			// kopia's own sequential reader, not RestoreStream's parallel one.
			rd, err := r.rep.OpenObject(ctx, oid)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rd)
			rd.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("kopia read %d bytes, differ from the %d written", len(got), len(tc.data))
			}
			if rd.Length() != int64(len(tc.data)) {
				t.Fatalf("object length %d, want %d", rd.Length(), len(tc.data))
			}
			var out bytes.Buffer
			if _, err := r.RestoreStream(ctx, s, "", &out, nil); err != nil || !bytes.Equal(out.Bytes(), tc.data) {
				t.Fatalf("RestoreStream: %v, %d bytes", err, out.Len())
			}
		})
	}
	res, err := r.Check(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("check --read-data: %v", res.Errors)
	}
}

// TestRandomChunksNotCompressed: random data is stored as is (the sampling
// skips zstd), text is still compressed.
func TestRandomChunksNotCompressed(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	random := randomBytes(8<<20, 21)
	st, err := r.BackupStream(ctx, "random.bin", bytes.NewReader(random), BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	// Encryption and packing add a little; compression would not save
	// anything on random bytes.
	if st.UploadedBytes < int64(len(random)) || st.UploadedBytes > int64(len(random))*102/100 {
		t.Errorf("random stream of %d bytes uploaded %d", len(random), st.UploadedBytes)
	}
	text := bytes.Repeat([]byte("INSERT INTO accounts VALUES (1, 'alice', 100.00);\n"), 160000)
	st, err = r.BackupStream(ctx, "text.sql", bytes.NewReader(text), BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if st.UploadedBytes > int64(len(text))/10 {
		t.Errorf("text stream of %d bytes uploaded %d: not compressed", len(text), st.UploadedBytes)
	}
}

func TestIncompressible(t *testing.T) {
	mixed := testStream(1<<20, 31) // 64 KiB blocks, alternately text and random
	b64 := []byte(base64.StdEncoding.EncodeToString(randomBytes(768<<10, 32)))
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random", randomBytes(1<<20, 33), true},
		{"small random chunk", randomBytes(16<<10, 34), true},
		{"4 KiB random file", randomBytes(4<<10, 36), true},
		{"tiny random file", randomBytes(2<<10, 37), false},
		{"4 KiB text file", bytes.Repeat([]byte("k=v\n"), 1<<10), false},
		{"text", bytes.Repeat([]byte("COPY public.t (id, name) FROM stdin;\n1\talice\n"), 30000), false},
		{"zeros", make([]byte, 1<<20), false},
		{"base64 of random", b64, false},
		{"half text, half random", mixed, false},
		{"random with a little text", append(randomBytes(900<<10, 35), bytes.Repeat([]byte("abc,"), 40<<10)...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := incompressible(tc.data); got != tc.want {
				t.Errorf("incompressible = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSampledCompressorKeepsFormat: the wrapped zstd-fastest hands random
// input back whole (so kopia stores it uncompressed, as after a failed
// attempt) and compresses text in kopia's own zstd-fastest format, which
// kopia's decompressor reads back.
func TestSampledCompressorKeepsFormat(t *testing.T) {
	c := compression.ByName["zstd-fastest"]
	if _, ok := c.(sampledCompressor); !ok || compression.ByHeaderID[compression.HeaderZstdFastest] != c {
		t.Fatalf("zstd-fastest is %T, want the sampled wrapper", c)
	}
	random := randomBytes(64<<10, 40)
	var out bytes.Buffer
	if err := c.Compress(&out, bytes.NewReader(random)); err != nil || out.Len() < len(random) {
		t.Fatalf("random input compressed to %d of %d bytes, %v; want it handed back", out.Len(), len(random), err)
	}
	text := bytes.Repeat([]byte("INSERT INTO t VALUES (1, 'x');\n"), 4000)
	out.Reset()
	if err := c.Compress(&out, bytes.NewReader(text)); err != nil || out.Len() >= len(text)/4 {
		t.Fatalf("text compressed to %d of %d bytes, %v", out.Len(), len(text), err)
	}
	var back bytes.Buffer
	if err := compression.DecompressByHeader(&back, bytes.NewReader(out.Bytes())); err != nil || !bytes.Equal(back.Bytes(), text) {
		t.Fatalf("kopia's decompressor read back %d bytes, %v", back.Len(), err)
	}
	// One segment of a known size, up to the largest chunk: what a
	// restore decodes without a window.
	for _, n := range []int{len(text), chunker.MaxSize} {
		in := bytes.Repeat(text, n/len(text)+1)[:n]
		out.Reset()
		if err := c.Compress(&out, bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		var h zstd.Header
		if err := h.Decode(out.Bytes()[4:]); err != nil || !h.SingleSegment || !h.HasFCS || h.FrameContentSize != uint64(n) {
			t.Errorf("%d bytes: frame header %+v, %v; want one segment of its size", n, h, err)
		}
	}
}
