package repository

import (
	"bytes"
	"os"

	"github.com/kopia/kopia/snapshot/restore"
)

// sparseBlock is the unit of hole detection: a block of zeros this size,
// aligned in the file, is skipped instead of written.
const sparseBlock = 4096

// sparseWriter writes a new file leaving its all-zero blocks as holes,
// as restic's restore --sparse does: a sparse file backed up as a run of
// zeros takes no more space restored than it did. The file must be new
// (holes read as zeros) and finish must run after the last write.
type sparseWriter struct {
	f   *os.File
	cb  restore.FileWriteProgress
	off int64
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		// Up to the next block boundary, so blocks stay aligned.
		l := min(len(p), sparseBlock-int(w.off%sparseBlock))
		if l == sparseBlock && allZero(p[:l]) {
			w.off += int64(l)
			p = p[l:]
			continue
		}
		// Write the run of blocks up to the next all-zero one.
		end := l
		for end < len(p) {
			next := min(len(p), end+sparseBlock)
			if next-end == sparseBlock && allZero(p[end:next]) {
				break
			}
			end = next
		}
		if _, err := w.f.WriteAt(p[:end], w.off); err != nil {
			return n - len(p), err
		}
		w.off += int64(end)
		p = p[end:]
	}
	if w.cb != nil {
		w.cb(int64(n))
	}
	return n, nil
}

// finish sets the file's size, which skipped blocks at its end did not.
func (w *sparseWriter) finish() error { return w.f.Truncate(w.off) }

var zeroBlock [sparseBlock]byte

// allZero reports whether b (at most sparseBlock bytes) holds only zeros;
// bytes.Equal compares a word at a time.
func allZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// zeros reports whether b holds only zeros.
func zeros(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), sparseBlock)
		if !allZero(b[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
