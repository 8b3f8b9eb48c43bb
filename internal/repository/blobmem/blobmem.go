// Package blobmem holds kopia's blob.Bytes and blob.OutputBuffer over
// plain memory, which kopia keeps internal.
package blobmem

import (
	"bytes"
	"io"
)

// Bytes is a blob.Bytes over one slice.
type Bytes []byte

// WriteTo implements blob.Bytes.
func (b Bytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// Length implements blob.Bytes.
func (b Bytes) Length() int { return len(b) }

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

// Reader implements blob.Bytes.
func (b Bytes) Reader() io.ReadSeekCloser { return readSeekNopCloser{bytes.NewReader(b)} }

// Buffer is a blob.OutputBuffer over a bytes.Buffer.
type Buffer struct{ bytes.Buffer }

// Length implements blob.OutputBuffer.
func (g *Buffer) Length() int { return g.Len() }

// Extend appends n bytes to the buffer's content and returns them for
// the caller to fill: a reader that reads into memory it is given (a file
// read at an offset) fills the buffer without a copy.
func (g *Buffer) Extend(n int) []byte {
	g.Grow(n)
	content := g.Bytes()
	whole := content[:len(content)+n]
	g.Buffer = *bytes.NewBuffer(whole)
	return whole[len(content):]
}
