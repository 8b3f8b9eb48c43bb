package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver/elastic"
)

// TestLocalRuntimeElasticsearch: manifests in the form of Stash's
// Elasticsearch documentation (a KubeDB-style AppBinding with a service,
// its Secret's ADMIN_USERNAME and ADMIN_PASSWORD, an interim volume
// template, the elasticsearch-backup-* and -restore-* Tasks with args)
// back up and restore through the local runtime. The server is
// internal/testserver/elastic imitating Elasticsearch 7.14: no
// Elasticsearch can be had on this machine.
func TestLocalRuntimeElasticsearch(t *testing.T) {
	srv := elastic.Start(t, elastic.ES7)
	srv.User, srv.Password = "elastic", "es-e2e-password"
	esCall(t, srv, "PUT", "/products", `{"settings":{"number_of_shards":2},"mappings":{"properties":{"name":{"type":"keyword"}}},"aliases":{"catalog":{}}}`)
	var bulk strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&bulk, "{\"index\":{\"_index\":\"products\",\"_id\":\"p%d\"}}\n{\"name\":\"product-%d\",\"price\":%d.5}\n", i, i, i)
	}
	esCall(t, srv, "POST", "/_bulk", bulk.String())
	esCall(t, srv, "PUT", "/scratch", "")
	want := srv.Docs("products")
	u, _ := url.Parse(srv.URL)
	dir := t.TempDir()
	writeManifest(t, dir, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: sample-elasticsearch-auth, namespace: demo}
stringData: {ADMIN_USERNAME: elastic, ADMIN_PASSWORD: es-e2e-password}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: sample-elasticsearch, namespace: demo}
spec:
  type: kubedb.com/elasticsearch
  version: 7.14.0
  clientConfig:
    service: {name: %s, port: %s, scheme: http}
  secret: {name: sample-elasticsearch-auth}
---
%s---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: sample-elasticsearch-backup, namespace: demo}
spec:
  schedule: "*/5 * * * *"
  task:
    name: elasticsearch-backup-7.14.0
    params: [{name: args, value: "--match=^prod --limit=500"}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-elasticsearch}}
  interimVolumeTemplate:
    metadata: {name: stash-tmp-backup-storage}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: sample-elasticsearch-restore, namespace: demo}
spec:
  task: {name: elasticsearch-restore-7.14.0}
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: sample-elasticsearch}
    rules: [{snapshots: [latest]}]
  interimVolumeTemplate:
    metadata: {name: stash-tmp-restore-storage}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`, u.Hostname(), u.Port(), localRepository("repo", filepath.Join(dir, "backups"))))
	state := t.TempDir()
	mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "sample-elasticsearch-backup")
	esCall(t, srv, "DELETE", "/products,scratch", "")
	mustRun(t, nil, "local", "restore", "-f", dir, "--state-dir", state, "-n", "demo", "sample-elasticsearch-restore")
	if got := srv.Docs("products"); !reflect.DeepEqual(got, want) {
		t.Errorf("restored %d documents, want %d", len(got), len(want))
	}
	var aliases map[string]map[string]map[string]any
	_ = json.Unmarshal(esCall(t, srv, "GET", "/products/_alias/*", ""), &aliases)
	if _, ok := aliases["products"]["aliases"]["catalog"]; !ok {
		t.Errorf("aliases after the restore: %v", aliases)
	}
	// --match=^prod left the other index out of the backup.
	if srv.Docs("scratch") != nil {
		t.Error("index scratch was restored, but --match=^prod left it out")
	}
	r := mustRun(t, nil, "local", "sessions", "--state-dir", state)
	if !strings.Contains(r.stdout, "sample-elasticsearch-backup") || !strings.Contains(r.stdout, "host-0") {
		t.Errorf("sessions table:\n%s", r.stdout)
	}
}

func esCall(t *testing.T, s *elastic.Server, method, path, body string) []byte {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(s.User, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out.String())
	}
	return out.Bytes()
}
