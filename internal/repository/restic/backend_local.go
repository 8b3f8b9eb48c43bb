package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// localBackend reads a restic repository in a directory.
type localBackend struct{ root string }

// NewLocalBackend reads the restic repository in directory root.
func NewLocalBackend(root string) Backend { return &localBackend{root: root} }

func (b *localBackend) String() string { return "local:" + b.root }

func (b *localBackend) open(t FileType, name string) (*os.File, error) {
	f, err := os.Open(filepath.Join(b.root, filepath.FromSlash(defaultPath(t, name))))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notExist(t.String() + " " + name)
	}
	return f, err
}

func (b *localBackend) Get(_ context.Context, t FileType, name string, off, length int64) ([]byte, error) {
	f, err := b.open(t, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if length < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() > maxWhole(t) {
			return nil, tooLarge(t, name, st.Size())
		}
		length = st.Size() - off
		if length < 0 {
			return nil, fmt.Errorf("%s %s: offset %d beyond its %d bytes", t, short(name), off, st.Size())
		}
	}
	buf := make([]byte, length)
	if err := readAt(f, t, name, off, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// ReadRange fills dst from off (rangeReader).
func (b *localBackend) ReadRange(_ context.Context, t FileType, name string, off int64, dst []byte) error {
	f, err := b.open(t, name)
	if err != nil {
		return err
	}
	defer f.Close()
	return readAt(f, t, name, off, dst)
}

func readAt(f *os.File, t FileType, name string, off int64, dst []byte) error {
	if _, err := f.ReadAt(dst, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s %s is shorter than %d bytes at %d: truncated", t, short(name), len(dst), off)
		}
		return err
	}
	return nil
}

func (b *localBackend) List(ctx context.Context, t FileType, fn func(string, int64) error) error {
	dirs := []string{filepath.Join(b.root, t.String())}
	if t == PackFile {
		shards, err := os.ReadDir(dirs[0])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		dirs = dirs[:0]
		for _, s := range shards {
			if s.IsDir() {
				dirs = append(dirs, filepath.Join(b.root, t.String(), s.Name()))
			}
		}
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !e.Type().IsRegular() || !isID(e.Name()) {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if err := fn(e.Name(), info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// isID reports whether name is a restic object name (64 hex characters);
// temporary files and anything else in the directories are not objects.
func isID(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
