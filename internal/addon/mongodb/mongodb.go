// Package mongodb backs up MongoDB natively, with the official Go
// driver: a dump is written in mongodump's archive format (package
// archive) straight into the repository, so that MongoDB's own
// `mongorestore --archive` restores it, and a restore reads archives
// that `mongodump --archive` wrote, as Stash's backups hold them. No
// mongodump or mongorestore binary is needed.
package mongodb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
)

// DumpFile is the name an archive is stored under, as in Stash.
const DumpFile = "dump"

// DefaultPort is MongoDB's.
const DefaultPort = 27017

// Secret keys of a MongoDB AppBinding's Secret.
var (
	UserKeys     = []string{"username", "MONGO_INITDB_ROOT_USERNAME"}
	PasswordKeys = []string{"password", "MONGO_INITDB_ROOT_PASSWORD"}
)

// Options describe the server and what to do.
type Options struct {
	Conn *appbinding.Connection
	// AuthDatabase is where the user is defined (--authentication-database).
	AuthDatabase string
	// Topology, when set, is the sharded cluster the AppBinding's
	// parameters describe; Conn is then its mongos.
	Topology *Topology
	// MaxConcurrency bounds the cluster's components worked on at once
	// (--max-concurrency).
	MaxConcurrency int
	// DumpArgs and RestoreArgs are the parsed --mongo-args of a backup
	// or a restore.
	DumpArgs    DumpArgs
	RestoreArgs RestoreArgs
}

// Driver is MongoDB as the step engine drives it.
type Driver struct{ Options }

// uri is the connection string without credentials, which go to the
// driver as a Credential and so never into a URI that an error could
// quote.
func (o *Options) uri() string {
	c := o.Conn
	hosts := c.Address()
	if len(c.Seeds) > 0 {
		hosts = strings.Join(c.Seeds, ",")
	}
	scheme := "mongodb"
	if c.Scheme == "mongodb+srv" {
		// A DNS SRV name carries no port: the records give them.
		scheme, hosts = "mongodb+srv", c.Host
	}
	return scheme + "://" + hosts + "/?" + c.Query.Encode()
}

// tlsConfig is the AppBinding's TLS: its CA bundle, the client
// certificate of spec.tlsSecret, and insecureSkipTLSVerify. It is nil
// when the AppBinding has none of them and its URL asks for no TLS.
func (o *Options) tlsConfig() (*tls.Config, error) {
	c := o.Conn
	want := len(c.CABundle) > 0 || len(c.ClientCert) > 0 || c.InsecureSkipTLSVerify
	for _, k := range []string{"tls", "ssl"} {
		if v := c.Query.Get(k); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("AppBinding query %s=%q: give true or false", k, v)
			}
			want = want || on
		}
	}
	if !want {
		return nil, nil
	}
	return c.ClientTLS()
}

// connect opens a client of the AppBinding's server. readPref, when not
// empty, is a read preference mode.
func (o *Options) connect(ctx context.Context, readPref string) (*mongo.Client, error) {
	co := options.Client().ApplyURI(o.uri()).SetAppName("stash").SetServerSelectionTimeout(30 * time.Second)
	if o.Conn.Scheme == "mongodb+srv" && o.Conn.Port != DefaultPort && o.Conn.Port != 0 {
		return nil, errors.New("a mongodb+srv AppBinding names no port: remove it")
	}
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		co.SetTLSConfig(cfg)
	}
	if o.Conn.Username != "" {
		src := o.AuthDatabase
		if src == "" {
			src = "admin"
		}
		co.SetAuth(options.Credential{Username: o.Conn.Username, Password: o.Conn.Password, AuthSource: src})
	}
	if readPref != "" {
		rp, err := readPreference(readPref)
		if err != nil {
			return nil, err
		}
		co.SetReadPreference(rp)
	}
	if err := co.Validate(); err != nil {
		return nil, fmt.Errorf("MongoDB connection options: %w", err)
	}
	cli, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB at %s: %w", o.Conn.Address(), err)
	}
	return cli, nil
}

// ping checks that the server answers, as the user the AppBinding names.
func ping(ctx context.Context, cli *mongo.Client) error {
	return cli.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
}

// Wait implements addon.Driver: it returns once the server answers a
// ping, or an error after timeout.
func (d Driver) Wait(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if rs := d.replicaSet(); rs != nil && d.Topology == nil {
		// A replica set is up once a member reports a healthy primary
		// or secondary; the driver's own discovery would wait for a
		// primary the set may not have yet.
		if err := poll(ctx, func() error { _, err := d.pickMember(ctx, *rs, false); return err }); err != nil {
			return fmt.Errorf("replica set %s did not answer within %s: %w", rs.ReplicaSet, timeout, err)
		}
		return nil
	}
	cli, err := d.connect(ctx, "")
	if err != nil {
		return err
	}
	defer cli.Disconnect(context.WithoutCancel(ctx))
	err = poll(ctx, func() error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return ping(pctx, cli)
	})
	if err != nil {
		return fmt.Errorf("MongoDB at %s did not answer within %s: %w", d.Conn.Address(), timeout, err)
	}
	return nil
}

// poll calls try every second until it succeeds, and returns its last
// error once ctx is done.
func poll(ctx context.Context, try func() error) error {
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

func readPreference(mode string) (*readpref.ReadPref, error) {
	m, err := readpref.ModeFromString(mode)
	if err != nil {
		return nil, fmt.Errorf("--readPreference %q: give primary, primaryPreferred, secondary, secondaryPreferred or nearest", mode)
	}
	return readpref.New(m)
}

// Backup implements addon.Driver: one archive of the chosen namespaces,
// streamed into the repository as it is read and committed only when
// every collection was read to its end.
func (d Driver) Backup(ctx context.Context, w addon.Writer) error {
	if d.Topology != nil {
		return d.backupSharded(ctx, w, d.Topology)
	}
	rs := d.replicaSet()
	if rs != nil && !d.DumpArgs.Select.selective() {
		// As Stash's mongodump of a replica set: a point in time, unless
		// the args dump part of the data.
		d.DumpArgs.Oplog = true
	}
	if rs != nil && d.DumpArgs.ReadPreference == "" {
		// A replica set is dumped from one healthy secondary (else the
		// primary), connected to directly: every collection and the
		// oplog are then read from the same member, one point in time.
		mo, err := d.onMember(ctx, *rs, false)
		if err != nil {
			return &dump.NoOutputError{Err: err}
		}
		slog.Info("dumping the replica set from one member", "replicaSet", rs.ReplicaSet, "member", mo.Conn.Address())
		d = Driver{mo}
	}
	cli, err := d.connect(ctx, d.DumpArgs.ReadPreference)
	if err != nil {
		return err
	}
	defer cli.Disconnect(context.WithoutCancel(ctx))
	if err := ping(ctx, cli); err != nil {
		// Nothing read yet: the engine waits for the server and tries
		// again, as it does for a dump tool that could not connect.
		return &dump.NoOutputError{Err: fmt.Errorf("MongoDB at %s: %w", d.Conn.Address(), err)}
	}
	// A point in time (--oplog): where the oplog stands before the first
	// collection is read; the entries from there to the dump's end are
	// replayed on restore.
	var start *bson.Timestamp
	if d.DumpArgs.Oplog {
		ts, err := oplogTail(ctx, cli)
		if err != nil {
			return err
		}
		start = &ts
	}
	colls, err := survey(ctx, cli, d.DumpArgs)
	if err != nil {
		return err
	}
	version := serverVersion(ctx, cli)
	return w.Stream(ctx, "", DumpFile, func(ctx context.Context, out io.Writer) error {
		return writeArchive(ctx, cli, colls, version, d.DumpArgs, start, out)
	})
}

// Restore implements addon.Driver: the archive is read as it comes out
// of the repository and its documents inserted in parallel bulk writes;
// indexes are built once the data is in.
func (d Driver) Restore(ctx context.Context, r addon.Reader) error {
	if d.Topology != nil {
		return d.restoreSharded(ctx, r, d.Topology)
	}
	if rs := d.replicaSet(); rs != nil {
		// Writes go to the primary, asked for by name and connected to
		// directly.
		mo, err := d.onMember(ctx, *rs, true)
		if err != nil {
			return err
		}
		d = Driver{mo}
	}
	return d.restoreFrom(ctx, r, "")
}

// restoreFrom restores the archive of host's snapshot (empty: the one
// the step's --snapshot and --source-hostname choose).
func (d Driver) restoreFrom(ctx context.Context, r addon.Reader, host string) error {
	cli, err := d.connect(ctx, "")
	if err != nil {
		return err
	}
	defer cli.Disconnect(context.WithoutCancel(ctx))
	src, wait := dump.PipeFrom(func(w io.Writer) error { return r.Stream(ctx, host, DumpFile, w) })
	st, err := restoreArchive(ctx, cli, src, d.RestoreArgs, slog.Default())
	// A restore that stopped early stops the stream too.
	if serr := wait(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	slog.Info("restored", "host", host, "collections", st.Collections, "documents", st.Documents, "duplicatesKept", st.Duplicates, "oplogReplayed", st.Replayed)
	return nil
}

// replicaSet is the replica set the AppBinding names (a replicaSet query
// parameter, with its seed list or its one address), or nil.
func (o Options) replicaSet() *Component {
	name := o.Conn.Query.Get("replicaSet")
	if name == "" || o.Conn.Scheme == "mongodb+srv" {
		return nil
	}
	seeds := o.Conn.Seeds
	if len(seeds) == 0 {
		seeds = []string{o.Conn.Address()}
	}
	return &Component{Host: "host-0", ReplicaSet: name, Seeds: seeds}
}
