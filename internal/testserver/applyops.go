package testserver

import (
	"context"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ApplyOps answers MongoDB's applyOps on FerretDB, which lacks it, with
// the writes each entry stands for as MongoDB documents them: an insert
// upserts (applyOps' alwaysUpsert), an update applies its $set/$unset
// form to the document o2 names (or replaces it), a delete removes it, a
// command runs. backend is a client of the FerretDB behind the proxy.
// Tests against it check our own reading of MongoDB.
func ApplyOps(backend *mongo.Client) MongoHandler {
	return func(db string, cmd bson.Raw) (bson.D, error) {
		ctx := context.Background()
		ops, ok := cmd.Lookup("applyOps").ArrayOK()
		if !ok {
			return nil, &CommandError{Code: 14, Msg: "applyOps must be an array"}
		}
		vals, err := ops.Values()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			e, ok := v.DocumentOK()
			if !ok {
				return nil, &CommandError{Code: 14, Msg: "applyOps entries must be documents"}
			}
			if err := applyOne(ctx, backend, e); err != nil {
				return nil, err
			}
		}
		return bson.D{{Key: "applied", Value: int32(len(vals))}}, nil
	}
}

func applyOne(ctx context.Context, backend *mongo.Client, e bson.Raw) error {
	op, _ := e.Lookup("op").StringValueOK()
	ns, _ := e.Lookup("ns").StringValueOK()
	dbName, coll, _ := strings.Cut(ns, ".")
	c := backend.Database(dbName).Collection(coll)
	o, _ := e.Lookup("o").DocumentOK()
	switch op {
	case "i":
		_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: o.Lookup("_id")}}, o, options.Replace().SetUpsert(true))
		return err
	case "u":
		filter, _ := e.Lookup("o2").DocumentOK()
		els, err := o.Elements()
		if err != nil {
			return err
		}
		var upd bson.D
		for _, el := range els {
			k := el.Key()
			if k == "$v" || !strings.HasPrefix(k, "$") {
				continue
			}
			fs, err := el.Value().Document().Elements()
			if err != nil {
				return err
			}
			var fields bson.D
			for _, f := range fs {
				if f.Key() != "_id" {
					fields = append(fields, bson.E{Key: f.Key(), Value: f.Value()})
				}
			}
			if len(fields) > 0 {
				upd = append(upd, bson.E{Key: k, Value: fields})
			}
		}
		if upd == nil {
			_, err = c.ReplaceOne(ctx, filter, o)
		} else {
			_, err = c.UpdateOne(ctx, filter, upd)
		}
		return err
	case "d":
		_, err := c.DeleteOne(ctx, o)
		return err
	case "c":
		return backend.Database(dbName).RunCommand(ctx, o).Err()
	case "n":
		return nil
	}
	return &CommandError{Code: 14, Msg: "unknown op " + op}
}
