package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/testserver"
)

// mongodb runs the MongoDB addon through the operator: a FerretDB pod
// (no MongoDB image can be had here) behind a Service, a KubeDB-style
// AppBinding in the service form, Stash's mongodb-backup-6.0.5 Task with
// --db in its args, a backup Job on the stash-mongodb image, data loss,
// and a RestoreSession with mongodb-restore-6.0.5.
func (e *env) mongodb(t *testing.T) {
	e.t = t
	ctx := context.Background()
	e.kubectlApply(`apiVersion: v1
kind: Service
metadata: {name: mongo, namespace: demo}
spec:
  selector: {app: mongo}
  ports: [{port: 27017}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mongo, namespace: demo}
spec:
  serviceName: mongo
  replicas: 1
  selector: {matchLabels: {app: mongo}}
  template:
    metadata: {labels: {app: mongo}}
    spec:
      securityContext: {runAsUser: 65534, runAsGroup: 65534, fsGroup: 65534}
      containers:
      - name: ferretdb
        image: localhost/ferretdb:e2e
        imagePullPolicy: Never
        args: [--handler=sqlite, --sqlite-url=file:/data/, --state-dir=/data, --listen-addr=0.0.0.0:27017, --debug-addr=127.0.0.1:8088, --telemetry=disable]
        readinessProbe:
          tcpSocket: {port: 27017}
          periodSeconds: 2
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
`)
	out, err := e.run("", e.kubectl, "rollout", "status", "-n", "demo", "statefulset/mongo", "--timeout=180s")
	if err != nil {
		e.debug()
		t.Fatalf("ferretdb: %v\n%s", err, out)
	}
	svc := &corev1.Service{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "mongo"}, svc); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "mongo-0"}, pod); err != nil {
		t.Fatal(err)
	}
	// The test reaches the pod directly (the node routes to its pods);
	// the steps reach it through the Service.
	cli, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://%s:27017/?directConnection=true", pod.Status.PodIP)).SetServerSelectionTimeout(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Disconnect(ctx)
	var docs []any
	for i := range 2000 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprintf("user-%d", i)}, {Key: "n", Value: int64(i) * 7}})
	}
	users := cli.Database("app").Collection("users")
	if _, err := users.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Database("other").Collection("x").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	// No DNS add-on: the Service's name is its ClusterIP.
	e.kubectlApply(fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-mongodb, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig:
    service: {name: %s, port: 27017, scheme: mongodb}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-mongodb-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task:
    name: mongodb-backup-6.0.5
    params: [{name: args, value: "--db=app"}]
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-mongodb}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
`, svc.Spec.ClusterIP))
	e.waitBCReady("sample-mongodb-backup")
	bs := e.trigger("sample-mongodb-backup", stashv1beta1.BackupSessionSucceeded)
	hs := bs.Status.Targets[0].Stats
	if len(hs) != 1 || hs[0].Hostname != "host-0" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Path != "dump" {
		t.Fatalf("host stats %+v", hs)
	}
	for _, db := range []string{"app", "other"} {
		if err := cli.Database(db).Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: sample-mongodb-restore, namespace: demo}
spec:
  task: {name: mongodb-restore-6.0.5}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-mongodb}
    rules: [{snapshots: [latest], sourceHost: host-0}]
`)
	e.waitRestore("sample-mongodb-restore")
	n, err := users.CountDocuments(ctx, bson.D{})
	if err != nil || n != 2000 {
		t.Errorf("restored documents: %d (%v), want 2000", n, err)
	}
	var one bson.M
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: 1999}}).Decode(&one); err != nil || one["n"] != int64(1999*7) {
		t.Errorf("document 1999: %v (%v)", one, err)
	}
	if names, _ := cli.ListDatabaseNames(ctx, bson.D{}); len(names) != 1 {
		t.Errorf("databases after the restore %v: only app was in --db=app", names)
	}
}

// mongodbTopologies runs Stash-shaped replica-set and sharded MongoDB
// manifests through the operator. The members are FerretDB servers on
// this machine behind proxies on the node's address (the pods reach it,
// as they reach MinIO) that answer replSetGetStatus, fsyncLock, the
// balancer and applyOps as MongoDB documents them
// (testserver.MongoMember): our reading of MongoDB, end to end through
// the operator's Jobs.
func (e *env) mongodbTopologies(t *testing.T) {
	e.t = t
	ctx := context.Background()
	ip := e.nodeIP()
	mcli := func(uri string) *mongo.Client {
		cli, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Disconnect(ctx) })
		return cli
	}
	docs := func(cli *mongo.Client, n int) {
		var d []any
		for i := range n {
			d = append(d, bson.D{{Key: "_id", Value: i}})
		}
		if _, err := cli.Database("app").Collection("users").InsertMany(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	count := func(cli *mongo.Client) int64 {
		n, err := cli.Database("app").Collection("users").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	rs := testserver.StartMongoMemberOn(t, ip, "rs0", "SECONDARY")
	rsCli := mcli(rs.URI)
	if err := rsCli.Database("local").RunCommand(ctx, bson.D{{Key: "create", Value: "oplog.rs"}, {Key: "capped", Value: true}, {Key: "size", Value: int64(16 << 20)}}).Err(); err != nil {
		t.Fatal(err)
	}
	docs(rsCli, 500)
	cfg := testserver.StartMongoMemberOn(t, ip, "cnfRepSet", "SECONDARY")
	shards := []*testserver.MongoMember{testserver.StartMongoMemberOn(t, ip, "shard0", "SECONDARY"), testserver.StartMongoMemberOn(t, ip, "shard1", "SECONDARY")}
	ok := func(string, bson.Raw) (bson.D, error) { return bson.D{}, nil }
	mongos := testserver.StartMongoProxyOn(t, ip, cfg.FerretDB, map[string]testserver.MongoHandler{"balancerStop": ok, "balancerStart": ok})
	for i, s := range shards {
		docs(mcli(s.URI), 100*(i+1))
	}
	// A repository each, as Stash's docs give every database: both
	// clusters have a host-0.
	base := e.repository("s3-repo")
	for _, name := range []string{"mg-rs", "mg-sh"} {
		repo := &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: *base.Spec.DeepCopy()}
		repo.Spec.Backend.S3.Prefix = "demo/" + name
		if err := e.c.Create(ctx, repo); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectlApply(fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: mg-rs, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig: {url: "mongodb://%s/?replicaSet=rs0"}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: mg-sh, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig: {url: "mongodb://%s:%d/?directConnection=true"}
  parameters:
    apiVersion: config.kubedb.com/v1alpha1
    kind: MongoConfiguration
    configServer: cnfRepSet/%s
    replicaSets: {host-0: shard0/%s, host-1: shard1/%s}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: mg-rs-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task: {name: mongodb-backup-6.0.5}
  repository: {name: mg-rs}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg-rs}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: mg-sh-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task: {name: mongodb-backup-6.0.5}
  repository: {name: mg-sh}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg-sh}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
`, rs.Addr(), ip, mongos.Port, cfg.Addr(), shards[0].Addr(), shards[1].Addr()))
	e.waitBCReady("mg-rs-backup")
	e.waitBCReady("mg-sh-backup")
	e.trigger("mg-rs-backup", stashv1beta1.BackupSessionSucceeded)
	bs := e.trigger("mg-sh-backup", stashv1beta1.BackupSessionSucceeded)
	var hosts []string
	for _, h := range bs.Status.Targets[0].Stats {
		if h.Phase == "Succeeded" && len(h.Snapshots) == 1 {
			hosts = append(hosts, h.Hostname)
		}
	}
	slices.Sort(hosts)
	if strings.Join(hosts, " ") != "confighost host-0 host-1" || bs.Status.Targets[0].TotalHosts == nil || *bs.Status.Targets[0].TotalHosts != 3 {
		total := int32(-1)
		if p := bs.Status.Targets[0].TotalHosts; p != nil {
			total = *p
		}
		t.Errorf("sharded backup: hosts %v, totalHosts %d, want confighost, host-0, host-1 of 3", hosts, total)
	}
	for _, m := range append([]*testserver.MongoMember{rs, cfg}, shards...) {
		m.SetState("PRIMARY")
		if err := mcli(m.URI).Database("app").Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: mg-rs-restore, namespace: demo}
spec:
  task: {name: mongodb-restore-6.0.5}
  repository: {name: mg-rs}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg-rs}
    rules: [{snapshots: [latest], sourceHost: host-0}]
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: mg-sh-restore, namespace: demo}
spec:
  task: {name: mongodb-restore-6.0.5}
  repository: {name: mg-sh}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: mg-sh}
`)
	e.waitRestore("mg-rs-restore")
	e.waitRestore("mg-sh-restore")
	rs2 := &stashv1beta1.RestoreSession{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "mg-sh-restore"}, rs2); err != nil {
		t.Fatal(err)
	}
	if rs2.Status.TotalHosts == nil || *rs2.Status.TotalHosts != 3 || len(rs2.Status.Stats) != 3 {
		t.Errorf("sharded restore status: %d hosts reported, %+v", len(rs2.Status.Stats), rs2.Status.Stats)
	}
	if n := count(rsCli); n != 500 {
		t.Errorf("replica set restored %d documents, want 500", n)
	}
	for i, s := range shards {
		if n := count(mcli(s.URI)); n != int64(100*(i+1)) {
			t.Errorf("shard %d restored %d documents, want %d", i, n, 100*(i+1))
		}
	}
}
