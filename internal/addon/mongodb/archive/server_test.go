package archive

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stash-backup/stash/internal/testserver"
)

// TestArchiveOfAServersDocuments: documents read from a server with the
// official driver (FerretDB here: no MongoDB can be had on this machine)
// go into an archive and come back byte for byte, CRC checked, ready to
// be inserted again; the first end-to-end piece of the MongoDB addon.
func TestArchiveOfAServersDocuments(t *testing.T) {
	srv := testserver.StartFerretDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect(ctx)
	coll := cli.Database("app").Collection("users")
	var docs []any
	for i := range 200 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: "user"}, {Key: "tags", Value: bson.A{i, "x"}}, {Key: "at", Value: bson.DateTime(1700000000000 + int64(i))}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for cur.Next(ctx) {
		raw = append(raw, bytes.Clone(cur.Current))
	}
	if err := cur.Err(); err != nil || len(raw) != 200 {
		t.Fatalf("read %d documents: %v", len(raw), err)
	}
	ns := Namespace{"app", "users"}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{ServerVersion: "ferretdb"}, []CollectionMetadata{{Database: "app", Collection: "users", Metadata: "{}"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raw); i += 64 {
		if err := w.WriteSegment(ns, raw[i:min(i+64, len(raw))]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.EndNamespace(ns); err != nil {
		t.Fatal(err)
	}
	w.Close()

	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	ar, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var back []any
	for {
		got, d, ended, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ended && got == ns {
			back = append(back, bson.Raw(d))
		}
	}
	if _, err := coll.InsertMany(ctx, back); err != nil {
		t.Fatal(err)
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil || n != 200 {
		t.Fatalf("%d documents after the restore (%v), want 200", n, err)
	}
	var one bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 7}}).Decode(&one); err != nil || one["name"] != "user" {
		t.Errorf("document 7 after the restore: %v %v", one, err)
	}
}
