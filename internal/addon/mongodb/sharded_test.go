package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

func TestParseTopology(t *testing.T) {
	for _, tt := range []struct {
		params string
		want   string
		err    string
	}{
		{"", "<nil>", ""},
		{`{"apiVersion":"appcatalog.appscode.com/v1alpha1","kind":"StashAddon"}`, "<nil>", ""},
		{`{"configServer":"cnfRepSet/cfg-0.cfg-pods.demo.svc:27017,cfg-1.cfg-pods.demo.svc:27017","replicaSets":{"host-10":"shard10/s10:27017","host-2":"shard2/s2-0:27018,s2-1","host-0":"shard0/s0:27017"}}`,
			"confighost cnfRepSet [cfg-0.cfg-pods.demo.svc:27017 cfg-1.cfg-pods.demo.svc:27017]; host-0 shard0 [s0:27017]; host-2 shard2 [s2-0:27018 s2-1:27017]; host-10 shard10 [s10:27017]", ""},
		{`{"replicaSets":{"host-0":"shard0/s0:27017"}}`, "", "replicaSets without configServer"},
		{`{"configServer":"cfg/c:1"}`, "", "configServer without replicaSets"},
		{`{"configServer":"c:1","replicaSets":{"host-0":"shard0/s0:27017"}}`, "", "spec.parameters.configServer"},
		{`{"configServer":"cfg/c:1","replicaSets":{"host-0":"shard0/s0:99999"}}`, "", "replicaSets.host-0"},
		{`{"configServer":"cfg/c:1","replicaSets":{"confighost":"shard0/s0:1"}}`, "", "cannot be a snapshot's host"},
		{`{"configServer":"cfg/c:1","replicaSets":{"host-0":"shard0/-evil:1"}}`, "", "is not host:port"},
		{`[1]`, "", "spec.parameters"},
	} {
		top, err := ParseTopology([]byte(tt.params))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.params, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.params, err)
			continue
		}
		got := "<nil>"
		if top != nil {
			var parts []string
			for _, c := range append([]Component{top.Config}, top.Shards...) {
				parts = append(parts, fmt.Sprintf("%s %s %v", c.Host, c.ReplicaSet, c.Seeds))
			}
			got = strings.Join(parts, "; ")
		}
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.params, got, tt.want)
		}
	}
}

// member is a MongoMember with a client of its FerretDB.
type member struct {
	*testserver.MongoMember
	cli *mongo.Client
}

func startMember(t *testing.T, set, state string) *member {
	m := &member{MongoMember: testserver.StartMongoMember(t, set, state)}
	var err error
	if m.cli, err = mongo.Connect(options.Client().ApplyURI(m.URI)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.cli.Disconnect(context.Background()) })
	return m
}

func (m *member) addr() string { return m.Addr() }

// TestShardedBackupAndRestore: a sharded cluster is backed up as Stash
// does it: the balancer stopped through mongos and started again, a
// secondary of the config servers and of each shard locked (a stale lock
// released first), dumped as its own snapshot (confighost, host-0,
// host-1) and unlocked; a shard that fails fails the backup naming its
// host while the others' snapshots are kept, and the balancer and every
// lock are still released. Each component restores into its primary.
func TestShardedBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	cfg, s0, s1 := startMember(t, "cnfRepSet", "SECONDARY"), startMember(t, "shard0", "SECONDARY"), startMember(t, "shard1", "SECONDARY")
	s0.SetLocked(true) // a lock an earlier backup left
	for i, m := range []*member{cfg, s0, s1} {
		db := "app"
		if m == cfg {
			db = "config"
		}
		var docs []any
		for j := range 100 * (i + 1) {
			docs = append(docs, bson.D{{Key: "_id", Value: j}, {Key: "shard", Value: i}})
		}
		if _, err := m.cli.Database(db).Collection("data").InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	var mongosCmds []string
	var mmu sync.Mutex
	record := func(name string) testserver.MongoHandler {
		return func(string, bson.Raw) (bson.D, error) {
			mmu.Lock()
			mongosCmds = append(mongosCmds, name)
			mmu.Unlock()
			return bson.D{}, nil
		}
	}
	mongos := testserver.StartMongoProxy(t, cfg.FerretDB, map[string]testserver.MongoHandler{"balancerStop": record("balancerStop"), "balancerStart": record("balancerStart")})
	params := fmt.Sprintf(`{"configServer":"cnfRepSet/%s","replicaSets":{"host-0":"shard0/%s","host-1":"shard1/%s"}}`, cfg.addr(), s0.addr(), s1.addr())
	top, err := ParseTopology([]byte(params))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Conn: &appbinding.Connection{Scheme: "mongodb", Host: mongos.Host, Port: mongos.Port, Query: map[string][]string{"directConnection": {"true"}}},
		Topology: top, MaxConcurrency: 2, DumpArgs: DumpArgs{Parallel: 2}, RestoreArgs: RestoreArgs{Parallel: 2, Workers: 1}}
	r := openRepo(t)
	w := dumpWriter(r)
	if err := (Driver{o}).Backup(ctx, w); err != nil {
		t.Fatal(err)
	}
	hosts := func(ts []repository.SnapshotStats) []string {
		var out []string
		for _, s := range ts {
			out = append(out, s.Host)
		}
		slices.Sort(out)
		return out
	}
	if got := hosts(w.(interface {
		Taken() []repository.SnapshotStats
	}).Taken()); !slices.Equal(got, []string{"confighost", "host-0", "host-1"}) {
		t.Fatalf("snapshots of %v", got)
	}
	if strings.Join(mongosCmds, " ") != "balancerStop balancerStart" {
		t.Errorf("mongos saw %v", mongosCmds)
	}
	for name, m := range map[string]*member{"config": cfg, "shard0": s0, "shard1": s1} {
		cmds := strings.Join(m.Proxy.Commands(), " ")
		want := "replSetGetStatus currentOp fsync fsyncUnlock"
		if m == s0 {
			want = "replSetGetStatus currentOp fsyncUnlock currentOp fsync fsyncUnlock"
		}
		if cmds != want || m.Locked() {
			t.Errorf("%s saw %q (locked %v), want %q", name, cmds, m.Locked(), want)
		}
	}

	// A shard that cannot be reached: the backup fails naming it, the
	// rest is kept, and nothing stays stopped or locked.
	s1.Fail(&testserver.CommandError{Code: 13, Msg: "not authorized"})
	mongosCmds = nil
	w2 := dumpWriter(r)
	err = (Driver{o}).Backup(ctx, w2)
	var he *addon.HostError
	if !errors.As(err, &he) || he.Host != "host-1" || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("a shard failing: %v, want a HostError of host-1", err)
	}
	if got := hosts(w2.(interface {
		Taken() []repository.SnapshotStats
	}).Taken()); !slices.Equal(got, []string{"confighost", "host-0"}) {
		t.Errorf("snapshots after one shard failed: %v", got)
	}
	if strings.Join(mongosCmds, " ") != "balancerStop balancerStart" || cfg.Locked() || s0.Locked() {
		t.Errorf("after a failure: mongos saw %v, locks %v %v", mongosCmds, cfg.Locked(), s0.Locked())
	}
	s1.Fail(nil)

	// Restore: each component's latest snapshot into its primary.
	for _, m := range []*member{cfg, s0, s1} {
		m.SetState("PRIMARY")
		for _, db := range []string{"app", "config"} {
			if err := m.cli.Database(db).Drop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]repository.Snapshot{}
	for _, s := range snaps {
		if cur, ok := latest[s.Host]; !ok || s.Time.After(cur.Time) {
			latest[s.Host] = s
		}
	}
	rd := &dump.Reader{R: r.Reader, Choose: func(_ context.Context, host, _ string) (repository.Snapshot, error) { return latest[host], nil }}
	if err := (Driver{o}).Restore(ctx, rd); err != nil {
		t.Fatal(err)
	}
	for i, m := range []*member{cfg, s0, s1} {
		db := "app"
		if m == cfg {
			db = "config"
		}
		n, err := m.cli.Database(db).Collection("data").CountDocuments(ctx, bson.D{})
		if err != nil || n != int64(100*(i+1)) {
			t.Errorf("member %d after the restore: %d documents (%v), want %d", i, n, err, 100*(i+1))
		}
	}
}

// TestReplicaSetReadsOneSecondary: an AppBinding naming a replica set
// (replicaSet= with its seeds) is dumped from one healthy secondary,
// connected to directly, so that the collections and the oplog come from
// one member. The member's replSetGetStatus is answered by a proxy (our
// reading of MongoDB); the data is FerretDB's.
func TestReplicaSetReadsOneSecondary(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { memberProbeTimeout = d }(memberProbeTimeout)
	memberProbeTimeout = time.Second // the first seed is down
	sec := startMember(t, "rs0", "SECONDARY")
	seed(t, sec.cli, "rs_app", 50)
	o := Options{Conn: &appbinding.Connection{Scheme: "mongodb", Host: "127.0.0.1", Port: 1, Seeds: []string{"127.0.0.1:1", sec.addr()},
		Query: map[string][]string{"replicaSet": {"rs0"}}}, DumpArgs: DumpArgs{Parallel: 2, Select: Selection{DB: "rs_app"}}}
	r := openRepo(t)
	w := dumpWriter(r)
	if err := (Driver{o}).Backup(ctx, w); err != nil {
		t.Fatal(err)
	}
	if cmds := sec.Proxy.Commands(); len(cmds) == 0 || cmds[0] != "replSetGetStatus" {
		t.Errorf("the member saw %v", cmds)
	}
	o.Conn.Query.Set("replicaSet", "other")
	if err := (Driver{o}).Backup(ctx, dumpWriter(r)); err == nil || !strings.Contains(err.Error(), `member of replica set "rs0", the AppBinding says "other"`) {
		t.Errorf("a seed of another set: %v", err)
	}
}
