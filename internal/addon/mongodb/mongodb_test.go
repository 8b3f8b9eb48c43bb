package mongodb

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/addon/mongodb/archive"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

// The data path runs against FerretDB v1.24.2 over SQLite: no MongoDB
// server can be had on this machine. What FerretDB lacks is said where a
// test would want it: the BSON types JavaScript, Symbol, MinKey, MaxKey,
// DBPointer, CodeWithScope, Undefined and Decimal128 (the connection is
// closed), TTL, partial, text, 2dsphere and hidden indexes, validators,
// collations, views, users and roles.

var shared testserver.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}

// ownServer is a FerretDB of the test's own (one it kills, or whose
// oplog it turns on) and a client of it.
func ownServer(t *testing.T) (*testserver.FerretDB, *mongo.Client) {
	t.Helper()
	srv := testserver.StartFerretDB(t)
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Disconnect(context.Background()) })
	return srv, cli
}

// createOplog makes FerretDB keep an oplog: it writes one into
// local.oplog.rs once that capped collection exists.
func createOplog(t *testing.T, cli *mongo.Client, size int64) {
	t.Helper()
	if err := cli.Database("local").RunCommand(context.Background(), bson.D{{Key: "create", Value: "oplog.rs"}, {Key: "capped", Value: true}, {Key: "size", Value: size}}).Err(); err != nil {
		t.Fatal(err)
	}
}

// server is the package's FerretDB and a client of it.
func server(t *testing.T) (*testserver.FerretDB, *mongo.Client) {
	t.Helper()
	srv := shared.FerretDB(t)
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Disconnect(context.Background()) })
	return srv, cli
}

func optionsOf(srv *testserver.FerretDB) Options {
	return Options{Conn: &appbinding.Connection{Scheme: "mongodb", Host: srv.Host, Port: srv.Port}, AuthDatabase: "admin",
		DumpArgs: DumpArgs{Parallel: 4}, RestoreArgs: RestoreArgs{Parallel: 4, Workers: 1}}
}

func openRepo(t *testing.T) *repository.Repository { t.Helper(); return addontest.OpenRepo(t) }

// seed fills database db with what FerretDB can hold of every kind: the
// BSON types it has, nested documents and arrays, a unique, a sparse and a
// compound index, a capped collection and an empty one.
func seed(t *testing.T, cli *mongo.Client, db string, n int) {
	t.Helper()
	ctx := context.Background()
	d := cli.Database(db)
	var docs []any
	for i := range n {
		docs = append(docs, bson.D{
			{Key: "_id", Value: i},
			{Key: "name", Value: fmt.Sprintf("item-%05d ünïcødé ✓", i)},
			{Key: "price", Value: float64(i) * 1.25},
			{Key: "qty", Value: int32(i % 1000)},
			{Key: "big", Value: int64(i) << 40},
			{Key: "ok", Value: i%2 == 0},
			{Key: "at", Value: bson.DateTime(1700000000000 + int64(i)*1000)},
			{Key: "oid", Value: bson.ObjectID{byte(i), byte(i >> 8), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{Key: "bin", Value: bson.Binary{Subtype: 0, Data: []byte{byte(i), 0, 255}}},
			{Key: "uuid", Value: bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
			{Key: "re", Value: bson.Regex{Pattern: "^item-" + fmt.Sprint(i), Options: "i"}},
			{Key: "ts", Value: bson.Timestamp{T: uint32(1700000000 + i), I: 1}},
			{Key: "none", Value: nil},
			{Key: "tags", Value: bson.A{"a", int32(i), bson.D{{Key: "deep", Value: bson.A{1.5, "x"}}}}},
			{Key: "sku", Value: fmt.Sprintf("SKU-%d", i)},
			{Key: "note", Value: strings.Repeat("lorem ipsum ", i%50)},
		})
		if i%3 == 0 {
			docs[i] = append(docs[i].(bson.D), bson.E{Key: "sparse", Value: i})
		}
	}
	if _, err := d.Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Collection("items").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetName("sku_unique").SetUnique(true)},
		{Keys: bson.D{{Key: "sparse", Value: 1}}, Options: options.Index().SetName("sparse_only").SetSparse(true)},
		{Keys: bson.D{{Key: "qty", Value: 1}, {Key: "at", Value: -1}}, Options: options.Index().SetName("qty_at")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.RunCommand(ctx, bson.D{{Key: "create", Value: "events"}, {Key: "capped", Value: true}, {Key: "size", Value: int64(1 << 20)}, {Key: "max", Value: int64(500)}}).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := d.Collection("events").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "e", Value: "started"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.CreateCollection(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
}

// fingerprint is what a database holds (only the collections only names,
// when given): each collection's options, indexes and documents, byte for
// byte in _id order.
func fingerprint(t *testing.T, cli *mongo.Client, db string, only ...string) string {
	t.Helper()
	ctx := context.Background()
	d := cli.Database(db)
	cur, err := d.ListCollections(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for cur.Next(ctx) {
		name := cur.Current.Lookup("name").StringValue()
		if len(only) > 0 && !slices.Contains(only, name) {
			continue
		}
		out = append(out, "collection "+name+" "+cur.Current.Lookup("options").String())
		ic, err := d.Collection(name).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for ic.Next(ctx) {
			out = append(out, "  index "+ic.Current.String())
		}
		dc, err := d.Collection(name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for dc.Next(ctx) {
			out = append(out, "  "+fmt.Sprintf("%x", []byte(dc.Current)))
			n++
		}
		out = append(out, fmt.Sprintf("  %d documents", n))
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "(empty)"
	}
	return strings.Join(out, "\n")
}

func dropAll(t *testing.T, cli *mongo.Client, dbs ...string) {
	t.Helper()
	for _, db := range dbs {
		if err := cli.Database(db).Drop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupDropRestore: every document comes back byte for byte, with
// its collection's options and indexes, after the databases were
// dropped; an unchanged server backs up to the same archive.
func TestBackupDropRestore(t *testing.T) {
	ctx := context.Background()
	srv, cli := server(t)
	seed(t, cli, "rt_shop", 3000)
	seed(t, cli, "rt_crm", 50)
	want := fingerprint(t, cli, "rt_shop") + fingerprint(t, cli, "rt_crm")
	o := optionsOf(srv)
	o.DumpArgs.Select.Include = []string{"rt_*.*"}
	r := openRepo(t)
	if err := (Driver{o}).Wait(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := addontest.Backup(ctx, r, Driver{o}, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	// Collections read in parallel interleave as they come, so only
	// the size of an unchanged server's archive is the same each time;
	// read one at a time, the bytes are.
	again, err := addontest.Backup(ctx, r, Driver{o}, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if again.TotalBytes != st.TotalBytes {
		t.Errorf("backup of an unchanged server: %d bytes, first %d", again.TotalBytes, st.TotalBytes)
	}
	serial := o
	serial.DumpArgs.Parallel = 1
	if a, b := archiveOf(t, serial), archiveOf(t, serial); !bytes.Equal(a, b) {
		t.Errorf("two archives of an unchanged server read one collection at a time differ (%d and %d bytes)", len(a), len(b))
	}
	snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dropAll(t, cli, "rt_shop", "rt_crm")
	if err := addontest.Restore(ctx, r.Reader, snap, Driver{o}); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, cli, "rt_shop") + fingerprint(t, cli, "rt_crm"); got != want {
		t.Errorf("restored databases differ:\n got %.2000s\nwant %.2000s", got, want)
	}
}

// archiveOf backs up with o and returns the archive as stored.
func archiveOf(t *testing.T, o Options) []byte {
	t.Helper()
	ctx := context.Background()
	r := openRepo(t)
	st, err := addontest.Backup(ctx, r, Driver{o}, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.RestoreStream(ctx, snap, DumpFile, &buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// restoreBytes restores an archive held in memory.
func restoreBytes(t *testing.T, cli *mongo.Client, a []byte, args RestoreArgs) (RestoreStats, error) {
	t.Helper()
	return restoreArchive(context.Background(), cli, bytes.NewReader(a), args, slogDiscard)
}

// TestSelection: mongodump's --db, --collection and exclusions choose
// what is dumped; mongorestore's --nsInclude, --nsExclude and
// --nsFrom/--nsTo choose what is restored and where.
func TestSelection(t *testing.T) {
	srv, cli := server(t)
	seed(t, cli, "sel_a", 30)
	seed(t, cli, "sel_b", 10)
	names := func(a []byte) []string {
		ar, err := archive.NewReader(bytes.NewReader(a))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ar.Metadata {
			if strings.HasPrefix(m.Database, "sel_") {
				out = append(out, m.Database+"."+m.Collection)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		args string
		want []string
	}{
		{"--db=sel_a", []string{"sel_a.empty", "sel_a.events", "sel_a.items"}},
		{"--db sel_a --collection items", []string{"sel_a.items"}},
		{"--db=sel_a --excludeCollection=events --excludeCollectionsWithPrefix=emp", []string{"sel_a.items"}},
		{"--nsInclude=sel_*.items --nsExclude=sel_b.*", []string{"sel_a.items"}},
	} {
		t.Run(tt.args, func(t *testing.T) {
			o := optionsOf(srv)
			var err error
			if o.DumpArgs, err = ParseDumpArgs(strings.Fields(tt.args)); err != nil {
				t.Fatal(err)
			}
			if got := names(archiveOf(t, o)); !slices.Equal(got, tt.want) {
				t.Errorf("archive holds %v, want %v", got, tt.want)
			}
		})
	}

	o := optionsOf(srv)
	o.DumpArgs.Select.Include = []string{"sel_a.*"}
	a := archiveOf(t, o)
	want := fingerprint(t, cli, "sel_a", "items", "events")
	args, err := ParseRestoreArgs([]string{"--nsInclude=sel_a.items", "--nsInclude=sel_a.events", "--nsFrom=sel_a.*", "--nsTo=sel_copy.*"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := restoreBytes(t, cli, a, args)
	if err != nil {
		t.Fatal(err)
	}
	if st.Collections != 2 || st.Documents != 50 {
		t.Errorf("restored %+v, want 2 collections and 50 documents", st)
	}
	if got := fingerprint(t, cli, "sel_copy"); got != want {
		t.Errorf("renamed restore differs:\n got %.1500s\nwant %.1500s", got, want)
	}
}

// TestRestoreIntoExistingData: documents already there are kept and
// counted, as mongorestore does; --stopOnError fails on the first, --drop
// replaces the collections.
func TestRestoreIntoExistingData(t *testing.T) {
	ctx := context.Background()
	srv, cli := server(t)
	seed(t, cli, "ex_shop", 100)
	o := optionsOf(srv)
	o.DumpArgs.Select.DB = "ex_shop"
	a := archiveOf(t, o)
	want := fingerprint(t, cli, "ex_shop")

	items := cli.Database("ex_shop").Collection("items")
	if _, err := items.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 60}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "kept"}}}}); err != nil {
		t.Fatal(err)
	}
	st, err := restoreBytes(t, cli, a, RestoreArgs{Parallel: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 60+20 || st.Documents != 40 {
		t.Errorf("restore into existing data: %+v, want 40 inserted and 80 kept", st)
	}
	var one bson.M
	if err := items.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&one); err != nil || one["name"] != "kept" {
		t.Errorf("document 1 after the restore: %v (%v), want the one already there", one, err)
	}

	if _, err := restoreBytes(t, cli, a, RestoreArgs{Parallel: 2, Workers: 1, StopOnError: true}); err == nil || !strings.Contains(err.Error(), "ex_shop.") || !strings.Contains(err.Error(), "_id") {
		t.Errorf("--stopOnError into existing data: %v, want an error naming the collection and the document", err)
	}

	if _, err := restoreBytes(t, cli, a, RestoreArgs{Parallel: 2, Workers: 1, Drop: true}); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, cli, "ex_shop"); got != want {
		t.Errorf("--drop restore differs:\n got %.1500s\nwant %.1500s", got, want)
	}
}

// TestGzipArchive: --gzip on a backup writes a gzip archive (as
// mongodump --gzip does), which the restore recognises by its bytes.
func TestGzipArchive(t *testing.T) {
	srv, cli := server(t)
	seed(t, cli, "gz_shop", 200)
	want := fingerprint(t, cli, "gz_shop")
	o := optionsOf(srv)
	o.DumpArgs.Select.DB, o.DumpArgs.Gzip = "gz_shop", true
	a := archiveOf(t, o)
	if len(a) < 2 || a[0] != 0x1f || a[1] != 0x8b {
		t.Fatalf("archive starts %x, want gzip", a[:min(4, len(a))])
	}
	dropAll(t, cli, "gz_shop")
	if _, err := restoreBytes(t, cli, a, RestoreArgs{Parallel: 4, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, cli, "gz_shop"); got != want {
		t.Errorf("restored from gzip differs")
	}
}

// killingWriter passes writes through until after bytes, then calls kill
// once and goes on.
type killingWriter struct {
	w     io.Writer
	after int
	n     int
	kill  func()
}

func (k *killingWriter) Write(p []byte) (int, error) {
	k.n += len(p)
	if k.kill != nil && k.n > k.after {
		k.kill()
		k.kill = nil
	}
	return k.w.Write(p)
}

// TestKilledServerCommitsNothing: a server that dies in the middle of a
// dump leaves no snapshot behind, and the backup fails saying why.
func TestKilledServerCommitsNothing(t *testing.T) {
	ctx := context.Background()
	srv, cli := ownServer(t)
	seed(t, cli, "kill_shop", 20000)
	o := optionsOf(srv)
	o.DumpArgs.Parallel = 1
	r := openRepo(t)
	w := &streamHook{Writer: dumpWriter(r), wrap: func(w io.Writer) io.Writer {
		return &killingWriter{w: w, after: 256 << 10, kill: func() { srv.Kill(t) }}
	}}
	err := Driver{o}.Backup(ctx, w)
	if err == nil {
		t.Fatal("a backup whose server died succeeded")
	}
	snaps, lerr := r.Snapshots(ctx, repository.Filter{})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(snaps) != 0 {
		t.Errorf("%d snapshots after a dump that failed (%v)", len(snaps), err)
	}
	if !strings.Contains(err.Error(), "kill_shop.") {
		t.Errorf("error %q does not name the collection being read", err)
	}
}

// streamHook is the engine's Writer with the producer's output wrapped,
// to act in the middle of a dump.
type streamHook struct {
	addon.Writer
	wrap func(io.Writer) io.Writer
}

func (h *streamHook) Stream(ctx context.Context, host, name string, produce func(context.Context, io.Writer) error) error {
	return h.Writer.Stream(ctx, host, name, func(ctx context.Context, w io.Writer) error { return produce(ctx, h.wrap(w)) })
}

func dumpWriter(r *repository.Repository) addon.Writer {
	return dump.NewWriter(dump.Ready(r), repository.BackupOptions{Host: "host-0"})
}

var slogDiscard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestArchiveReadByPymongo: an archive backup-mongo wrote is valid by the
// archive spec as an independent reader sees it: pymongo's BSON decoder
// (Debian's python3-bson) and a CRC-64 of its own check the framing, every
// document, every namespace's CRC and the metadata (testdata/check_archive.py).
func TestArchiveReadByPymongo(t *testing.T) {
	srv, cli := server(t)
	seed(t, cli, "py_shop", 300)
	o := optionsOf(srv)
	o.DumpArgs.Select.DB = "py_shop"
	a := archiveOf(t, o)
	path := filepath.Join(t.TempDir(), "dump")
	if err := os.WriteFile(path, a, 0o600); err != nil {
		t.Fatal(err)
	}
	// The checker itself catches damage: one byte changed inside a
	// document's string breaks its namespace's CRC.
	bad := bytes.Clone(a)
	i := bytes.Index(bad, []byte("lorem ipsum"))
	if i < 0 {
		t.Fatal("no document text in the archive")
	}
	bad[i] = 'L'
	if err := os.WriteFile(path+".bad", bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", "testdata/check_archive.py", path+".bad").CombinedOutput(); err == nil || !strings.Contains(string(out), "CRC") {
		t.Errorf("a damaged archive passed the independent check: %v %s", err, out)
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/check_archive.py", path).CombinedOutput()
	if err != nil {
		t.Fatalf("the archive fails an independent reading: %v\n%s", err, out)
	}
	var got struct {
		Header     map[string]any `json:"header"`
		Namespaces map[string]int `json:"namespaces"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]int{"py_shop.items": 300, "py_shop.events": 20, "py_shop.empty": 0}
	if fmt.Sprint(got.Namespaces) != fmt.Sprint(want) {
		t.Errorf("namespaces %v, want %v", got.Namespaces, want)
	}
	if got.Header["tool_version"] != ToolVersion || got.Header["server_version"] == "" {
		t.Errorf("header %v", got.Header)
	}
}

// TestTLS: the AppBinding's caBundle verifies the server and
// spec.tlsSecret's client certificate is presented (FerretDB requires
// one signed by its CA); without the CA the server is not trusted, and
// insecureSkipTLSVerify is the AppBinding's explicit way around that.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	files := testserver.NewTLS(t, "stash")
	srv := testserver.StartFerretDBTLS(t, files)
	conn := func() *appbinding.Connection {
		return &appbinding.Connection{Scheme: "mongodb", Host: srv.Host, Port: srv.Port, Query: url.Values{},
			CABundle: files.CA, ClientCert: files.ClientCert, ClientKey: files.ClientKey}
	}
	o := Options{Conn: conn(), DumpArgs: DumpArgs{Parallel: 2}, RestoreArgs: RestoreArgs{Parallel: 2, Workers: 1}}
	cli, err := o.connect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect(ctx)
	seed(t, cli, "tls_shop", 50)
	want := fingerprint(t, cli, "tls_shop")
	o.DumpArgs.Select.DB = "tls_shop"
	a := archiveOf(t, o)
	dropAll(t, cli, "tls_shop")
	if _, err := restoreBytes(t, cli, a, o.RestoreArgs); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, cli, "tls_shop"); got != want {
		t.Error("restore over TLS differs")
	}

	untrusted := Options{Conn: conn()}
	untrusted.Conn.CABundle = nil
	untrusted.Conn.Query.Set("tls", "true")
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := (Driver{untrusted}).Wait(wctx, 2*time.Second); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server not signed by a CA given: %v, want a certificate error", err)
	}
	nocert := Options{Conn: conn()}
	nocert.Conn.ClientCert, nocert.Conn.ClientKey = nil, nil
	if err := (Driver{nocert}).Wait(ctx, 2*time.Second); err == nil {
		t.Error("connected without the client certificate the server requires")
	}
	skip := Options{Conn: conn()}
	skip.Conn.CABundle, skip.Conn.InsecureSkipTLSVerify = nil, true
	if err := (Driver{skip}).Wait(ctx, 10*time.Second); err != nil {
		t.Errorf("insecureSkipTLSVerify: %v", err)
	}
}

// mongodumpArchive is an archive as `mongodump --archive --db app
// --dumpDbUsersAndRoles --oplog`-era tools write them (what Stash's backups
// hold): a tool version of mongo-tools, index specs with the "ns" field
// servers before 4.4 listed, options first in the metadata, the special
// namespaces of users and roles first in the stream and without metadata,
// a view as an empty namespace, and an oplog namespace last.
func mongodumpArchive(t *testing.T, gz bool) []byte {
	t.Helper()
	items := archive.Namespace{Database: "app", Collection: "items"}
	view := archive.Namespace{Database: "app", Collection: "cheap"}
	users := archive.Namespace{Database: "app", Collection: "$admin.system.users"}
	oplog := archive.Namespace{Database: "", Collection: "oplog"}
	metas := []archive.CollectionMetadata{
		{Database: "app", Collection: "items", Metadata: `{"options":{},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_","ns":"app.items"},{"v":{"$numberInt":"1"},"unique":true,"key":{"sku":{"$numberInt":"1"}},"name":"sku_1","ns":"app.items"}],"uuid":"0123456789abcdef0123456789abcdef","collectionName":"items","type":"collection"}`},
		{Database: "app", Collection: "cheap", Metadata: `{"options":{"viewOn":"items","pipeline":[{"$match":{"price":{"$lt":{"$numberInt":"5"}}}}]},"indexes":[],"collectionName":"cheap","type":"view"}`},
		{Database: "", Collection: "oplog", Metadata: ""},
		{Database: "app", Collection: "$admin.system.users", Metadata: ""},
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	var z *gzip.Writer
	if gz {
		z = gzip.NewWriter(&buf)
		w = z
	}
	aw, err := archive.NewWriter(w, archive.Header{ConcurrentCollections: 4, ServerVersion: "4.2.3", ToolVersion: "100.3.1"}, metas)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(v bson.D) []byte {
		b, err := bson.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(aw.WriteSegment(users, doc(bson.D{{Key: "_id", Value: "app.reader"}, {Key: "user", Value: "reader"}, {Key: "db", Value: "app"}})))
	must(aw.EndNamespace(users))
	for i := 0; i < 300; i += 100 {
		var docs [][]byte
		for j := i; j < i+100; j++ {
			docs = append(docs, doc(bson.D{{Key: "_id", Value: int32(j)}, {Key: "sku", Value: fmt.Sprintf("S%d", j)}, {Key: "price", Value: int32(j % 10)}}))
		}
		must(aw.WriteSegment(items, docs...))
		if i == 0 {
			must(aw.EndNamespace(view)) // interleaved, as parallel dumps are
		}
	}
	must(aw.EndNamespace(items))
	must(aw.WriteSegment(oplog, doc(bson.D{{Key: "ts", Value: bson.Timestamp{T: 1, I: 1}}, {Key: "op", Value: "n"}, {Key: "ns", Value: ""}}),
		doc(bson.D{{Key: "ts", Value: bson.Timestamp{T: 1, I: 2}}, {Key: "op", Value: "i"}, {Key: "ns", Value: "app.items"}, {Key: "o", Value: bson.D{{Key: "_id", Value: int32(1000)}}}})))
	must(aw.EndNamespace(oplog))
	must(aw.Close())
	if z != nil {
		must(z.Close())
	}
	return buf.Bytes()
}

// TestRestoreMongodumpArchive: what Stash's mongodump wrote restores,
// gzip-compressed or not: documents and indexes (the old "ns" field
// dropped), the users of --dumpDbUsersAndRoles only when asked, the oplog
// left alone unless replayed, its no-ops skipped when it is. The view is
// excluded: FerretDB has no views.
func TestRestoreMongodumpArchive(t *testing.T) {
	_, cli := server(t)
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			dropAll(t, cli, "app")
			a := mongodumpArchive(t, gz)
			args, err := ParseRestoreArgs([]string{"--nsExclude=app.cheap"})
			if err != nil {
				t.Fatal(err)
			}
			st, err := restoreBytes(t, cli, a, args)
			if err != nil {
				t.Fatal(err)
			}
			if st.Documents != 300 || st.Collections != 1 {
				t.Errorf("restored %+v, want 300 documents in 1 collection", st)
			}
			fp := fingerprint(t, cli, "app")
			if !strings.Contains(fp, `"name": "sku_1","unique": true`) || strings.Contains(fp, `"ns"`) || !strings.Contains(fp, "300 documents") {
				t.Errorf("restored database:\n%.1500s", fp)
			}
			// FerretDB has no applyOps: the replay fails naming the entry
			// (TestOplogReplay checks a replay against a server that has).
			args.OplogReplay = true
			if _, err := restoreBytes(t, cli, a, args); err == nil || !strings.Contains(err.Error(), "--oplogReplay: apply the entry of app.items (op i") {
				t.Errorf("--oplogReplay on FerretDB: %v, want the entry named", err)
			}
			args.OplogReplay, args.UsersAndRoles = false, true
			if _, err := restoreBytes(t, cli, a, args); err == nil || !strings.Contains(err.Error(), "_mergeAuthzCollections") {
				t.Errorf("--restoreDbUsersAndRoles on FerretDB: %v, want the server's refusal of _mergeAuthzCollections", err)
			}
		})
	}
}

// TestOplogPointInTime: --oplog records where the oplog stood before the
// first collection was read and, after the last, the entries written in
// between, as the archive's "oplog" namespace, last in the stream. FerretDB
// keeps an oplog in local.oplog.rs once that capped collection exists (it
// is no replica set: hello has no setName); without one, --oplog fails
// saying the server is not a replica set member.
func TestOplogPointInTime(t *testing.T) {
	ctx := context.Background()
	srv, cli := ownServer(t)
	seed(t, cli, "pit", 3000)
	o := optionsOf(srv)
	o.DumpArgs, _ = ParseDumpArgs([]string{"--oplog", "-j", "1"})
	r := openRepo(t)
	if err := (Driver{o}).Backup(ctx, dumpWriter(r)); err == nil || !strings.Contains(err.Error(), "not a replica set member") {
		t.Fatalf("--oplog without an oplog: %v", err)
	}

	createOplog(t, cli, 64<<20)
	before := cli.Database("pit").Collection("before")
	for _, id := range []string{"older", "newest before the dump"} {
		if _, err := before.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
	during := cli.Database("pit").Collection("during")
	w := &streamHook{Writer: dumpWriter(r), wrap: func(w io.Writer) io.Writer {
		return &killingWriter{w: w, after: 64 << 10, kill: func() {
			if _, err := during.InsertOne(ctx, bson.D{{Key: "_id", Value: "written during the dump"}}); err != nil {
				t.Error(err)
			}
		}}
	}}
	if err := (Driver{o}).Backup(ctx, w); err != nil {
		t.Fatal(err)
	}
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	var buf bytes.Buffer
	if _, err := r.RestoreStream(ctx, snaps[0], DumpFile, &buf, nil); err != nil {
		t.Fatal(err)
	}
	ar, err := archive.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := ar.Metadata; len(m) == 0 || !slices.ContainsFunc(m, func(c archive.CollectionMetadata) bool { return c.Database == "" && c.Collection == "oplog" }) {
		t.Fatalf("the prelude lists no oplog: %v", m)
	}
	var entries []bson.Raw
	last := ""
	for {
		ns, d, ended, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ended {
			continue
		}
		if last == "oplog" && ns.Collection != "oplog" {
			t.Fatalf("documents of %s after the oplog", ns)
		}
		last = ns.Collection
		if ns == (archive.Namespace{Collection: "oplog"}) {
			entries = append(entries, d)
		}
	}
	var saw []string
	for _, e := range entries {
		saw = append(saw, e.Lookup("ns").StringValue()+" "+e.Lookup("op").StringValue()+" "+e.Lookup("o", "_id").String())
	}
	got := strings.Join(saw, "\n")
	if !strings.Contains(got, `pit.during i "written during the dump"`) {
		t.Errorf("the oplog lacks the insert made during the dump:\n%s", got)
	}
	// The newest entry from before the dump starts the range, as in
	// mongodump: finding it again proves the oplog did not roll over
	// while the dump ran (replaying it again changes nothing).
	if !strings.HasPrefix(got, `pit.before i "newest before the dump"`) || strings.Contains(got, "older") || len(entries) != 2 {
		t.Errorf("the oplog's range, want the newest entry before the dump, then the one during it:\n%s", got)
	}
}

// TestOplogRolledOver: when the oplog drops the entry the dump started
// from while the dump runs, entries are lost and the dump is no point in
// time: the backup fails saying so, and nothing is committed.
func TestOplogRolledOver(t *testing.T) {
	ctx := context.Background()
	srv, cli := ownServer(t)
	seed(t, cli, "roll", 3000)
	createOplog(t, cli, 1<<20)
	busy := cli.Database("roll").Collection("busy")
	if _, err := busy.InsertOne(ctx, bson.D{{Key: "_id", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	o := optionsOf(srv)
	o.DumpArgs, _ = ParseDumpArgs([]string{"--oplog", "-j", "1"})
	r := openRepo(t)
	w := &streamHook{Writer: dumpWriter(r), wrap: func(w io.Writer) io.Writer {
		return &killingWriter{w: w, after: 64 << 10, kill: func() {
			// FerretDB trims capped collections once a minute; the
			// server's eviction of the oldest entries is done by hand.
			if _, err := cli.Database("local").Collection("oplog.rs").DeleteMany(ctx, bson.D{}); err != nil {
				t.Error(err)
			}
			for i := range 10 {
				if _, err := busy.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
					t.Error(err)
				}
			}
		}}
	}}
	err := Driver{o}.Backup(ctx, w)
	if err == nil || !strings.Contains(err.Error(), "rolled over") {
		t.Fatalf("a dump whose oplog rolled over: %v", err)
	}
	if snaps, err := r.Snapshots(ctx, repository.Filter{}); err != nil || len(snaps) != 0 {
		t.Errorf("snapshots after a dump that was no point in time: %v %v", snaps, err)
	}
}

// TestOplogReplay: a dump with --oplog during which documents were
// inserted, changed and deleted, restored with --oplogReplay, gives the
// databases exactly as they were when the dump ended: one point in time.
// FerretDB writes the oplog; the replay's applyOps is answered by a
// proxy that models MongoDB's (applyOps above).
func TestOplogReplay(t *testing.T) {
	ctx := context.Background()
	srv, cli := ownServer(t)
	seed(t, cli, "pit", 3000)
	createOplog(t, cli, 64<<20)
	items := cli.Database("pit").Collection("items")
	o := optionsOf(srv)
	o.DumpArgs, _ = ParseDumpArgs([]string{"--oplog", "-j", "1"})
	r := openRepo(t)
	w := &streamHook{Writer: dumpWriter(r), wrap: func(w io.Writer) io.Writer {
		return &killingWriter{w: w, after: 64 << 10, kill: func() {
			writes := []func() error{
				func() error {
					_, err := cli.Database("pit").Collection("during").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "new"}})
					return err
				},
				func() error {
					_, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: 2999}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "changed during the dump"}}}})
					return err
				},
				func() error {
					_, err := items.DeleteOne(ctx, bson.D{{Key: "_id", Value: 0}})
					return err
				},
			}
			for _, f := range writes {
				if err := f(); err != nil {
					t.Error(err)
				}
			}
		}}
	}}
	if err := (Driver{o}).Backup(ctx, w); err != nil {
		t.Fatal(err)
	}
	want := fingerprint(t, cli, "pit")
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	dropAll(t, cli, "pit")

	proxy := testserver.StartMongoProxy(t, srv, map[string]testserver.MongoHandler{"applyOps": testserver.ApplyOps(cli)})
	ro := o
	ro.Conn = &appbinding.Connection{Scheme: "mongodb", Host: proxy.Host, Port: proxy.Port, Query: url.Values{"directConnection": {"true"}}}
	ro.RestoreArgs, _ = ParseRestoreArgs([]string{"--oplogReplay"})
	if err := addontest.Restore(ctx, r.Reader, snaps[0], Driver{ro}); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, cli, "pit"); got != want {
		t.Errorf("replayed databases differ from the dump's end:\n got %.3000s\nwant %.3000s", got, want)
	}
	if n := strings.Count(strings.Join(proxy.Commands(), " "), "applyOps"); n < 3 {
		t.Errorf("%d entries replayed, want the 3 writes made during the dump", n)
	}
}

// TestRestoreUsersAndRoles: the users and roles a --dumpDbUsersAndRoles
// archive carries are staged in admin.tempusers and merged by the
// server's _mergeAuthzCollections for that database, as mongorestore
// does, and the staging collections are gone afterwards. FerretDB has no
// users: the merge is answered by a proxy that records it and checks
// what was staged, our reading of MongoDB's command.
func TestRestoreUsersAndRoles(t *testing.T) {
	ctx := context.Background()
	srv, cli := server(t)
	dropAll(t, cli, "app")
	var merge bson.Raw
	var staged []bson.M
	proxy := testserver.StartMongoProxy(t, srv, map[string]testserver.MongoHandler{
		"_mergeAuthzCollections": func(db string, cmd bson.Raw) (bson.D, error) {
			merge = append(bson.Raw(nil), cmd...)
			cur, err := cli.Database("admin").Collection("tempusers").Find(ctx, bson.D{})
			if err != nil {
				return nil, err
			}
			return nil, cur.All(ctx, &staged)
		},
	})
	conn := &appbinding.Connection{Scheme: "mongodb", Host: proxy.Host, Port: proxy.Port, Query: url.Values{"directConnection": {"true"}}}
	o := Options{Conn: conn}
	pc, err := o.connect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Disconnect(ctx)
	args, _ := ParseRestoreArgs([]string{"--restoreDbUsersAndRoles", "--nsExclude=app.cheap"})
	if _, err := restoreArchive(ctx, pc, bytes.NewReader(mongodumpArchive(t, false)), args, slogDiscard); err != nil {
		t.Fatal(err)
	}
	if merge == nil {
		t.Fatal("_mergeAuthzCollections was not called")
	}
	if db, _ := merge.Lookup("db").StringValueOK(); db != "app" {
		t.Errorf("merged for db %q, want app: %v", db, merge)
	}
	if u, _ := merge.Lookup("tempUsersCollection").StringValueOK(); u != "admin.tempusers" {
		t.Errorf("merge command %v", merge)
	}
	if len(staged) != 1 || staged[0]["user"] != "reader" {
		t.Errorf("staged users %v, want the archive's one", staged)
	}
	if names, _ := cli.Database("admin").ListCollectionNames(ctx, bson.D{}); slices.Contains(names, "tempusers") {
		t.Errorf("the staging collection was left behind: %v", names)
	}
}

// TestCredentials: the AppBinding Secret's user authenticates (SCRAM,
// against --authentication-database), a wrong password fails the backup
// before anything is committed, and no error quotes a password.
func TestCredentials(t *testing.T) {
	ctx := context.Background()
	srv := testserver.StartFerretDBAuth(t, "root", "right-pw-123")
	o := optionsOf(srv)
	o.Conn.Username, o.Conn.Password = "root", "right-pw-123"
	o.DumpArgs.Select.DB = "auth_app"
	cli, err := o.connect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect(ctx)
	seed(t, cli, "auth_app", 20)
	a := archiveOf(t, o)
	if len(a) == 0 {
		t.Fatal("no archive")
	}
	bad := optionsOf(srv)
	bad.Conn.Username, bad.Conn.Password = "root", "wrong-pw-456"
	r := openRepo(t)
	err = Driver{bad}.Backup(ctx, dumpWriter(r))
	if err == nil || !strings.Contains(err.Error(), "Authentication failed") || strings.Contains(err.Error(), "wrong-pw-456") || strings.Contains(err.Error(), "right-pw-123") {
		t.Errorf("a wrong password: %v, want an authentication failure that quotes no password", err)
	}
	if snaps, _ := r.Snapshots(ctx, repository.Filter{}); len(snaps) != 0 {
		t.Errorf("%d snapshots after a failed login", len(snaps))
	}
	anon := optionsOf(srv)
	anon.DumpArgs.Select.DB = "auth_app"
	if err := (Driver{anon}).Backup(ctx, dumpWriter(r)); err == nil || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("no credentials: %v", err)
	}
}
