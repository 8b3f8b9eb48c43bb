package galera

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sparseChunk builds a Percona sparse chunk: one hole of 4 bytes, then
// the payload.
func sparseChunk(path string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString(chunkMagic)
	b.WriteByte(0)
	b.WriteByte('S')
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	_ = binary.Write(&b, binary.LittleEndian, uint32(1))
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(payload)))
	_ = binary.Write(&b, binary.LittleEndian, uint64(0))
	_ = binary.Write(&b, binary.LittleEndian, crc32.ChecksumIEEE(payload))
	_ = binary.Write(&b, binary.LittleEndian, uint32(4))
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(payload)))
	b.Write(payload)
	return b.Bytes()
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	e, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(e)
}

func TestExtractor(t *testing.T) {
	marker := file(CompletionMarker, "backup_type = full-backuped\n")
	for _, tc := range []struct {
		name string
		in   []byte
		// prepare sets up the directory before the extraction.
		prepare func(t *testing.T, dir string)
		want    map[string]string // the files extracted, for a stream that succeeds
		err     string
	}{
		{name: "complete", in: complete, want: map[string]string{
			"ibdata1": strings.Repeat("x", 100000), "db/t.ibd": "rows", CompletionMarker: "backup_type = full-backuped\n",
		}},
		{name: "chunks in order, files interleaved", in: stream(multi, chunk('E', "empty", nil), marker), want: map[string]string{
			"db/big.ibd": "first second third", "db/other.ibd": "other", "empty": "",
		}},
		{name: "a file twice", in: stream(file("f", "a"), chunk('E', "f", nil), file("f", "b"), marker), err: "after its end chunk"},
		{name: "out of order", in: stream(chunkAt('P', "f", []byte("ab"), 4), chunk('E', "f", nil), marker), err: "out of order"},
		{name: "sparse", in: stream(sparseChunk("f", []byte("ab")), chunk('E', "f", nil), marker), err: "sparse chunk"},
		{name: "a file where a directory goes", in: stream(file("db", "x"), file("db/t.ibd", "y"), marker), err: "db/t.ibd"},
		{name: "a file that exists", in: stream(file("f", "new"), marker), err: "holds it twice",
			prepare: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a symbolic link out of the directory", in: stream(file("db/t.ibd", "y"), marker), err: "db/t.ibd",
			prepare: func(t *testing.T, dir string) {
				if err := os.Symlink(t.TempDir(), filepath.Join(dir, "db")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "cut short", in: complete[:len(complete)/2], err: "ends inside a chunk"},
		{name: "damaged", in: func() []byte {
			b := bytes.Clone(complete)
			b[40+len("ibdata1")] ^= 0xff
			return b
		}(), err: "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 7, 4096, len(tc.in) + 1} {
				dir := t.TempDir()
				if tc.prepare != nil {
					tc.prepare(t, dir)
				}
				fds := openFDs(t)
				c, err := NewExtractor(dir)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(tc.in) && err == nil; i += step {
					_, err = c.Write(tc.in[i:min(i+step, len(tc.in))])
				}
				if cerr := c.Close(); err == nil {
					err = cerr
				}
				if n := openFDs(t); n != fds {
					t.Fatalf("step %d: %d descriptors open after the extraction, %d before", step, n, fds)
				}
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("step %d: got %v, want an error with %q", step, err, tc.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				for name, want := range tc.want {
					got, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil || string(got) != want {
						t.Fatalf("step %d: %s holds %q (%v), want %q", step, name, got, err, want)
					}
					fi, _ := os.Stat(filepath.Join(dir, name))
					if fi.Mode().Perm()&0o007 != 0 {
						t.Fatalf("step %d: %s has mode %v: others may read it", step, name, fi.Mode())
					}
				}
			}
		})
	}
}
