package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stash-backup/stash/internal/addon/mongodb/archive"
)

// oplogNS is where a replica set's dump (--oplog) keeps the oplog
// entries written while it ran, as mongodump names it.
var oplogNS = archive.Namespace{Database: "", Collection: "oplog"}

// oplog is the replica set's operation log.
func oplog(cli *mongo.Client) *mongo.Collection {
	return cli.Database("local").Collection("oplog.rs")
}

// errNoOplog is a server without an oplog: not a replica set member.
var errNoOplog = errors.New("--oplog: the server has no oplog (local.oplog.rs): it is not a replica set member; remove --oplog")

// oplogTail is the timestamp of the newest oplog entry.
func oplogTail(ctx context.Context, cli *mongo.Client) (bson.Timestamp, error) {
	names, err := cli.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("--oplog: look for the oplog: %w", err)
	}
	if len(names) == 0 {
		return bson.Timestamp{}, errNoOplog
	}
	var last struct {
		TS bson.Timestamp `bson:"ts"`
	}
	err = oplog(cli).FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Decode(&last)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bson.Timestamp{}, nil
	}
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("--oplog: read the oplog's newest entry: %w", err)
	}
	return last.TS, nil
}

// dumpOplog hands segment the oplog entries from start (the newest entry
// before the dump began) to end (the newest after it ended), so that a
// replay brings every collection to the state of end: one point in time.
// The entry at start must still be there: if the oplog rolled past it
// during the dump, entries are missing and the dump is not consistent.
func dumpOplog(ctx context.Context, cli *mongo.Client, start, end bson.Timestamp, segment func([][]byte) error) error {
	filter := bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: start}, {Key: "$lte", Value: end}}}}
	if start.IsZero() {
		filter = bson.D{{Key: "ts", Value: bson.D{{Key: "$lte", Value: end}}}}
	}
	cur, err := oplog(cli).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		return fmt.Errorf("--oplog: read the oplog: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	first := func(entry bson.Raw) error {
		if t, i, ok := entry.Lookup("ts").TimestampOK(); !start.IsZero() && (!ok || t != start.T || i != start.I) {
			return errRolledOver
		}
		return nil
	}
	n, err := toSegments(ctx, cur, first, segment)
	if errors.Is(err, errRolledOver) {
		return err
	}
	if err != nil {
		return fmt.Errorf("--oplog: read the oplog: %w", err)
	}
	if n == 0 && !start.IsZero() {
		return errRolledOver
	}
	return nil
}

// errRolledOver is an oplog that dropped the entry a dump started from.
var errRolledOver = errors.New("--oplog: the oplog rolled over during the dump, losing entries written while it ran: make the oplog larger, or back up when the database is quieter")

// skipReplay says whether mongorestore leaves an oplog entry out of a
// replay: no-ops, and operations on the config database and on the
// server's own system collections.
func skipReplay(entry bson.Raw) bool {
	op, _ := entry.Lookup("op").StringValueOK()
	ns, _ := entry.Lookup("ns").StringValueOK()
	if op == "n" || op == "" {
		return true
	}
	db, coll, _ := strings.Cut(ns, ".")
	return db == "config" || db == "local" || strings.HasPrefix(coll, "system.") && coll != "system.js"
}

// replay applies one oplog entry as mongorestore --oplogReplay does: an
// applyOps of that entry alone, so that an error names it.
func replay(ctx context.Context, cli *mongo.Client, entry bson.Raw, bypassValidation bool) error {
	cmd := bson.D{{Key: "applyOps", Value: bson.A{entry}}}
	if bypassValidation {
		cmd = append(cmd, bson.E{Key: "bypassDocumentValidation", Value: true})
	}
	if err := cli.Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
		ts := entry.Lookup("ts").String()
		ns, _ := entry.Lookup("ns").StringValueOK()
		op, _ := entry.Lookup("op").StringValueOK()
		return fmt.Errorf("--oplogReplay: apply the entry of %s (op %s, ts %s): %w", ns, op, ts, err)
	}
	return nil
}
