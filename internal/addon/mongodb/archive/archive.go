// Package archive reads and writes mongodump's archive format (the
// public spec: common/archive/spec.md in mongodb/mongo-tools), the stream
// `mongodump --archive` writes and `mongorestore --archive` reads: a magic
// number, a header, one metadata document per collection, a terminator,
// then segments of each namespace's documents, interleaved, each
// namespace ended by an EOF header carrying the CRC-64-ECMA of all its
// documents. Everything read is checked: a truncated stream, a document
// whose length is impossible, a segment of a namespace that already ended
// or a CRC that does not match is an error, never a partial restore
// passed off as whole.
package archive

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Magic starts every archive (0x8199e26d, little-endian).
var Magic = [4]byte{0x6d, 0xe2, 0x99, 0x81}

var terminator = [4]byte{0xff, 0xff, 0xff, 0xff}

// FormatVersion is the only archive format version there is.
const FormatVersion = "0.1"

// maxDocument bounds a BSON document's length: MongoDB's limit is 16 MiB,
// and mongodump's metadata and headers are far smaller; a larger length
// read from a stream is corruption, not a document.
const maxDocument = 16<<20 + 16<<10

var crcTable = crc64.MakeTable(crc64.ECMA)

// Header is the archive's header document.
type Header struct {
	ConcurrentCollections int32  `bson:"concurrent_collections"`
	Version               string `bson:"version"`
	ServerVersion         string `bson:"server_version"`
	ToolVersion           string `bson:"tool_version"`
}

// CollectionMetadata describes one collection: its options, indexes and
// type as canonical Extended JSON v2 (what mongodump writes to
// metadata.json), and its uncompressed size.
type CollectionMetadata struct {
	Database   string `bson:"db"`
	Collection string `bson:"collection"`
	Metadata   string `bson:"metadata"`
	Size       int32  `bson:"size"`
}

// namespaceHeader starts a segment (EOF false, CRC 0) or ends a
// namespace (EOF true, CRC of all its documents).
type namespaceHeader struct {
	Database   string `bson:"db"`
	Collection string `bson:"collection"`
	EOF        bool   `bson:"EOF"`
	CRC        int64  `bson:"CRC"`
}

// Namespace is a database and collection.
type Namespace struct{ Database, Collection string }

func (n Namespace) String() string { return n.Database + "." + n.Collection }

// Writer writes an archive. Its methods are not safe for concurrent use.
type Writer struct {
	w      *bufio.Writer
	crc    map[Namespace]hash.Hash64
	ended  map[Namespace]bool
	closed bool
}

// NewWriter writes the magic number, the header and every collection's
// metadata to w, and returns the Writer of the namespaces' data.
func NewWriter(w io.Writer, h Header, metadata []CollectionMetadata) (*Writer, error) {
	if h.Version == "" {
		h.Version = FormatVersion
	}
	aw := &Writer{w: bufio.NewWriterSize(w, 1<<20), crc: map[Namespace]hash.Hash64{}, ended: map[Namespace]bool{}}
	if _, err := aw.w.Write(Magic[:]); err != nil {
		return nil, err
	}
	if err := aw.marshal(h); err != nil {
		return nil, err
	}
	for _, m := range metadata {
		if err := aw.marshal(m); err != nil {
			return nil, err
		}
	}
	if _, err := aw.w.Write(terminator[:]); err != nil {
		return nil, err
	}
	return aw, nil
}

func (aw *Writer) marshal(v any) error {
	b, err := bson.Marshal(v)
	if err != nil {
		return err
	}
	_, err = aw.w.Write(b)
	return err
}

// WriteSegment writes docs, whole BSON documents of namespace ns, as one
// segment. A namespace's documents may span many segments, interleaved
// with other namespaces'.
func (aw *Writer) WriteSegment(ns Namespace, docs ...[]byte) error {
	if aw.ended[ns] {
		return fmt.Errorf("archive: %s already ended", ns)
	}
	if len(docs) == 0 {
		return nil
	}
	h := aw.crc[ns]
	if h == nil {
		h = crc64.New(crcTable)
		aw.crc[ns] = h
	}
	if err := aw.marshal(namespaceHeader{Database: ns.Database, Collection: ns.Collection}); err != nil {
		return err
	}
	for _, d := range docs {
		if err := checkDocument(d); err != nil {
			return fmt.Errorf("archive: a document of %s: %w", ns, err)
		}
		if _, err := aw.w.Write(d); err != nil {
			return err
		}
		h.Write(d)
	}
	_, err := aw.w.Write(terminator[:])
	return err
}

// EndNamespace writes ns's EOF header with the CRC of its documents. Every
// namespace whose metadata the archive holds must be ended, even one
// without documents, for mongorestore to restore it.
func (aw *Writer) EndNamespace(ns Namespace) error {
	if aw.ended[ns] {
		return fmt.Errorf("archive: %s already ended", ns)
	}
	aw.ended[ns] = true
	var sum uint64
	if h := aw.crc[ns]; h != nil {
		sum = h.Sum64()
	} else {
		// mongodump opens every namespace with a segment, an empty one
		// for a view or an empty collection, before its end; keep to
		// that shape rather than the spec's letter.
		if err := aw.marshal(namespaceHeader{Database: ns.Database, Collection: ns.Collection}); err != nil {
			return err
		}
		if _, err := aw.w.Write(terminator[:]); err != nil {
			return err
		}
	}
	if err := aw.marshal(namespaceHeader{Database: ns.Database, Collection: ns.Collection, EOF: true, CRC: int64(sum)}); err != nil {
		return err
	}
	_, err := aw.w.Write(terminator[:])
	return err
}

// Close flushes what is buffered. It does not close the underlying writer.
func (aw *Writer) Close() error {
	if aw.closed {
		return nil
	}
	aw.closed = true
	return aw.w.Flush()
}

// checkDocument accepts a whole BSON document: its length prefix is its
// length and it ends with a NUL.
func checkDocument(d []byte) error {
	if len(d) < 5 {
		return fmt.Errorf("%d bytes is shorter than any BSON document", len(d))
	}
	if n := int(binary.LittleEndian.Uint32(d)); n != len(d) || d[n-1] != 0 {
		return fmt.Errorf("length prefix %d does not match its %d bytes", n, len(d))
	}
	return nil
}

// Reader reads an archive, gzip-compressed (mongodump --archive --gzip)
// or not.
type Reader struct {
	r *bufio.Reader
	// Header and Metadata are read by NewReader.
	Header   Header
	Metadata []CollectionMetadata

	crc   map[Namespace]hash.Hash64
	ended map[Namespace]bool
	// current is the namespace whose segment is being read; inSegment
	// says whether one is open.
	current   Namespace
	inSegment bool
}

// ErrFormat is an archive that breaks the format.
var ErrFormat = errors.New("not a valid mongodump archive")

// NewReader reads the magic number, the header and the collections'
// metadata from r, decompressing it first when it is gzip.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if peek, err := br.Peek(2); err == nil && peek[0] == 0x1f && peek[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		br = bufio.NewReaderSize(gz, 1<<20)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("%w: no magic number: %v", ErrFormat, err)
	}
	if magic != Magic {
		return nil, fmt.Errorf("%w: magic number %x, want %x", ErrFormat, magic, Magic)
	}
	ar := &Reader{r: br, crc: map[Namespace]hash.Hash64{}, ended: map[Namespace]bool{}}
	doc, err := ar.next()
	if err != nil || doc == nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, orEnd(err))
	}
	if err := bson.Unmarshal(doc, &ar.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if ar.Header.Version != FormatVersion {
		return nil, fmt.Errorf("%w: format version %q, this reader knows %q", ErrFormat, ar.Header.Version, FormatVersion)
	}
	for {
		doc, err := ar.next()
		if err != nil {
			return nil, fmt.Errorf("%w: collection metadata: %v", ErrFormat, err)
		}
		if doc == nil {
			return ar, nil
		}
		var m CollectionMetadata
		if err := bson.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%w: collection metadata: %v", ErrFormat, err)
		}
		ar.Metadata = append(ar.Metadata, m)
	}
}

func orEnd(err error) error {
	if err == nil {
		return errors.New("terminator where a document belongs")
	}
	return err
}

// next reads one document, or nil at a terminator.
func (ar *Reader) next() (bson.Raw, error) {
	var l [4]byte
	if _, err := io.ReadFull(ar.r, l[:]); err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if l == terminator {
		return nil, nil
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n < 5 || n > maxDocument {
		return nil, fmt.Errorf("%w: a document of %d bytes", ErrFormat, n)
	}
	d := make([]byte, n)
	copy(d, l[:])
	if _, err := io.ReadFull(ar.r, d[4:]); err != nil {
		return nil, fmt.Errorf("%w: a document cut short: %v", ErrFormat, err)
	}
	if d[n-1] != 0 {
		return nil, fmt.Errorf("%w: a document that does not end in NUL", ErrFormat)
	}
	return d, nil
}

// Next returns the next document of the archive's data and its namespace.
// At a namespace's end, after checking its CRC, it returns the namespace
// with a nil document and ended true. At the archive's end it returns
// io.EOF, and an error if a namespace of the metadata never ended.
func (ar *Reader) Next() (ns Namespace, doc bson.Raw, ended bool, err error) {
	for {
		if !ar.inSegment {
			var l [4]byte
			if _, err := io.ReadFull(ar.r, l[:1]); err == io.EOF {
				return Namespace{}, nil, false, ar.finish()
			} else if err != nil {
				return Namespace{}, nil, false, err
			}
			if err := ar.r.UnreadByte(); err != nil {
				return Namespace{}, nil, false, err
			}
			hdr, err := ar.next()
			if err != nil {
				return Namespace{}, nil, false, err
			}
			if hdr == nil {
				return Namespace{}, nil, false, fmt.Errorf("%w: a terminator where a namespace header belongs", ErrFormat)
			}
			var h namespaceHeader
			if err := bson.Unmarshal(hdr, &h); err != nil {
				return Namespace{}, nil, false, fmt.Errorf("%w: namespace header: %v", ErrFormat, err)
			}
			ns := Namespace{h.Database, h.Collection}
			if ar.ended[ns] {
				return Namespace{}, nil, false, fmt.Errorf("%w: %s continues after its end", ErrFormat, ns)
			}
			if h.EOF {
				if t, err := ar.next(); err != nil || t != nil {
					return Namespace{}, nil, false, fmt.Errorf("%w: no terminator after the end of %s", ErrFormat, ns)
				}
				ar.ended[ns] = true
				var sum uint64
				if c := ar.crc[ns]; c != nil {
					sum = c.Sum64()
				}
				if uint64(h.CRC) != sum {
					return Namespace{}, nil, false, fmt.Errorf("%w: %s: CRC %x, its documents sum to %x", ErrFormat, ns, uint64(h.CRC), sum)
				}
				return ns, nil, true, nil
			}
			ar.current, ar.inSegment = ns, true
		}
		doc, err := ar.next()
		if err != nil {
			return Namespace{}, nil, false, err
		}
		if doc == nil {
			ar.inSegment = false
			continue
		}
		c := ar.crc[ar.current]
		if c == nil {
			c = crc64.New(crcTable)
			ar.crc[ar.current] = c
		}
		c.Write(doc)
		return ar.current, doc, false, nil
	}
}

// finish is the archive's end: every namespace it announced or started
// must have ended.
func (ar *Reader) finish() error {
	for _, m := range ar.Metadata {
		if ns := (Namespace{m.Database, m.Collection}); !ar.ended[ns] {
			return fmt.Errorf("%w: %s never ended: the archive is truncated", ErrFormat, ns)
		}
	}
	for ns := range ar.crc {
		if !ar.ended[ns] {
			return fmt.Errorf("%w: %s never ended: the archive is truncated", ErrFormat, ns)
		}
	}
	return io.EOF
}
