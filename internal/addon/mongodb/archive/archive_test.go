package archive

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	users  = Namespace{"app", "users"}
	orders = Namespace{"app", "orders"}
	empty  = Namespace{"app", "empty"}
)

func doc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sample writes an archive of three collections, one of them empty, with
// the others' documents interleaved across segments, and returns it with
// each namespace's documents.
func sample(t *testing.T) ([]byte, map[Namespace][][]byte) {
	t.Helper()
	docs := map[Namespace][][]byte{}
	for i := range 5 {
		docs[users] = append(docs[users], doc(t, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprint("user ", i)}}))
		docs[orders] = append(docs[orders], doc(t, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "total", Value: 1.5 * float64(i)}, {Key: "tags", Value: bson.A{"a", int64(i)}}}))
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{ConcurrentCollections: 4, ServerVersion: "7.0.0", ToolVersion: "stash"}, []CollectionMetadata{
		{Database: "app", Collection: "users", Metadata: `{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}]}`},
		{Database: "app", Collection: "orders", Metadata: `{}`},
		{Database: "app", Collection: "empty", Metadata: `{}`},
	})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteSegment(users, docs[users][:2]...))
	must(w.WriteSegment(orders, docs[orders][:3]...))
	must(w.WriteSegment(users, docs[users][2:]...))
	must(w.EndNamespace(users))
	must(w.WriteSegment(orders, docs[orders][3:]...))
	must(w.EndNamespace(empty))
	must(w.EndNamespace(orders))
	must(w.Close())
	return buf.Bytes(), docs
}

func readAll(r io.Reader) (*Reader, map[Namespace][][]byte, []Namespace, error) {
	ar, err := NewReader(r)
	if err != nil {
		return nil, nil, nil, err
	}
	got := map[Namespace][][]byte{}
	var ended []Namespace
	for {
		ns, d, end, err := ar.Next()
		if err == io.EOF {
			return ar, got, ended, nil
		}
		if err != nil {
			return ar, got, ended, err
		}
		if end {
			ended = append(ended, ns)
			continue
		}
		got[ns] = append(got[ns], d)
	}
}

// TestRoundTrip: what the Writer writes, the Reader reads back whole, in
// order per namespace, with every namespace ended, plain and gzipped (as
// mongodump --archive --gzip writes).
func TestRoundTrip(t *testing.T) {
	raw, want := sample(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	for name, in := range map[string][]byte{"plain": raw, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			ar, got, ended, err := readAll(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if ar.Header.Version != "0.1" || ar.Header.ConcurrentCollections != 4 || ar.Header.ServerVersion != "7.0.0" {
				t.Errorf("header %+v", ar.Header)
			}
			if len(ar.Metadata) != 3 || ar.Metadata[0].Collection != "users" || !strings.Contains(ar.Metadata[0].Metadata, `"_id_"`) {
				t.Errorf("metadata %+v", ar.Metadata)
			}
			for _, ns := range []Namespace{users, orders} {
				if fmt.Sprint(got[ns]) != fmt.Sprint(want[ns]) {
					t.Errorf("%s: read %d documents, not the %d written in order", ns, len(got[ns]), len(want[ns]))
				}
			}
			if fmt.Sprint(ended) != fmt.Sprint([]Namespace{users, empty, orders}) {
				t.Errorf("ended %v", ended)
			}
		})
	}
}

// TestLayout pins the bytes the spec prescribes: the magic number, a
// terminator after the header and metadata, and an EOF header whose CRC
// is the CRC-64-ECMA of the namespace's documents, computed here apart.
func TestLayout(t *testing.T) {
	raw, docs := sample(t)
	if !bytes.HasPrefix(raw, []byte{0x6d, 0xe2, 0x99, 0x81}) {
		t.Fatalf("magic %x", raw[:4])
	}
	off := 4
	for range 4 { // header and three metadata documents
		off += int(binary.LittleEndian.Uint32(raw[off:]))
	}
	if !bytes.Equal(raw[off:off+4], terminator[:]) {
		t.Fatalf("no terminator after the metadata: %x", raw[off:off+4])
	}
	crc := crc64.New(crc64.MakeTable(crc64.ECMA))
	for _, d := range docs[orders] {
		crc.Write(d)
	}
	eof := doc(t, bson.D{{Key: "db", Value: "app"}, {Key: "collection", Value: "orders"}, {Key: "EOF", Value: true}, {Key: "CRC", Value: int64(crc.Sum64())}})
	if !bytes.HasSuffix(raw, append(eof, terminator[:]...)) {
		t.Errorf("the archive does not end with orders' EOF header carrying CRC %x", crc.Sum64())
	}
}

// TestDamage: every way an archive can be cut or altered is an error,
// never a quiet end: truncation anywhere, a changed document byte, a
// missing EOF, a namespace continued after its end, a wrong magic.
func TestDamage(t *testing.T) {
	raw, _ := sample(t)
	for cut := 1; cut < len(raw); cut += 7 {
		if _, _, _, err := readAll(bytes.NewReader(raw[:cut])); err == nil {
			t.Fatalf("an archive cut at %d of %d bytes read without error", cut, len(raw))
		}
	}
	// A byte inside a users document: "user 3" becomes "user 4".
	i := bytes.Index(raw, []byte("user 3"))
	flipped := bytes.Clone(raw)
	flipped[i+5] = '4'
	if _, _, _, err := readAll(bytes.NewReader(flipped)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("a changed document: %v, want a CRC error", err)
	}
	// Without the last namespace's EOF record.
	_, docs := sample(t)
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{}, []CollectionMetadata{{Database: "app", Collection: "orders"}})
	w.WriteSegment(orders, docs[orders]...)
	w.Close()
	if _, _, _, err := readAll(&buf); err == nil || !strings.Contains(err.Error(), "never ended") {
		t.Errorf("no EOF: %v, want a truncated archive", err)
	}
	// A segment after the namespace ended, written by hand.
	buf.Reset()
	w, _ = NewWriter(&buf, Header{}, nil)
	w.WriteSegment(orders, docs[orders][0])
	w.EndNamespace(orders)
	w.marshal(namespaceHeader{Database: "app", Collection: "orders"})
	w.w.Write(docs[orders][1])
	w.w.Write(terminator[:])
	w.Close()
	if _, _, _, err := readAll(&buf); err == nil || !strings.Contains(err.Error(), "after its end") {
		t.Errorf("data after EOF: %v", err)
	}
	if err := w.WriteSegment(orders, docs[orders][1]); err == nil {
		t.Error("the Writer wrote to an ended namespace")
	}
	if _, err := NewReader(bytes.NewReader([]byte("PK\x03\x04 not an archive"))); !errors.Is(err, ErrFormat) {
		t.Errorf("a zip file: %v", err)
	}
	if err := w.WriteSegment(users, []byte{9, 0, 0, 0, 1}); err == nil {
		t.Error("the Writer took a malformed document")
	}
}
