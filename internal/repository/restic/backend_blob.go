package restic

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/kopia/kopia/repo/blob"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
)

// blobBackend reads a restic repository in an object store through
// kopia's storage client of that store (S3, GCS, Azure, B2): one client
// per store, configured as for kopia repositories, with reads only.
type blobBackend struct {
	st   blob.Storage
	desc string
}

func (b *blobBackend) String() string { return b.desc }

func (b *blobBackend) Get(ctx context.Context, t FileType, name string, off, length int64) ([]byte, error) {
	buf := byteBuffer{limit: -1}
	if length > 0 {
		buf.b = make([]byte, 0, length)
	}
	id := blob.ID(defaultPath(t, name))
	if off != 0 && length < 0 {
		md, err := b.st.GetMetadata(ctx, id)
		if err != nil {
			return nil, b.wrap(t, name, err)
		}
		if md.Length > maxWhole(t) {
			return nil, tooLarge(t, name, md.Length)
		}
		length = md.Length - off
	}
	if length < 0 {
		buf.limit = int(maxWhole(t))
	}
	if err := b.st.GetBlob(ctx, id, off, length, &buf); err != nil {
		if errors.Is(err, errBufferFull) {
			return nil, tooLarge(t, name, -1)
		}
		return nil, b.wrap(t, name, err)
	}
	if length >= 0 && int64(buf.Length()) != length {
		return nil, fmt.Errorf("%s %s is shorter than %d bytes at %d: truncated", t, short(name), length, off)
	}
	return buf.b, nil
}

// ReadRange fills dst from off (rangeReader): kopia's client appends
// into dst's memory, and a read of any other length is an error.
func (b *blobBackend) ReadRange(ctx context.Context, t FileType, name string, off int64, dst []byte) error {
	if len(dst) == 0 {
		return nil
	}
	buf := byteBuffer{b: dst[:0], limit: -1}
	if err := b.st.GetBlob(ctx, blob.ID(defaultPath(t, name)), off, int64(len(dst)), &buf); err != nil {
		return b.wrap(t, name, err)
	}
	if len(buf.b) != len(dst) {
		return fmt.Errorf("%s %s is shorter than %d bytes at %d: truncated", t, short(name), len(dst), off)
	}
	return nil
}

func (b *blobBackend) wrap(t FileType, name string, err error) error {
	if errors.Is(err, blob.ErrBlobNotFound) {
		return notExist(t.String() + " " + name)
	}
	return fmt.Errorf("read %s %s from %s: %w", t, short(name), b.desc, err)
}

func (b *blobBackend) List(ctx context.Context, t FileType, fn func(string, int64) error) error {
	return b.list(ctx, t.String()+"/", t == PackFile, fn)
}

// list lists below prefix; stores that list one level at a time return
// the subdirectories as names ending in "/", which are listed in turn.
func (b *blobBackend) list(ctx context.Context, prefix string, deep bool, fn func(string, int64) error) error {
	var subdirs []string
	err := b.st.ListBlobs(ctx, blob.ID(prefix), func(m blob.Metadata) error {
		id := string(m.BlobID)
		if strings.HasSuffix(id, "/") {
			if deep && id != prefix {
				subdirs = append(subdirs, id)
			}
			return nil
		}
		rest := strings.TrimPrefix(id, prefix)
		if strings.Contains(rest, "/") && !deep {
			return nil
		}
		if name := path.Base(id); isID(name) {
			return fn(name, m.Length)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s of %s: %w", strings.TrimSuffix(prefix, "/"), b.desc, err)
	}
	for _, d := range subdirs {
		if err := b.list(ctx, d, false, fn); err != nil {
			return err
		}
	}
	return nil
}

// OpenBackend connects to the storage of a Stash Repository's location for
// reading a restic repository there.
func OpenBackend(ctx context.Context, loc *location.Location) (Backend, error) {
	switch loc.Kind {
	case location.KindLocal:
		return NewLocalBackend(loc.Filesystem.Path), nil
	case location.KindSwift:
		return NewSwiftBackend(ctx, loc.Swift)
	case location.KindRest:
		return NewRESTBackend(loc.Rest)
	}
	st, err := repository.ObjectStorage(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", loc, err)
	}
	return &blobBackend{st: st, desc: loc.String()}, nil
}

// byteBuffer is the blob.OutputBuffer kopia's clients read into; a
// write past limit (when not negative) fails with errBufferFull, which
// stops the client's copy.
type byteBuffer struct {
	b     []byte
	limit int
}

var errBufferFull = errors.New("object larger than the bound of its kind")

func (w *byteBuffer) Write(p []byte) (int, error) {
	if w.limit >= 0 && len(w.b)+len(p) > w.limit {
		return 0, errBufferFull
	}
	w.b = append(w.b, p...)
	return len(p), nil
}
func (w *byteBuffer) Reset()      { w.b = w.b[:0] }
func (w *byteBuffer) Length() int { return len(w.b) }
