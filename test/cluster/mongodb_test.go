package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
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
