package repository

import (
	"bytes"
	"io"
	"sync"

	"github.com/kopia/kopia/repo/compression"
)

// Directory trees are written by kopia's uploader, which compresses every
// content and keeps the result only if it is smaller: for already
// compressed or encrypted files (images, archives, database pages with
// compressed columns) zstd's attempt is wasted, and on a tree of such
// files it was half of a backup's CPU. So the default compressor is
// wrapped: content whose sampled windows all look random is handed back
// as is, which kopia stores uncompressed, exactly as it would after a
// failed attempt; anything else goes to kopia's zstd. The stored format
// is kopia's zstd-fastest, header and all (the kopia CLI reads it,
// TestKopiaCLIReadsAndMaintains). The registry is kopia's global map, so
// this is done once, before any repository is opened.
func init() {
	id := compression.HeaderZstdFastest
	inner := compression.ByHeaderID[id]
	if inner == nil {
		return
	}
	c := sampledCompressor{Compressor: inner}
	compression.ByHeaderID[id] = c
	compression.ByName[compression.HeaderIDToName[id]] = c
}

// sampledCompressor skips compressing what sampling shows to be random.
type sampledCompressor struct{ compression.Compressor }

var sampleBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Compress implements compression.Compressor.
func (c sampledCompressor) Compress(output io.Writer, input io.Reader) error {
	buf := sampleBuffers.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		sampleBuffers.Put(buf)
	}()
	if _, err := buf.ReadFrom(input); err != nil {
		return err
	}
	if incompressible(buf.Bytes()) {
		// Not smaller than the input: kopia stores the content
		// uncompressed and discards this output.
		_, err := output.Write(buf.Bytes())
		return err
	}
	return c.Compressor.Compress(output, bytes.NewReader(buf.Bytes()))
}
