package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
)

// admin runs a command on the admin database.
func admin(ctx context.Context, cli *mongo.Client, cmd bson.D) (bson.Raw, error) {
	return cli.Database("admin").RunCommand(ctx, cmd).Raw()
}

// member returns options that connect to one member directly, with the
// AppBinding's credentials and TLS.
func (o Options) member(addr string) (Options, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return o, fmt.Errorf("member %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return o, fmt.Errorf("member %q: bad port", addr)
	}
	c := *o.Conn
	c.Scheme, c.Host, c.Port, c.Seeds = "mongodb", host, p, nil
	c.Query = url.Values{}
	for k, v := range o.Conn.Query {
		if k != "replicaSet" && k != "directConnection" {
			c.Query[k] = v
		}
	}
	c.Query.Set("directConnection", "true")
	o.Conn = &c
	return o, nil
}

// memberProbeTimeout bounds how long one member may take to answer
// replSetGetStatus before the next one is asked.
var memberProbeTimeout = 15 * time.Second

// pickMember asks the component's members, in turn, for the replica
// set's status, and returns a healthy secondary, else the primary when
// primary is false; with primary true, the primary.
func (o Options) pickMember(ctx context.Context, c Component, primary bool) (string, error) {
	var errs []error
	for _, seed := range c.Seeds {
		mo, err := o.member(seed)
		if err != nil {
			return "", err
		}
		cli, err := mo.connect(ctx, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st struct {
			Set     string `bson:"set"`
			Members []struct {
				Name     string  `bson:"name"`
				StateStr string  `bson:"stateStr"`
				Health   float64 `bson:"health"`
			} `bson:"members"`
		}
		sctx, cancel := context.WithTimeout(ctx, memberProbeTimeout)
		err = cli.Database("admin").RunCommand(sctx, bson.D{{Key: "replSetGetStatus", Value: 1}}).Decode(&st)
		cancel()
		cli.Disconnect(context.WithoutCancel(ctx))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: replSetGetStatus: %w", seed, err))
			continue
		}
		if st.Set != c.ReplicaSet {
			return "", fmt.Errorf("%s is a member of replica set %q, the AppBinding says %q", seed, st.Set, c.ReplicaSet)
		}
		var prim string
		for _, m := range st.Members {
			if m.Health != 1 {
				continue
			}
			switch m.StateStr {
			case "SECONDARY":
				if !primary {
					return m.Name, nil
				}
			case "PRIMARY":
				prim = m.Name
			}
		}
		if prim != "" {
			return prim, nil
		}
		return "", fmt.Errorf("replica set %s has no healthy primary or secondary", c.ReplicaSet)
	}
	return "", fmt.Errorf("replica set %s: no member answered: %w", c.ReplicaSet, errors.Join(errs...))
}

// lock makes the member's data still for a dump: a lock left by an
// earlier backup that died is released first (currentOp says fsyncLock),
// then fsync with lock. unlock undoes it, even when ctx is done.
func lock(ctx context.Context, cli *mongo.Client) (unlock func() error, err error) {
	for range 10 {
		op, err := admin(ctx, cli, bson.D{{Key: "currentOp", Value: 1}})
		if err != nil {
			return nil, fmt.Errorf("currentOp: %w", err)
		}
		if locked, _ := op.Lookup("fsyncLock").BooleanOK(); !locked {
			break
		}
		slog.Warn("releasing a stale fsyncLock, left by an earlier backup")
		if _, err := admin(ctx, cli, bson.D{{Key: "fsyncUnlock", Value: 1}}); err != nil {
			return nil, fmt.Errorf("release a stale fsyncLock: %w", err)
		}
	}
	if _, err := admin(ctx, cli, bson.D{{Key: "fsync", Value: 1}, {Key: "lock", Value: true}}); err != nil {
		return nil, fmt.Errorf("fsyncLock: %w", err)
	}
	return func() error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := admin(uctx, cli, bson.D{{Key: "fsyncUnlock", Value: 1}}); err != nil {
			return fmt.Errorf("fsyncUnlock: %w", err)
		}
		return nil
	}, nil
}

// maxConcurrency bounds the components worked on at once.
func (o Options) maxConcurrency() int {
	if o.MaxConcurrency < 1 {
		return 3
	}
	return o.MaxConcurrency
}

// onMember returns options connected directly to the member of c that
// pickMember chooses.
func (o Options) onMember(ctx context.Context, c Component, primary bool) (Options, error) {
	addr, err := o.pickMember(ctx, c, primary)
	if err != nil {
		return o, err
	}
	return o.member(addr)
}

// eachComponent runs do on the cluster's components, up to
// --max-concurrency at once, and returns the failures as joined
// addon.HostErrors: one component failing leaves the others' work done.
func (o Options) eachComponent(t *Topology, do func(Component) error) error {
	var g errgroup.Group
	g.SetLimit(o.maxConcurrency())
	var mu sync.Mutex
	var errs []error
	for _, c := range t.Components() {
		g.Go(func() error {
			if err := do(c); err != nil {
				mu.Lock()
				errs = append(errs, &addon.HostError{Host: c.Host, Err: err})
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // every error is in errs
	return errors.Join(errs...)
}

// backupSharded backs up a sharded cluster as Stash does: the balancer
// stopped through mongos (the AppBinding's own address) and started again
// whatever happens; on the config servers and on each shard, a secondary
// (else the primary) locked with fsyncLock, dumped as a snapshot of its
// own (hosts confighost and the shards' keys) and unlocked; up to
// --max-concurrency components at once. A component that fails fails the
// step with an addon.HostError; the others' snapshots still count.
func (d Driver) backupSharded(ctx context.Context, w addon.Writer, t *Topology) (err error) {
	mongos, err := d.connect(ctx, "")
	if err != nil {
		return err
	}
	defer mongos.Disconnect(context.WithoutCancel(ctx))
	if err := ping(ctx, mongos); err != nil {
		return &dump.NoOutputError{Err: fmt.Errorf("mongos at %s: %w", d.Conn.Address(), err)}
	}
	if _, err := admin(ctx, mongos, bson.D{{Key: "balancerStop", Value: 1}}); err != nil {
		return fmt.Errorf("stop the balancer through mongos: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, serr := admin(sctx, mongos, bson.D{{Key: "balancerStart", Value: 1}}); serr != nil {
			err = errors.Join(err, fmt.Errorf("start the balancer again through mongos: %w", serr))
		}
	}()
	return d.eachComponent(t, func(c Component) error { return d.backupComponent(ctx, w, c) })
}

// backupComponent dumps one replica set of the cluster from a locked
// member.
func (d Driver) backupComponent(ctx context.Context, w addon.Writer, c Component) (err error) {
	mo, err := d.onMember(ctx, c, false)
	if err != nil {
		return err
	}
	addr := mo.Conn.Address()
	cli, err := mo.connect(ctx, "")
	if err != nil {
		return err
	}
	defer cli.Disconnect(context.WithoutCancel(ctx))
	unlock, err := lock(ctx, cli)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", addr, uerr))
		}
	}()
	args := d.DumpArgs
	args.Oplog = false // a locked member writes nothing: it is one point in time
	args.withConfig = c.Host == ConfigHost
	colls, err := survey(ctx, cli, args)
	if err != nil {
		return err
	}
	version := serverVersion(ctx, cli)
	return w.Stream(ctx, c.Host, DumpFile, func(ctx context.Context, out io.Writer) error {
		return writeArchive(ctx, cli, colls, version, args, nil, out)
	})
}

// restoreSharded restores each component's snapshot into its replica
// set's primary, up to --max-concurrency at once.
func (d Driver) restoreSharded(ctx context.Context, r addon.Reader, t *Topology) error {
	return d.eachComponent(t, func(c Component) error {
		mo, err := d.onMember(ctx, c, true)
		if err != nil {
			return err
		}
		return Driver{mo}.restoreFrom(ctx, r, c.Host)
	})
}

// Hosts implements addon.MultiHost: a sharded cluster's components, or
// none (the step's own host).
func (d Driver) Hosts() []string {
	if d.Topology == nil {
		return nil
	}
	return d.Topology.Hosts()
}
