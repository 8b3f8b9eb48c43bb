package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/addon/mongodb/archive"
)

// Batches a restore inserts: at most this many documents or bytes each,
// well under the server's 48 MB message and 100 000 writes limits.
const (
	batchDocs  = 1000
	batchBytes = 8 << 20
)

// RestoreStats is what a restore did.
type RestoreStats struct {
	// Collections were restored (views included), Documents inserted.
	Collections, Documents int
	// Duplicates were skipped: a document with their _id was there.
	Duplicates int
	// Replayed oplog entries were applied (--oplogReplay).
	Replayed int
}

// target is one namespace of the archive as the restore writes it.
type target struct {
	from, to archive.Namespace
	kind     string
	options  bson.D
	indexes  []bson.D
	// auth is "users" or "roles" for the namespaces of users and roles
	// (admin.system.users of a full dump, X.$admin.system.users of a
	// --dumpDbUsersAndRoles one), merged through the server rather than
	// inserted; authDB is X, or empty for every database.
	auth, authDB string
	// skip is read and checked but not restored: the schema version of
	// users and roles (the server's own), and the oplog unless replayed.
	skip bool
	// oplog is the namespace of a replica set dump's oplog entries.
	oplog bool
}

// authNamespace says what a namespace of users or roles holds.
func authNamespace(ns archive.Namespace) (kind, db string, schema bool) {
	coll, db := ns.Collection, ""
	if ns.Database == "admin" && strings.HasPrefix(coll, "system.") {
		coll = "$admin." + coll
	} else {
		db = ns.Database
	}
	switch coll {
	case "$admin.system.users":
		return "users", db, false
	case "$admin.system.roles":
		return "roles", db, false
	case "$admin.system.version":
		return "", db, true
	}
	return "", "", false
}

// parseMetadata reads a collection's metadata string, as mongodump
// writes it (Extended JSON, canonical or relaxed).
func parseMetadata(m archive.CollectionMetadata) (kind string, opts bson.D, indexes []bson.D, err error) {
	if strings.TrimSpace(m.Metadata) == "" {
		return "collection", nil, nil, nil
	}
	var md struct {
		Type    string   `bson:"type"`
		Options bson.D   `bson:"options"`
		Indexes []bson.D `bson:"indexes"`
	}
	if err := bson.UnmarshalExtJSON([]byte(m.Metadata), false, &md); err != nil {
		return "", nil, nil, fmt.Errorf("metadata of %s.%s: %w", m.Database, m.Collection, err)
	}
	if md.Type == "" {
		md.Type = "collection"
	}
	return md.Type, md.Options, md.Indexes, nil
}

// plan turns the archive's metadata into the namespaces to restore.
func plan(metas []archive.CollectionMetadata, args RestoreArgs) (map[archive.Namespace]*target, []*target, error) {
	byNS := map[archive.Namespace]*target{}
	var order []*target
	for _, m := range metas {
		from := archive.Namespace{Database: m.Database, Collection: m.Collection}
		if from == oplogNS {
			// An archive with an oplog came from a replica set (--oplog):
			// it is replayed unless the args restore part of it, as
			// Stash's restore of a replica set did.
			replay := args.OplogReplay || !args.Select.selective() && len(args.Rename) == 0
			byNS[from] = &target{from: from, skip: !replay, oplog: true}
			continue
		}
		auth, authDB, schema := authNamespace(from)
		if schema {
			byNS[from] = &target{from: from, skip: true}
			continue
		}
		if auth != "" {
			full := authDB == "" && args.Select.Chosen(m.Database, m.Collection)
			mine := authDB != "" && args.UsersAndRoles && args.Select.Database(authDB)
			if !full && !mine {
				byNS[from] = &target{from: from, skip: true}
				continue
			}
		} else if !args.Select.Chosen(m.Database, m.Collection) {
			continue
		}
		kind, opts, idx, err := parseMetadata(m)
		if err != nil {
			return nil, nil, err
		}
		to := from
		if auth == "" {
			db, coll, ok := strings.Cut(renamed(args.Rename, from.String()), ".")
			if !ok || db == "" || coll == "" {
				return nil, nil, fmt.Errorf("--nsTo makes %s into %q, which is not <database>.<collection>", from, db+"."+coll)
			}
			to = archive.Namespace{Database: db, Collection: coll}
		}
		t := &target{from: from, to: to, kind: kind, options: opts, indexes: idx, auth: auth, authDB: authDB}
		byNS[from] = t
		order = append(order, t)
	}
	return byNS, order, nil
}

// createOptions are the options of a collection's create command; what
// listCollections reports but create does not take is left out.
func createOptions(opts bson.D) bson.D {
	var out bson.D
	for _, e := range opts {
		switch e.Key {
		case "autoIndexId", "flags", "uuid":
		default:
			out = append(out, e)
		}
	}
	return out
}

// indexSpec is an index of the metadata as createIndexes takes it, and
// its name.
func indexSpec(ix bson.D) (bson.D, string) {
	var out bson.D
	name := ""
	for _, e := range ix {
		switch e.Key {
		case "ns", "v":
			// The namespace old servers listed is refused by new ones;
			// the index version is the restoring server's to choose,
			// as mongorestore leaves it.
			continue
		case "name":
			name, _ = e.Value.(string)
		}
		out = append(out, e)
	}
	return out, name
}

// restoreArchive restores what src holds into the server.
func restoreArchive(ctx context.Context, cli *mongo.Client, src io.Reader, args RestoreArgs, log *slog.Logger) (RestoreStats, error) {
	var st RestoreStats
	ar, err := archive.NewReader(src)
	if err != nil {
		return st, err
	}
	byNS, order, err := plan(ar.Metadata, args)
	if err != nil {
		return st, err
	}
	for _, t := range order {
		if t.kind == "view" || t.auth != "" {
			continue
		}
		if err := prepare(ctx, cli, t, args); err != nil {
			return st, err
		}
		st.Collections++
	}

	var mu sync.Mutex
	workers := args.Parallel * args.Workers
	if args.Ordered {
		workers = 1
	}
	type job struct {
		t    *target
		docs []any
		size int
	}
	jobs := make(chan job, workers)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			for j := range jobs {
				n, dup, err := insert(gctx, cli, j.t, j.docs, args)
				mu.Lock()
				st.Documents += n
				st.Duplicates += dup
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	auth := map[*target][]any{}
	pending := map[archive.Namespace]*job{}
	send := func(ns archive.Namespace) error {
		j := pending[ns]
		if j == nil || len(j.docs) == 0 {
			return nil
		}
		delete(pending, ns)
		select {
		case jobs <- *j:
			return nil
		case <-gctx.Done():
			return context.Cause(gctx)
		}
	}
	replaying, finished := false, false
	var finishErr error
	finishInserts := func() error {
		if finished {
			return finishErr
		}
		finished = true
		for ns := range pending {
			if err := send(ns); err != nil {
				finishErr = err
			}
		}
		close(jobs)
		if err := g.Wait(); err != nil && finishErr == nil {
			finishErr = err
		}
		return finishErr
	}
	read := func() error {
		for {
			ns, doc, ended, err := ar.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			t := byNS[ns]
			if t == nil {
				continue // not chosen
			}
			if ended {
				if err := send(ns); err != nil {
					return err
				}
				continue
			}
			if t.skip {
				continue
			}
			if t.oplog {
				if !replaying {
					// The oplog comes last: every document is in
					// before the first entry is applied.
					if err := finishInserts(); err != nil {
						return err
					}
					replaying = true
				}
				if skipReplay(doc) {
					continue
				}
				if err := replay(ctx, cli, doc, args.BypassValidation); err != nil {
					return err
				}
				st.Replayed++
				continue
			}
			if replaying {
				return fmt.Errorf("%w: documents of %s after the oplog, which comes last", archive.ErrFormat, ns)
			}
			if t.auth != "" {
				auth[t] = append(auth[t], doc)
				continue
			}
			j := pending[ns]
			if j == nil {
				j = &job{t: t}
				pending[ns] = j
			}
			j.docs = append(j.docs, doc)
			j.size += len(doc)
			if len(j.docs) >= batchDocs || j.size >= batchBytes {
				if err := send(ns); err != nil {
					return err
				}
			}
		}
	}
	rerr := read()
	if err := finishInserts(); err != nil {
		return st, err
	}
	if rerr != nil {
		return st, rerr
	}
	if args.OplogReplay && !replaying {
		return st, errors.New("--oplogReplay: the archive holds no oplog (it was not dumped with --oplog)")
	}
	// The archive was whole and every document is in: now the
	// indexes (built once over all the data, not kept up while it was
	// inserted), the views, and the users and roles.
	for _, t := range order {
		switch {
		case t.auth != "":
		case t.kind == "view":
			if err := createView(ctx, cli, t, args); err != nil {
				return st, err
			}
			st.Collections++
		case !args.NoIndexes:
			if err := createIndexes(ctx, cli, t); err != nil {
				return st, err
			}
		}
	}
	if len(auth) > 0 {
		if err := mergeAuth(ctx, cli, auth, args.Drop); err != nil {
			return st, err
		}
	}
	if st.Duplicates > 0 {
		log.Warn("documents already there were kept, not overwritten", "skipped", st.Duplicates)
	}
	return st, nil
}

// prepare drops t's collection when asked and creates it with its
// options when it is not there.
func prepare(ctx context.Context, cli *mongo.Client, t *target, args RestoreArgs) error {
	db := cli.Database(t.to.Database)
	if args.Drop {
		if err := db.Collection(t.to.Collection).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", t.to, err)
		}
	}
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: t.to.Collection}})
	if err != nil {
		return fmt.Errorf("look for %s: %w", t.to, err)
	}
	if len(names) > 0 {
		return nil
	}
	cmd := bson.D{{Key: "create", Value: t.to.Collection}}
	if !args.NoOptions {
		cmd = append(cmd, createOptions(t.options)...)
	}
	if err := db.RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("create %s: %w", t.to, err)
	}
	return nil
}

// insert writes docs into t's collection. A document whose _id is
// already there is skipped and counted, as mongorestore does, unless
// --stopOnError; any other refusal fails the restore, naming the
// document.
func insert(ctx context.Context, cli *mongo.Client, t *target, docs []any, args RestoreArgs) (inserted, dup int, err error) {
	o := options.InsertMany().SetOrdered(args.Ordered || args.StopOnError)
	if args.BypassValidation {
		o.SetBypassDocumentValidation(true)
	}
	res, err := cli.Database(t.to.Database).Collection(t.to.Collection).InsertMany(ctx, docs, o)
	if res != nil {
		inserted = len(res.InsertedIDs)
	}
	if err == nil {
		return len(docs), 0, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return inserted, 0, fmt.Errorf("insert into %s: %w", t.to, err)
	}
	for _, we := range bwe.WriteErrors {
		if we.Code == 11000 && !args.StopOnError {
			dup++
			continue
		}
		hint := ""
		if we.Code == 121 {
			// mongorestore skips such a document silently; a restore
			// that drops backed-up data must say so instead.
			hint = "; the collection's validator refuses it: restore with --bypassDocumentValidation"
		}
		id := "?"
		if we.Index >= 0 && we.Index < len(docs) {
			if raw, ok := docs[we.Index].(bson.Raw); ok {
				id = raw.Lookup("_id").String()
			}
		}
		return inserted, dup, fmt.Errorf("insert into %s: document _id %s: %s (code %d)%s", t.to, id, we.Message, we.Code, hint)
	}
	return len(docs) - dup, dup, nil
}

// createIndexes builds t's indexes, all in one command so that the
// server reads the collection once; the _id index is the collection's
// own.
func createIndexes(ctx context.Context, cli *mongo.Client, t *target) error {
	coll := cli.Database(t.to.Database).Collection(t.to.Collection)
	have := map[string]bool{"_id_": true}
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list the indexes of %s: %w", t.to, err)
	}
	for cur.Next(ctx) {
		if n, ok := cur.Current.Lookup("name").StringValueOK(); ok {
			have[n] = true
		}
	}
	cur.Close(ctx)
	var specs bson.A
	for _, ix := range t.indexes {
		spec, name := indexSpec(ix)
		if have[name] {
			// An index of that name is there (a restore into existing
			// data): it is kept as it is.
			continue
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return nil
	}
	cmd := bson.D{{Key: "createIndexes", Value: t.to.Collection}, {Key: "indexes", Value: specs}}
	if err := cli.Database(t.to.Database).RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("create the indexes of %s: %w", t.to, err)
	}
	return nil
}

// createView creates a view from its options (viewOn, pipeline,
// collation); with --drop an existing one is replaced.
func createView(ctx context.Context, cli *mongo.Client, t *target, args RestoreArgs) error {
	db := cli.Database(t.to.Database)
	if args.Drop {
		if err := db.Collection(t.to.Collection).Drop(ctx); err != nil {
			return fmt.Errorf("drop view %s: %w", t.to, err)
		}
	}
	cmd := append(bson.D{{Key: "create", Value: t.to.Collection}}, createOptions(t.options)...)
	if err := db.RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("create view %s: %w", t.to, err)
	}
	return nil
}

// mergeAuth restores users and roles as mongorestore does: into
// temporary collections of admin, merged by the server's
// _mergeAuthzCollections, which keeps their credentials as they were.
func mergeAuth(ctx context.Context, cli *mongo.Client, auth map[*target][]any, drop bool) error {
	admin := cli.Database("admin")
	db := ""
	for t := range auth {
		db = t.authDB
	}
	for _, name := range []string{"tempusers", "temproles"} {
		c := admin.Collection(name)
		if err := c.Drop(ctx); err != nil {
			return fmt.Errorf("users and roles: drop admin.%s: %w", name, err)
		}
		defer c.Drop(context.WithoutCancel(ctx))
	}
	for t, docs := range auth {
		name := "temp" + t.auth
		if _, err := admin.Collection(name).InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("users and roles: stage into admin.%s: %w", name, err)
		}
	}
	cmd := bson.D{{Key: "_mergeAuthzCollections", Value: 1},
		{Key: "tempUsersCollection", Value: "admin.tempusers"},
		{Key: "tempRolesCollection", Value: "admin.temproles"},
		{Key: "drop", Value: drop},
		{Key: "db", Value: db}}
	if err := admin.RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("users and roles: _mergeAuthzCollections: %w (restore without them: --nsExclude='admin.system.*')", err)
	}
	return nil
}
