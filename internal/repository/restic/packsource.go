package restic

import (
	"context"
	"fmt"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo/blob"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/blobmem"
)

// maxChunk is the largest data blob restic's chunker cuts.
const maxChunk = 8 << 20

// packSource lets a tree restore read restic's packs in order, each range
// once for every file that needs a blob of it (repository.PackSource), as
// restic's own restorer does.
type packSource struct{ r *Repository }

var _ repository.PackSource = (*packSource)(nil)

// Contents places the blobs of a restic file; files this package did not
// present (none, in a restic tree) are read through their own readers.
func (p *packSource) Contents(ctx context.Context, f fs.File) ([]repository.PackedContent, bool, error) {
	fe, ok := f.(*fileEntry)
	if !ok {
		return nil, false, nil
	}
	fe.v.noteRestored(fe.rel)
	out := make([]repository.PackedContent, 0, len(fe.n.Content))
	var off int64
	for _, id := range fe.n.Content {
		loc, err := p.r.lookup(ctx, DataBlob, id)
		if err != nil {
			return nil, false, err
		}
		// The restore reads and decodes into memory sized by the index.
		if err := checkSize(DataBlob, id, loc); err != nil {
			return nil, false, err
		}
		size := blobRef{id: id, loc: loc}.size()
		out = append(out, repository.PackedContent{
			ID: id.String(), Pack: loc.pack.String(), Offset: int64(loc.offset), Length: int64(loc.length),
			FileOffset: off, Size: size,
		})
		off += size
	}
	if off != int64(fe.n.Size) {
		return nil, false, fmt.Errorf("its blobs hold %d bytes, its entry says %d", off, fe.n.Size)
	}
	return out, true, nil
}

// ReadPack reads a range of a pack, into dst's memory when it is a
// blobmem.Buffer.
func (p *packSource) ReadPack(ctx context.Context, pack string, off, length int64, dst blob.OutputBuffer) error {
	if b, ok := dst.(*blobmem.Buffer); ok {
		b.Reset()
		return p.r.readRange(ctx, PackFile, pack, off, b.Extend(int(length)))
	}
	b, err := p.r.be.Get(ctx, PackFile, pack, off, length)
	if err != nil {
		return err
	}
	dst.Reset()
	_, err = dst.Write(b)
	return err
}

// Content verifies and decodes one blob from its stored bytes: in place
// in raw, or into scratch when it is compressed.
func (p *packSource) Content(_ context.Context, c repository.PackedContent, raw []byte, scratch *[]byte) ([]byte, error) {
	id, err := ParseID(c.ID)
	if err != nil {
		return nil, err
	}
	loc, ok := p.r.index[blobKey{id, DataBlob}]
	if !ok {
		return nil, fmt.Errorf("data blob %s is not in the index", id)
	}
	data, err := p.r.decodeBlob(DataBlob, id, loc, raw, *scratch)
	if err == nil && loc.uncompressedLength != 0 {
		// Decoded into scratch, or into memory decodeBlob made when
		// scratch was too small: kept for the next blob either way.
		*scratch = data[:0]
	}
	return data, err
}
