package galera

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// NewExtractor returns a Checker that writes the stream's files into dir
// itself, as `mbstream -x -C dir` does: each payload goes from the buffer
// the repository decoded it into straight to its file, with no pipe and
// no second process copying it on the way. Paths are confined to dir
// (os.Root), files are created, never opened twice, and written where
// their chunks say. Percona's sparse chunks are refused: xbstream
// extracts those streams (Tools.InProcess).
func NewExtractor(dir string) (*Checker, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extract into %s: %w", dir, err)
	}
	c := NewChecker(nil)
	c.x = &extraction{root: root, files: map[string]*extractFile{}, dirs: map[string]bool{".": true}}
	return c, nil
}

// extraction is an extractor's open directory and files.
type extraction struct {
	root  *os.Root
	files map[string]*extractFile
	dirs  map[string]bool
}

// extractFile is a file being extracted.
type extractFile struct {
	*os.File
	// unadvised counts the bytes written since the file's pages were
	// last let go (dontNeed).
	unadvised int
}

// adviseEvery is how many bytes of a file are written between two calls
// of dontNeed. Written pages are let go as mbstream lets them go: the
// prepare reads the data directory next, a database's files would
// otherwise fill the page cache (counted against the step's memory
// limit) with dirty pages, and pages freed as the extraction goes are
// the ones its next writes reuse.
const adviseEvery = 8 << 20

// File and directory modes are mbstream's (the umask applies to both).
const (
	extractFileMode = 0o660
	extractDirMode  = 0o700
)

// create creates p, and its directories, for writing.
func (x *extraction) create(p string) (*extractFile, error) {
	if d := path.Dir(p); !x.dirs[d] {
		if err := x.root.MkdirAll(d, extractDirMode); err != nil {
			return nil, fmt.Errorf("extract %s: %w", p, err)
		}
		x.dirs[d] = true
	}
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, extractFileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("extract %s: the stream holds it twice", p)
	}
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", p, err)
	}
	ef := &extractFile{File: f}
	x.files[p] = ef
	return ef, nil
}

// write writes b at off in p, which it creates at its first chunk.
func (x *extraction) write(p string, off int64, b []byte) error {
	f := x.files[p]
	if f == nil {
		var err error
		if f, err = x.create(p); err != nil {
			return err
		}
	}
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("extract %s: %w", p, err)
	}
	if f.unadvised += len(b); f.unadvised >= adviseEvery {
		f.unadvised = 0
		dontNeed(f.File)
	}
	return nil
}

// end closes p at its end chunk.
func (x *extraction) end(p string) error {
	f := x.files[p]
	if f == nil {
		return nil
	}
	delete(x.files, p)
	if err := f.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", p, err)
	}
	return nil
}

// close closes what is still open.
func (x *extraction) close() error {
	var errs []error
	for p := range x.files {
		errs = append(errs, x.end(p))
	}
	errs = append(errs, x.root.Close())
	return errors.Join(errs...)
}
