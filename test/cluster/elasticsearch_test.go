package cluster

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/testserver/elastic"
)

// elasticsearch runs the Elasticsearch addon through the operator:
// Stash's elasticsearch-backup-7.14.0 Task with args (no interim volume
// template: the cluster has no volume provisioner; the e2e test has one), a backup Job on the stash-elasticsearch image, data
// loss, and a RestoreSession. The server is internal/testserver/elastic
// (no Elasticsearch can be had here), imitating Elasticsearch 7.14 on the
// node's address, which the pods reach; an AppBinding in the url form
// with its ADMIN_USERNAME/ADMIN_PASSWORD Secret points at it.
func (e *env) elasticsearch(t *testing.T) {
	e.t = t
	srv := elastic.StartOn(t, elastic.ES7, e.nodeIP())
	srv.User, srv.Password = "elastic", "cluster-es-pass"
	call := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(srv.User, srv.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out)
		}
	}
	call("PUT", "/orders", `{"settings":{"number_of_shards":1},"mappings":{"properties":{"total":{"type":"double"}}}}`)
	var bulk strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&bulk, "{\"index\":{\"_index\":\"orders\",\"_id\":\"o%d\"}}\n{\"total\":%d.25}\n", i, i)
	}
	call("POST", "/_bulk", bulk.String())
	want := srv.Docs("orders")
	e.kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: sample-elasticsearch-auth, namespace: demo}
stringData: {ADMIN_USERNAME: elastic, ADMIN_PASSWORD: cluster-es-pass}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-elasticsearch, namespace: demo}
spec:
  type: kubedb.com/elasticsearch
  version: 7.14.0
  clientConfig: {url: "%s"}
  secret: {name: sample-elasticsearch-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-elasticsearch-backup, namespace: demo}
spec:
  schedule: "0 0 1 1 *"
  task:
    name: elasticsearch-backup-7.14.0
    params: [{name: args, value: "--match=^orders$"}]
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-elasticsearch}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
`, srv.URL))
	e.waitBCReady("sample-elasticsearch-backup")
	bs := e.trigger("sample-elasticsearch-backup", stashv1beta1.BackupSessionSucceeded)
	hs := bs.Status.Targets[0].Stats
	if len(hs) != 1 || hs[0].Hostname != "host-0" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Path != "/stash-interim-volume/data" {
		t.Fatalf("host stats %+v", hs)
	}
	call("DELETE", "/orders", "")
	e.kubectlApply(`apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: sample-elasticsearch-restore, namespace: demo}
spec:
  task: {name: elasticsearch-restore-7.14.0}
  repository: {name: s3-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-elasticsearch}
    rules: [{snapshots: [latest], sourceHost: host-0}]
`)
	e.waitRestore("sample-elasticsearch-restore")
	if got := srv.Docs("orders"); !reflect.DeepEqual(got, want) {
		t.Errorf("restored %d documents, want %d", len(got), len(want))
	}
}
