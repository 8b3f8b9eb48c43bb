package repository

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"

	"github.com/stash-backup/stash/internal/chunker"
)

// Directory trees are written by kopia's uploader, which compresses every
// content and keeps the result only if it is smaller: for already
// compressed or encrypted files (images, archives, database pages with
// compressed columns) zstd's attempt is wasted, and on a tree of such
// files it was half of a backup's CPU. So the default compressor is
// wrapped: content whose sampled windows all look random is handed back
// as is, which kopia stores uncompressed, exactly as it would after a
// failed attempt. Anything else is compressed whole (EncodeAll) rather
// than through kopia's streaming encoder: the frame then records its
// size and holds one segment, which a restore decodes straight into its
// buffer instead of through a window it copies each block into. The
// stored format is kopia's zstd-fastest, header and all (the kopia CLI
// reads it, TestKopiaCLIReadsAndMaintains). The registry is kopia's
// global map, so this is done once, before any repository is opened.
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

var (
	sampleBuffers     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	compressedBuffers = sync.Pool{New: func() any { return new([]byte) }}
)

// fastestEncoder compresses as kopia's zstd-fastest does. It runs as many
// compressions at once as a process has workers at most; each holds its
// tables only once used.
var fastestEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), MaxParallelism)),
		// Every chunk this project cuts is one segment.
		zstd.WithWindowSize(chunker.MaxSize))
})

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
	enc, err := fastestEncoder()
	if err != nil {
		return c.Compressor.Compress(output, bytes.NewReader(buf.Bytes()))
	}
	out := compressedBuffers.Get().(*[]byte)
	defer compressedBuffers.Put(out)
	b := binary.BigEndian.AppendUint32((*out)[:0], uint32(c.HeaderID()))
	b = enc.EncodeAll(buf.Bytes(), b)
	*out = b
	_, err = output.Write(b)
	return err
}
