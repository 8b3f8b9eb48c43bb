package repository

import (
	"bytes"
	"io"
)

// byteSlice is a blob.Bytes over one slice (kopia's own helper is internal).
type byteSlice []byte

func gatherBytes(b []byte) byteSlice { return byteSlice(b) }

func (b byteSlice) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

func (b byteSlice) Length() int { return len(b) }

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

func (b byteSlice) Reader() io.ReadSeekCloser { return readSeekNopCloser{bytes.NewReader(b)} }

// gatherWriter is a blob.OutputBuffer over a bytes.Buffer.
type gatherWriter struct{ bytes.Buffer }

func (g *gatherWriter) Length() int { return g.Len() }
