package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/stash-backup/stash/internal/testserver"
)

// TestLocalRuntimeMongoDB: manifests in the form of Stash's MongoDB
// documentation (a KubeDB-style AppBinding with a service and its
// credentials Secret, SCRAM-authenticated, the
// mongodb-backup-* and mongodb-restore-* Tasks, namespace selection in
// the Task's args) back up and restore through the local runtime.
// FerretDB stands in for MongoDB, which cannot be had on this machine.
func TestLocalRuntimeMongoDB(t *testing.T) {
	srv := testserver.StartFerretDBAuth(t, "root", "mg-e2e-password")
	ctx := context.Background()
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI).SetAuth(options.Credential{Username: "root", Password: "mg-e2e-password", AuthSource: "admin"}))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect(ctx)
	var docs []any
	for i := range 3000 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("user-%d", i)}, {Key: "tags", Value: bson.A{"a", i}}})
	}
	if _, err := cli.Database("app").Collection("users").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Database("scratch").Collection("tmp").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: sample-mongodb-auth, namespace: demo}
stringData: {username: root, password: mg-e2e-password}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-mongodb, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig:
    service: {name: %s, port: %d, scheme: mongodb}
  secret: {name: sample-mongodb-auth}
---
%s---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-mongodb-backup, namespace: demo}
spec:
  schedule: "*/5 * * * *"
  task:
    name: mongodb-backup-6.0.5
    params: [{name: args, value: "--db=app"}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-mongodb}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: sample-mongodb-restore, namespace: demo}
spec:
  task: {name: mongodb-restore-6.0.5}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-mongodb}
    rules: [{snapshots: [latest]}]
`, srv.Host, srv.Port, localRepository("repo", filepath.Join(dir, "backups"))))
	state := t.TempDir()
	mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "sample-mongodb-backup")
	for _, db := range []string{"app", "scratch"} {
		if err := cli.Database(db).Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "sample-mongodb-restore")
	n, err := cli.Database("app").Collection("users").CountDocuments(ctx, bson.D{})
	if err != nil || n != 3000 {
		t.Errorf("restored documents: %d (%v), want 3000", n, err)
	}
	var one bson.M
	if err := cli.Database("app").Collection("users").FindOne(ctx, bson.D{{Key: "_id", Value: 42}}).Decode(&one); err != nil || one["name"] != "user-42" {
		t.Errorf("document 42: %v (%v)", one, err)
	}
	r := mustRun(t, nil, "local", "sessions", "--state-dir", state)
	if !strings.Contains(r.stdout, "sample-mongodb-backup") || !strings.Contains(r.stdout, "host-0") {
		t.Errorf("sessions table:\n%s", r.stdout)
	}
	// --db=app left the other database out of the archive.
	if names, err := cli.ListDatabaseNames(ctx, bson.D{}); err != nil || strings.Contains(strings.Join(names, " "), "scratch") {
		t.Errorf("databases after the restore: %v (%v); scratch was not in --db=app", names, err)
	}
}

// mongoDocs inserts n documents into db.users of the server at uri.
func mongoDocs(t *testing.T, cli *mongo.Client, db string, n int) {
	t.Helper()
	var docs []any
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("user-%d", i)}})
	}
	if _, err := cli.Database(db).Collection("users").InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
}

func mongoClient(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	cli, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Disconnect(context.Background()) })
	return cli
}

const mongoRepo = `%s---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: mg-backup, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: mongodb-backup-6.0.5}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: mg-restore, namespace: demo}
spec:
  task: {name: mongodb-restore-6.0.5}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg}
`

// TestLocalRuntimeMongoDBReplicaSetAndSharded: manifests in the form of
// Stash's replica-set and sharded MongoDB examples run through the local
// runtime. Each member is a FerretDB behind a proxy that answers the
// replica-set, fsyncLock, balancer and applyOps commands FerretDB lacks,
// as MongoDB documents them (testserver.MongoMember): this checks our
// reading of MongoDB's procedures, end to end through the binary.
func TestLocalRuntimeMongoDBReplicaSetAndSharded(t *testing.T) {
	ctx := context.Background()
	t.Run("replica set", func(t *testing.T) {
		m := testserver.StartMongoMember(t, "rs0", "SECONDARY")
		cli := mongoClient(t, m.URI)
		if err := cli.Database("local").RunCommand(ctx, bson.D{{Key: "create", Value: "oplog.rs"}, {Key: "capped", Value: true}, {Key: "size", Value: int64(16 << 20)}}).Err(); err != nil {
			t.Fatal(err)
		}
		mongoDocs(t, cli, "app", 1000)
		dir := t.TempDir()
		writeManifest(t, dir, fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: mg, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig: {url: "mongodb://%s/?replicaSet=rs0"}
---
`+mongoRepo, m.Addr(), localRepository("repo", filepath.Join(dir, "backups"))))
		state := t.TempDir()
		mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "mg-backup")
		if err := cli.Database("app").Drop(ctx); err != nil {
			t.Fatal(err)
		}
		m.SetState("PRIMARY")
		mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "mg-restore")
		if n, err := cli.Database("app").Collection("users").CountDocuments(ctx, bson.D{}); err != nil || n != 1000 {
			t.Errorf("restored %d documents (%v), want 1000", n, err)
		}
		// The dump was a point in time: its oplog was replayed.
		if cmds := strings.Join(m.Proxy.Commands(), " "); !strings.Contains(cmds, "replSetGetStatus") || !strings.Contains(cmds, "applyOps") {
			t.Errorf("the member saw %s, want the set's status asked and the oplog replayed", cmds)
		}
	})
	t.Run("sharded", func(t *testing.T) {
		cfg := testserver.StartMongoMember(t, "cnfRepSet", "SECONDARY")
		shards := []*testserver.MongoMember{testserver.StartMongoMember(t, "shard0", "SECONDARY"), testserver.StartMongoMember(t, "shard1", "SECONDARY")}
		var balancer []string
		rec := func(name string) testserver.MongoHandler {
			return func(string, bson.Raw) (bson.D, error) { balancer = append(balancer, name); return bson.D{}, nil }
		}
		mongos := testserver.StartMongoProxy(t, cfg.FerretDB, map[string]testserver.MongoHandler{"balancerStop": rec("balancerStop"), "balancerStart": rec("balancerStart")})
		for i, s := range shards {
			mongoDocs(t, mongoClient(t, s.URI), "app", 100*(i+1))
		}
		dir := t.TempDir()
		writeManifest(t, dir, fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: mg, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig: {url: "mongodb://%s:%d/?directConnection=true"}
  parameters:
    apiVersion: config.kubedb.com/v1alpha1
    kind: MongoConfiguration
    configServer: cnfRepSet/%s
    replicaSets:
      host-0: shard0/%s
      host-1: shard1/%s
---
`+mongoRepo, mongos.Host, mongos.Port, cfg.Addr(), shards[0].Addr(), shards[1].Addr(), localRepository("repo", filepath.Join(dir, "backups"))))
		state := t.TempDir()
		mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "mg-backup")
		if strings.Join(balancer, " ") != "balancerStop balancerStart" {
			t.Errorf("mongos saw %v", balancer)
		}
		r := mustRun(t, nil, "local", "sessions", "--state-dir", state)
		for _, h := range []string{"confighost", "host-0", "host-1"} {
			if !strings.Contains(r.stdout, h) {
				t.Errorf("sessions table lacks %s:\n%s", h, r.stdout)
			}
		}
		for _, s := range append(shards, cfg) {
			s.SetState("PRIMARY")
			if err := mongoClient(t, s.URI).Database("app").Drop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "mg-restore")
		for i, s := range shards {
			if n, err := mongoClient(t, s.URI).Database("app").Collection("users").CountDocuments(ctx, bson.D{}); err != nil || n != int64(100*(i+1)) {
				t.Errorf("shard %d restored %d documents (%v), want %d", i, n, err, 100*(i+1))
			}
		}
	})
}
