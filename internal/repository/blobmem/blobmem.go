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
