package mongodb

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/addon/mongodb/archive"
)

// ToolVersion is what an archive's header names as the tool that wrote
// it.
const ToolVersion = "stash"

// segmentSize bounds the documents one archive segment holds: a reader
// (mongorestore's demultiplexer included) buffers a segment at a time.
const segmentSize = 1 << 20

// collection is one namespace of a dump, with what its metadata holds.
type collection struct {
	ns archive.Namespace
	// kind is the listCollections type: collection, view or timeseries.
	kind    string
	options bson.Raw
	indexes []bson.Raw
	uuid    string
	// special namespaces (users, roles, their schema version) are read
	// from src with filter, carry no metadata, and go first in the
	// stream, where mongorestore looks for them.
	special bool
	src     archive.Namespace
	filter  bson.D
}

// metadata is the collection's metadata document as mongodump writes it
// (metadata.json in a directory dump): canonical Extended JSON with the
// fields in mongodump's order. Special namespaces have none.
func (c collection) metadata() (string, error) {
	if c.special {
		return "", nil
	}
	idx := bson.A{}
	for _, i := range c.indexes {
		idx = append(idx, i)
	}
	var d bson.D
	if len(c.options) > 5 {
		d = append(d, bson.E{Key: "options", Value: c.options})
	}
	d = append(d, bson.E{Key: "indexes", Value: idx})
	if c.uuid != "" {
		d = append(d, bson.E{Key: "uuid", Value: c.uuid})
	}
	d = append(d, bson.E{Key: "collectionName", Value: c.ns.Collection}, bson.E{Key: "type", Value: c.kind})
	b, err := bson.MarshalExtJSON(d, true, false)
	if err != nil {
		return "", fmt.Errorf("metadata of %s: %w", c.ns, err)
	}
	return string(b), nil
}

// skippedDatabases are never dumped unless --db names them: local holds a
// node's own state (the oplog among it) and config a cluster's.
var skippedDatabases = map[string]bool{"local": true, "config": true}

// authCollections are the admin database's users, roles and the version
// of their schema: a full dump carries them, as mongodump's does.
var authCollections = map[string]bool{"system.users": true, "system.roles": true, "system.version": true}

// dumped says whether collection name of database db belongs in a dump:
// system collections are the server's, except the stored JavaScript and,
// in admin, users and roles.
func dumped(db, name string) bool {
	if !strings.HasPrefix(name, "system.") {
		return true
	}
	return name == "system.js" || db == "admin" && authCollections[name]
}

// survey lists what a dump with args holds, every collection's options
// and indexes included.
func survey(ctx context.Context, cli *mongo.Client, args DumpArgs) ([]collection, error) {
	dbs, err := cli.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var out []collection
	for _, db := range dbs {
		if !args.Select.Database(db) || args.Select.DB == "" && skippedDatabases[db] && !(args.withConfig && db == "config") {
			continue
		}
		cur, err := cli.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		var specs []bson.Raw
		for cur.Next(ctx) {
			specs = append(specs, append(bson.Raw(nil), cur.Current...))
		}
		if err := cur.Err(); err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", db, err)
		}
		cur.Close(ctx)
		for _, s := range specs {
			c, ok, err := describe(ctx, cli, db, s, args)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, c)
			}
		}
	}
	if args.UsersAndRoles {
		// mongodump --db X --dumpDbUsersAndRoles: X's users and roles,
		// and the schema version they need, under X.$admin.*.
		for _, name := range []string{"system.users", "system.roles", "system.version"} {
			c := collection{ns: archive.Namespace{Database: args.Select.DB, Collection: "$admin." + name}, kind: "collection",
				special: true, src: archive.Namespace{Database: "admin", Collection: name}}
			if name != "system.version" {
				c.filter = bson.D{{Key: "db", Value: args.Select.DB}}
			}
			out = append(out, c)
		}
	}
	if args.Select.DB != "" && len(out) == 0 && args.Select.Collection != "" {
		return nil, fmt.Errorf("--collection %s: no such collection in database %s", args.Select.Collection, args.Select.DB)
	}
	return out, nil
}

// describe reads one listCollections entry; ok is false for a collection
// the dump leaves out.
func describe(ctx context.Context, cli *mongo.Client, db string, spec bson.Raw, args DumpArgs) (collection, bool, error) {
	name, _ := spec.Lookup("name").StringValueOK()
	kind, _ := spec.Lookup("type").StringValueOK()
	if kind == "" {
		kind = "collection"
	}
	if !dumped(db, name) && !(args.Select.DB == db && args.Select.Collection == name) || !args.Select.Chosen(db, name) {
		return collection{}, false, nil
	}
	c := collection{ns: archive.Namespace{Database: db, Collection: name}, kind: kind}
	c.src, c.special = c.ns, db == "admin" && authCollections[name]
	if o, ok := spec.Lookup("options").DocumentOK(); ok {
		c.options = o
	}
	if info, ok := spec.Lookup("info").DocumentOK(); ok {
		if _, u, ok := info.Lookup("uuid").BinaryOK(); ok {
			c.uuid = hex.EncodeToString(u)
		}
	}
	if kind == "view" {
		return c, true, nil
	}
	cur, err := cli.Database(db).Collection(name).Indexes().List(ctx)
	if err != nil {
		return c, false, fmt.Errorf("list indexes of %s: %w", c.ns, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		c.indexes = append(c.indexes, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return c, false, fmt.Errorf("list indexes of %s: %w", c.ns, err)
	}
	return c, true, nil
}

// serverVersion is the server's version, for the archive's header.
func serverVersion(ctx context.Context, cli *mongo.Client) string {
	var info struct {
		Version string `bson:"version"`
	}
	if err := cli.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil || info.Version == "" {
		// mongorestore refuses a header whose version is not x.y.z.
		return "0.0.0"
	}
	return info.Version
}

// writeArchive dumps colls into w as one archive, reading up to
// args.Parallel collections at once; their segments interleave. The
// archive is complete only when it returns nil.
//
// With oplogStart (--oplog), the oplog entries from it to the end of the
// dump follow the collections, as the namespace mongodump calls "oplog".
func writeArchive(ctx context.Context, cli *mongo.Client, colls []collection, version string, args DumpArgs, oplogStart *bson.Timestamp, w io.Writer) error {
	var gz *gzip.Writer
	if args.Gzip {
		gz = gzip.NewWriter(w)
		w = gz
	}
	// The prelude lists the special namespaces last, the stream carries
	// them first, as mongodump's does.
	colls = append([]collection(nil), colls...)
	sort.SliceStable(colls, func(i, j int) bool { return !colls[i].special && colls[j].special })
	metas := make([]archive.CollectionMetadata, 0, len(colls)+1)
	oplogListed := false
	for _, c := range colls {
		m, err := c.metadata()
		if err != nil {
			return err
		}
		if c.special && oplogStart != nil && !oplogListed {
			metas = append(metas, archive.CollectionMetadata{Database: oplogNS.Database, Collection: oplogNS.Collection})
			oplogListed = true
		}
		metas = append(metas, archive.CollectionMetadata{Database: c.ns.Database, Collection: c.ns.Collection, Metadata: m})
	}
	if oplogStart != nil && !oplogListed {
		metas = append(metas, archive.CollectionMetadata{Database: oplogNS.Database, Collection: oplogNS.Collection})
	}
	aw, err := archive.NewWriter(w, archive.Header{ConcurrentCollections: int32(args.Parallel), ServerVersion: version, ToolVersion: ToolVersion}, metas)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	locked := func(f func() error) error {
		mu.Lock()
		defer mu.Unlock()
		return f()
	}
	for _, c := range colls {
		if !c.special {
			continue
		}
		if err := dumpCollection(ctx, cli, c, args, func(docs [][]byte) error { return aw.WriteSegment(c.ns, docs...) }); err != nil {
			return err
		}
		if err := aw.EndNamespace(c.ns); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(args.Parallel)
	for _, c := range colls {
		if c.special {
			continue
		}
		if c.kind == "view" {
			// A view has no documents of its own: an empty namespace
			// is what makes mongorestore create it.
			if err := locked(func() error { return aw.EndNamespace(c.ns) }); err != nil {
				return err
			}
			continue
		}
		g.Go(func() error {
			if err := dumpCollection(gctx, cli, c, args, func(docs [][]byte) error {
				return locked(func() error { return aw.WriteSegment(c.ns, docs...) })
			}); err != nil {
				return err
			}
			return locked(func() error { return aw.EndNamespace(c.ns) })
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if oplogStart != nil {
		end, err := oplogTail(ctx, cli)
		if err != nil {
			return err
		}
		if err := dumpOplog(ctx, cli, *oplogStart, end, func(docs [][]byte) error { return aw.WriteSegment(oplogNS, docs...) }); err != nil {
			return err
		}
		if err := aw.EndNamespace(oplogNS); err != nil {
			return err
		}
	}
	if err := aw.Close(); err != nil {
		return err
	}
	if gz != nil {
		return gz.Close()
	}
	return nil
}

// dumpCollection reads every document of c (those --query chooses) and
// hands them to segment in runs of at most segmentSize bytes.
func dumpCollection(ctx context.Context, cli *mongo.Client, c collection, args DumpArgs, segment func([][]byte) error) error {
	filter := bson.D{}
	switch {
	case c.filter != nil:
		filter = c.filter
	case args.Query != nil && args.Select.Collection == c.ns.Collection:
		filter = args.Query
	}
	cur, err := cli.Database(c.src.Database).Collection(c.src.Collection).Find(ctx, filter)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.ns, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	if _, err := toSegments(ctx, cur, nil, segment); err != nil {
		return fmt.Errorf("read %s: %w", c.ns, err)
	}
	return nil
}

// toSegments hands segment what cur reads, in runs of at most
// segmentSize bytes, ending a run where the cursor's batch ends; first,
// if set, checks the first document. It returns how many documents it
// read.
func toSegments(ctx context.Context, cur *mongo.Cursor, first func(bson.Raw) error, segment func([][]byte) error) (int, error) {
	var batch [][]byte
	n, size := 0, 0
	for cur.Next(ctx) {
		if n == 0 && first != nil {
			if err := first(cur.Current); err != nil {
				return 0, err
			}
		}
		n++
		// Current is reused by the next batch the cursor fetches.
		d := append([]byte(nil), cur.Current...)
		batch = append(batch, d)
		size += len(d)
		if size >= segmentSize || cur.RemainingBatchLength() == 0 {
			if err := segment(batch); err != nil {
				return n, err
			}
			batch, size = batch[:0], 0
		}
	}
	if err := cur.Err(); err != nil {
		return n, err
	}
	if len(batch) > 0 {
		return n, segment(batch)
	}
	return n, nil
}
