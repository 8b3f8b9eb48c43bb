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
// documentation (a KubeDB-style AppBinding with a service, the
// mongodb-backup-* and mongodb-restore-* Tasks, namespace selection in
// the Task's args) back up and restore through the local runtime.
// FerretDB stands in for MongoDB, which cannot be had on this machine.
func TestLocalRuntimeMongoDB(t *testing.T) {
	srv := testserver.StartFerretDB(t)
	ctx := context.Background()
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
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
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-mongodb, namespace: demo}
spec:
  type: kubedb.com/mongodb
  version: 6.0.5
  clientConfig:
    service: {name: %s, port: %d, scheme: mongodb}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: e2e}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    local: {mountPath: /safe/data, hostPath: {path: %s}}
    storageSecretName: repo-secret
---
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
`, srv.Host, srv.Port, filepath.Join(dir, "backups")))
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
