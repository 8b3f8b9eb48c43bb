package elasticsearch

// These tests run against internal/testserver/elastic, an in-memory server
// written from Elasticsearch's REST API specification, because no
// Elasticsearch or OpenSearch server can be had on the machine the tests
// run on. They check our reading of Elasticsearch, not Elasticsearch;
// elasticdump, written against the real servers, dumps from and loads
// into the same server in TestElasticdump* to hold both to its
// behaviour. docs/addons/elasticsearch.md lists what was checked only so.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
	"github.com/stash-backup/stash/internal/testserver/elastic"
)

var flavors = []elastic.Flavor{elastic.ES6, elastic.ES7, elastic.ES8, elastic.OpenSearch}

func conn(s *elastic.Server) *appbinding.Connection {
	u, _ := url.Parse(s.URL)
	port, _ := strconv.Atoi(u.Port())
	return &appbinding.Connection{Scheme: u.Scheme, Host: u.Hostname(), Port: port, Username: s.User, Password: s.Password}
}

func driverOf(t *testing.T, s *elastic.Server, args ...string) Driver {
	t.Helper()
	a, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	return Driver{Options{Conn: conn(s), Path: DefaultPath, Args: a}}
}

func openRepo(t *testing.T) *repository.Repository { t.Helper(); return addontest.OpenRepo(t) }

// api sends one request to the test server and fails the test on an
// answer other than 2xx.
func api(t *testing.T, s *elastic.Server, method, path string, body any) []byte {
	t.Helper()
	b, status := apiStatus(t, s, method, path, body)
	if status/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, status, b)
	}
	return b
}

func apiStatus(t *testing.T, s *elastic.Server, method, path string, body any) ([]byte, int) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if s.User != "" {
		req.SetBasicAuth(s.User, s.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return out, resp.StatusCode
}

// seed makes index name with settings, a mapping, an alias and n
// documents of every JSON kind, and a template for it.
func seed(t *testing.T, s *elastic.Server, name string, n int) {
	t.Helper()
	props := map[string]any{"properties": map[string]any{
		"title": map[string]any{"type": "text", "analyzer": "folded"},
		"n":     map[string]any{"type": "long"},
		"at":    map[string]any{"type": "date"},
		"tags":  map[string]any{"type": "keyword"},
	}}
	mappings := any(props)
	if s.Flavor().Major() < 7 {
		mappings = map[string]any{"_doc": props}
	}
	api(t, s, "PUT", "/_template/"+name+"-tmpl", map[string]any{"index_patterns": []string{name + "-*"}, "order": 1,
		"settings": map[string]any{"number_of_shards": 2}})
	if s.Flavor().HasComposable() {
		// An index template composed of a component template, which a
		// restore must put first.
		api(t, s, "PUT", "/_component_template/"+name+"-settings", map[string]any{
			"template": map[string]any{"settings": map[string]any{"number_of_shards": 2}}, "_meta": map[string]any{"owner": "test"}})
		api(t, s, "PUT", "/_index_template/"+name+"-logs", map[string]any{
			"index_patterns": []string{name + "-logs-*"}, "composed_of": []string{name + "-settings"}, "priority": 10,
			"template": map[string]any{"mappings": map[string]any{"properties": map[string]any{"msg": map[string]any{"type": "text"}}}}, "data_stream": map[string]any{}})
	}
	api(t, s, "PUT", "/"+name, map[string]any{
		"settings": map[string]any{"number_of_shards": 3, "number_of_replicas": 0, "refresh_interval": "5s",
			"analysis": map[string]any{"analyzer": map[string]any{"folded": map[string]any{"type": "custom", "tokenizer": "standard", "filter": []string{"lowercase", "asciifolding"}}}}},
		"mappings": mappings,
		"aliases":  map[string]any{name + "-read": map[string]any{}, name + "-filtered": map[string]any{"filter": map[string]any{"term": map[string]any{"tags": "a"}}}},
	})
	var body strings.Builder
	for i := range n {
		meta := map[string]any{"_index": name, "_id": fmt.Sprintf("doc-%d", i)}
		if s.Flavor().Major() < 7 {
			meta["_type"] = "_doc"
		}
		m, _ := json.Marshal(map[string]any{"index": meta})
		d, _ := json.Marshal(map[string]any{
			"title": fmt.Sprintf("Ünïcødé title %d \"quoted\" \\ ✓", i), "n": int64(i) << 33, "f": float64(i) / 3,
			"at": "2026-12-05T10:00:00Z", "tags": []string{"a", strconv.Itoa(i % 7)}, "ok": i%2 == 0, "none": nil,
			"nested": map[string]any{"deep": map[string]any{"k": i}},
		})
		body.Write(m)
		body.WriteByte('\n')
		body.Write(d)
		body.WriteByte('\n')
		if (i+1)%500 == 0 || i == n-1 {
			var res struct{ Errors bool }
			_ = json.Unmarshal(api(t, s, "POST", "/_bulk", body.String()), &res)
			if res.Errors {
				t.Fatalf("seeding %s: bulk errors", name)
			}
			body.Reset()
		}
	}
}

// state is what a server holds of the given indices: settings (but the
// ones the server sets), mappings, aliases and documents, and templates.
func state(t *testing.T, s *elastic.Server, names ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, n := range names {
		var got map[string]map[string]any
		if err := json.Unmarshal(api(t, s, "GET", "/"+n, nil), &got); err != nil {
			t.Fatal(err)
		}
		e := got[n]
		set := e["settings"].(map[string]any)["index"].(map[string]any)
		for _, k := range []string{"uuid", "creation_date", "provided_name", "version"} {
			delete(set, k)
		}
		out[n] = map[string]any{"settings": set, "mappings": e["mappings"], "aliases": e["aliases"], "docs": s.Docs(n)}
	}
	var tmpl map[string]any
	_ = json.Unmarshal(api(t, s, "GET", "/_template", nil), &tmpl)
	out["_templates"] = tmpl
	if s.Flavor().HasComposable() {
		for _, k := range []string{"_component_template", "_index_template"} {
			var v any
			_ = json.Unmarshal(api(t, s, "GET", "/"+k, nil), &v)
			out[k] = v
		}
	}
	return out
}

func dropIndices(t *testing.T, s *elastic.Server, names ...string) {
	t.Helper()
	api(t, s, "DELETE", "/"+strings.Join(names, ","), nil)
	for _, n := range names {
		api(t, s, "DELETE", "/_template/"+n+"-tmpl", nil)
		if s.Flavor().HasComposable() {
			apiStatus(t, s, "DELETE", "/_index_template/"+n+"-logs", nil)
			apiStatus(t, s, "DELETE", "/_component_template/"+n+"-settings", nil)
		}
	}
}

func backup(t *testing.T, r *repository.Repository, d Driver) repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	st, err := addontest.Backup(ctx, r, d, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestRoundTrip: in each flavor, indices with settings, analyzers,
// mappings, aliases, templates and documents of every JSON kind come back
// as they were after they were deleted; the server is left with no open
// scroll or point in time; a hidden index is left out.
func TestRoundTrip(t *testing.T) {
	for _, f := range flavors {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			s := elastic.Start(t, f)
			s.User, s.Password = "elastic", "s3cret pass"
			seed(t, s, "shop", 2345)
			seed(t, s, "crm", 3)
			api(t, s, "PUT", "/empty", nil)
			api(t, s, "PUT", "/.hidden-sys", nil)
			if f.HasComposable() {
				// A template the server manages, as Elasticsearch's own
				// logs template: neither backed up nor put back.
				api(t, s, "PUT", "/_index_template/managed-logs", map[string]any{"index_patterns": []string{"managed-*"},
					"template": map[string]any{}, "_meta": map[string]any{"managed": true}})
			}
			r := openRepo(t)
			d := driverOf(t, s, "--limit=100", "--parallel=3")
			snap := backup(t, r, d)
			if f.HasComposable() {
				api(t, s, "DELETE", "/_index_template/managed-logs", nil)
			}
			want := state(t, s, "shop", "crm", "empty")
			if n := s.OpenScrolls() + s.OpenPITs(); n != 0 {
				t.Errorf("%d scrolls or points in time left open", n)
			}
			var names []string
			if err := r.RestoreFiles(ctx, snap, nil, func(name string, _ io.Reader) error { names = append(names, name); return nil }); err != nil {
				t.Fatal(err)
			}
			wantFiles := []string{"crm.alias.json", "crm.json", "crm.mapping.json", "crm.settings.json", "crm.template.json",
				"empty.alias.json", "empty.json", "empty.mapping.json", "empty.settings.json", "empty.template.json",
				"shop.alias.json", "shop.json", "shop.mapping.json", "shop.settings.json", "shop.template.json"}
			if f.HasComposable() {
				wantFiles = append([]string{ClusterFileName(TypeComponentTemplate), ClusterFileName(TypeIndexTemplate)}, wantFiles...)
			}
			if !reflect.DeepEqual(names, wantFiles) {
				t.Errorf("files %v, want %v", names, wantFiles)
			}
			dropIndices(t, s, "shop", "crm", "empty")
			if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
				t.Fatal(err)
			}
			if got := state(t, s, "shop", "crm", "empty"); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("restored state differs:\n got %.3000s\nwant %.3000s", g, w)
			}
		})
	}
}

// TestBackupIsComplete: a backup whose reading fails part way commits
// nothing, and a wrong password fails before anything is read.
func TestBackupIsComplete(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.ES7)
	seed(t, s, "big", 3000)
	r := openRepo(t)
	d := driverOf(t, s, "--limit=50", "--parallel=2")
	s.FailSearchAfter = 20
	_, err := addontest.Backup(ctx, r, d, repository.BackupOptions{Host: "host-0"})
	if err == nil || !strings.Contains(err.Error(), "big") {
		t.Fatalf("a backup whose reading failed part way: %v (want an error naming the index)", err)
	}
	if snaps, err := r.Snapshots(ctx, repository.Filter{}); err != nil || len(snaps) != 0 {
		t.Errorf("a failed backup left %d snapshots (%v)", len(snaps), err)
	}
	s.User, s.Password = "elastic", "right"
	bad := driverOf(t, s)
	bad.Conn.Username, bad.Conn.Password = "elastic", "wrong"
	s.FailSearchAfter = 0
	_, err = addontest.Backup(ctx, r, bad, repository.BackupOptions{Host: "host-0"})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("backup with a wrong password: %v (want HTTP 401, no password)", err)
	}
}

// TestBulkBackpressure: items a busy server rejects with 429 are sent
// again until they are in; an item that fails otherwise fails the restore
// with its index and id.
func TestBulkBackpressure(t *testing.T) {
	ctx := context.Background()
	src := elastic.Start(t, elastic.ES8)
	seed(t, src, "logs", 1500)
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, src))
	dst := elastic.Start(t, elastic.ES8)
	dst.RejectEvery = 7
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, dst, "--limit=200")); err != nil {
		t.Fatal(err)
	}
	if dst.Rejected.Load() == 0 {
		t.Fatal("the server rejected nothing: the test tests nothing")
	}
	if got, want := dst.Docs("logs"), src.Docs("logs"); !reflect.DeepEqual(got, want) {
		t.Errorf("after %d rejections, %d documents restored, want %d", dst.Rejected.Load(), len(got), len(want))
	}
	bad := elastic.Start(t, elastic.ES8)
	bad.FailID = "doc-77"
	err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, bad))
	if err == nil || !strings.Contains(err.Error(), "logs") || !strings.Contains(err.Error(), `"doc-77"`) || !strings.Contains(err.Error(), "mapper_parsing_exception") {
		t.Errorf("restore with a failing document: %v (want its index, id and reason)", err)
	}
}

// TestExistingIndex: a restore writes documents over an index that exists
// (as Stash's did), refuses with --existing=refuse before it has written
// anything (the indices it made before it met the existing one removed
// again), and writes a renamed copy with --prefix/--suffix.
func TestExistingIndex(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.ES7)
	seed(t, s, "orders", 40)
	seed(t, s, "customers", 10) // restored before orders
	want := s.Docs("orders")
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, s))
	api(t, s, "DELETE", "/customers", nil)
	api(t, s, "POST", "/_bulk", `{"index":{"_index":"orders","_id":"doc-1"}}`+"\n"+`{"changed":true}`+"\n"+`{"index":{"_index":"orders","_id":"extra"}}`+"\n"+`{"new":1}`+"\n")

	err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, s, "--existing=refuse"))
	if err == nil || !strings.Contains(err.Error(), "orders exists") || !strings.Contains(err.Error(), "--prefix") {
		t.Errorf("refused restore: %v", err)
	}
	if _, status := apiStatus(t, s, "HEAD", "/customers", nil); status != 404 {
		t.Errorf("after a refused restore, customers answers HEAD with %d, want 404: the restore left what it made", status)
	}
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, s)); err != nil {
		t.Fatal(err)
	}
	got := s.Docs("orders")
	if string(got["doc-1"]) != string(want["doc-1"]) || got["extra"] == nil || len(got) != len(want)+1 {
		t.Errorf("restore over an existing index: doc-1 %s, extra %s, %d documents (want the backup's doc-1, extra kept, %d)", got["doc-1"], got["extra"], len(got), len(want)+1)
	}
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, s, "--prefix=copy-", "--suffix=-2026")); err != nil {
		t.Fatal(err)
	}
	if got := s.Docs("copy-orders-2026"); !reflect.DeepEqual(got, want) {
		t.Errorf("renamed restore: %d documents, want %d", len(got), len(want))
	}
}

// TestCrossVersion: a backup of Elasticsearch 6 (typed mappings, _type in
// every document) restores into Elasticsearch 8 and OpenSearch, and one of
// Elasticsearch 8 into 6.
func TestCrossVersion(t *testing.T) {
	ctx := context.Background()
	for _, pair := range [][2]elastic.Flavor{{elastic.ES6, elastic.ES8}, {elastic.ES6, elastic.OpenSearch}, {elastic.ES8, elastic.ES6}} {
		t.Run(string(pair[0])+"-to-"+string(pair[1]), func(t *testing.T) {
			src, dst := elastic.Start(t, pair[0]), elastic.Start(t, pair[1])
			seed(t, src, "items", 120)
			r := openRepo(t)
			snap := backup(t, r, driverOf(t, src))
			if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, dst)); err != nil {
				t.Fatal(err)
			}
			if got, want := dst.Docs("items"), src.Docs("items"); !reflect.DeepEqual(got, want) {
				t.Errorf("%d documents restored, want %d", len(got), len(want))
			}
			var m map[string]map[string]map[string]any
			_ = json.Unmarshal(api(t, dst, "GET", "/items/_mapping", nil), &m)
			props := m["items"]["mappings"]
			if dst.Flavor().Major() < 7 {
				props, _ = props["_doc"].(map[string]any)
			}
			if _, ok := props["properties"].(map[string]any)["title"]; !ok {
				t.Errorf("mapping after the restore: %v", m)
			}
		})
	}
}

// elasticdump is the npm tool hack/install-servers.sh installs.
func elasticdump(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "elasticdump", "node_modules", ".bin", "multielasticdump")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("elasticdump is not installed (%v): run hack/install-servers.sh", err)
	}
	return p
}

// runElasticdumpOne runs elasticdump itself (one type, one index or file).
func runElasticdumpOne(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(filepath.Dir(elasticdump(t)), "elasticdump"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("elasticdump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func runElasticdump(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(elasticdump(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("multielasticdump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestElasticdumpLoadsOurBackup: the files of a backup-es snapshot,
// restored to a directory, load with multielasticdump into an empty
// server and give back every document, setting and mapping.
func TestElasticdumpLoadsOurBackup(t *testing.T) {
	for _, f := range []elastic.Flavor{elastic.ES6, elastic.ES8} {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			src := elastic.Start(t, f)
			seed(t, src, "shop", 700)
			seed(t, src, "crm", 5)
			r := openRepo(t)
			snap := backup(t, r, driverOf(t, src))
			dir := t.TempDir()
			if _, err := r.RestoreTree(ctx, snap, dir, repository.TreeRestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			dst := elastic.Start(t, f)
			// multielasticdump reads every file of the directory as an
			// index's: the cluster-wide template files (a leading
			// underscore, which no index name has) are left to
			// elasticdump's own --type=component_template and
			// index_template, components first.
			runElasticdump(t, "--direction=load", "--input="+dir, "--output="+dst.URL, "--ignoreType=alias", "--parallel=1", "--quiet", "--match=^[^_]")
			if f.HasComposable() {
				for _, k := range templateKinds {
					runElasticdumpOne(t, "--type="+k, "--input="+filepath.Join(dir, ClusterFileName(k)), "--output="+dst.URL, "--quiet")
				}
				for _, k := range []string{"_component_template", "_index_template"} {
					if got, want := state(t, dst)[k], state(t, src)[k]; !reflect.DeepEqual(got, want) {
						t.Errorf("%s: elasticdump loaded %v, want %v", k, got, want)
					}
				}
			}
			for _, n := range []string{"shop", "crm"} {
				if got, want := dst.Docs(n), src.Docs(n); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: elasticdump loaded %d documents, want %d", n, len(got), len(want))
				}
				gs, ws := state(t, dst, n)[n].(map[string]any), state(t, src, n)[n].(map[string]any)
				if !reflect.DeepEqual(gs["settings"], ws["settings"]) || !reflect.DeepEqual(gs["mappings"], ws["mappings"]) {
					t.Errorf("%s: elasticdump loaded settings %v mappings %v, want %v %v", n, gs["settings"], gs["mappings"], ws["settings"], ws["mappings"])
				}
			}
		})
	}
}

// TestRestoresElasticdumpFiles: the directory multielasticdump dumps a
// server into (what Stash's backups hold), backed up as Stash did, restores
// with restore-es into an empty server.
func TestRestoresElasticdumpFiles(t *testing.T) {
	for _, f := range []elastic.Flavor{elastic.ES7, elastic.OpenSearch} {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			src := elastic.Start(t, f)
			seed(t, src, "shop", 700)
			seed(t, src, "crm", 5)
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			runElasticdump(t, "--direction=dump", "--input="+src.URL, "--output="+dir, "--includeType=data,mapping,settings,template,alias", "--parallel=1", "--quiet")
			// The composable templates, with elasticdump's own types,
			// where a backup-es backup keeps them.
			for _, k := range templateKinds {
				runElasticdumpOne(t, "--type="+k, "--input="+src.URL, "--output="+filepath.Join(dir, ClusterFileName(k)), "--quiet")
			}
			r, snap, _ := backupDumpDir(t, dir)
			dst := elastic.Start(t, f)
			d := driverOf(t, dst)
			d.Path = dir
			if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
				t.Fatal(err)
			}
			if got, want := state(t, dst, "shop", "crm"), state(t, src, "shop", "crm"); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("restored state differs:\n got %.3000s\nwant %.3000s", g, w)
			}
		})
	}
}

// backupDumpDir backs up a directory elasticdump wrote, as Stash did, and
// returns the repository, the snapshot and the files' names.
func backupDumpDir(t *testing.T, dir string) (*repository.Repository, repository.Snapshot, []string) {
	t.Helper()
	files, _ := os.ReadDir(dir)
	var names []string
	for _, e := range files {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	t.Logf("elasticdump wrote %v", names)
	r := openRepo(t)
	ctx := context.Background()
	st, err := r.BackupPaths(ctx, []string{dir}, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Resolve(ctx, st[0].Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return r, snap, names
}

// TestTLS: the server's certificate is checked against the AppBinding's
// caBundle; without it the backup fails, unless the AppBinding says
// insecureSkipTLSVerify.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	certs := testserver.NewTLS(t, "elastic")
	s := elastic.StartTLS(t, elastic.ES8, certs.ServerCert, certs.ServerKey)
	s.User, s.Password = "elastic", "tls-pass"
	c := conn(s)
	c.CABundle = certs.CA
	r := openRepo(t)
	d := Driver{Options{Conn: c, Path: DefaultPath, Args: defaultArgs()}}
	seedVia(t, d, "secure")
	snap := backup(t, r, d)
	if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
		t.Fatal(err)
	}
	noCA := Driver{Options{Conn: conn(s), Path: DefaultPath, Args: defaultArgs()}}
	if _, err := addontest.Backup(ctx, r, noCA, repository.BackupOptions{Host: "host-0"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("backup without the CA: %v (want a certificate error)", err)
	}
	skip := Driver{Options{Conn: conn(s), Path: DefaultPath, Args: defaultArgs()}}
	skip.Conn.InsecureSkipTLSVerify = true
	if _, err := addontest.Backup(ctx, r, skip, repository.BackupOptions{Host: "host-0"}); err != nil {
		t.Errorf("backup with insecureSkipTLSVerify: %v", err)
	}
}

// seedVia makes an index with a few documents through the driver's own
// client (the test's plain HTTP client does not trust the test CA).
func seedVia(t *testing.T, d Driver, name string) {
	t.Helper()
	c, err := newClient(d.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.call(ctx, "PUT", "/"+name, map[string]any{"settings": map[string]any{"number_of_shards": 1}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.do(ctx, "POST", "/_bulk", []byte(`{"index":{"_index":"`+name+`","_id":"1"}}`+"\n"+`{"a":1}`+"\n"), "application/x-ndjson"); err != nil {
		t.Fatal(err)
	}
}

// TestPathPrefix: an AppBinding URL with a path reaches the server under
// that prefix, as behind a proxy.
func TestPathPrefix(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.OpenSearch)
	seed(t, s, "docs", 30)
	mux := http.NewServeMux()
	mux.Handle("/search/", http.StripPrefix("/search", s))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &http.Server{Handler: mux}
	go proxy.Serve(ln)
	t.Cleanup(func() { proxy.Close() })
	d := driverOf(t, s)
	d.Conn.Port = ln.Addr().(*net.TCPAddr).Port
	d.Conn.Database = "search"
	r := openRepo(t)
	snap := backup(t, r, d)
	dropIndices(t, s, "docs")
	if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Docs("docs")); got != 30 {
		t.Errorf("restored %d documents through the prefix, want 30", got)
	}
}

// TestDashboards: with --enable-dashboard, Kibana's saved objects are
// exported into the snapshot and imported back on restore, types this
// Kibana cannot export left out. The Kibana is elastic.Kibana, an
// imitation of its saved objects API (no Kibana can be had here).
func TestDashboards(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.ES8)
	s.User, s.Password = "elastic", "kb-pass"
	k := elastic.StartKibana(t)
	k.User, k.Password = s.User, s.Password
	k.Put(
		map[string]any{"type": "index-pattern", "id": "ip-1", "attributes": map[string]any{"title": "logs-*"}},
		map[string]any{"type": "visualization", "id": "vis-1", "attributes": map[string]any{"title": "Errors ✓"}, "references": []any{map[string]any{"type": "index-pattern", "id": "ip-1", "name": "ref"}}},
		map[string]any{"type": "dashboard", "id": "db-1", "attributes": map[string]any{"title": "Ops"}},
	)
	want := k.Objects()
	seed(t, s, "logs-1", 10)
	d := driverOf(t, s)
	d.Dashboard = true
	d.Conn.Parameters = []byte(`{"dashboard": {"url": "` + k.URL + `"}}`)
	r := openRepo(t)
	snap := backup(t, r, d)
	k.Clear()
	dropIndices(t, s, "logs-1")
	if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
		t.Fatal(err)
	}
	if got := k.Objects(); !reflect.DeepEqual(got, want) {
		t.Errorf("Kibana objects after the restore: %d, want %d", len(got), len(want))
	}
	if got := len(s.Docs("logs-1")); got != 10 {
		t.Errorf("index restored with %d documents, want 10", got)
	}
	// elasticdump loads the backup's indices when told to leave the
	// Kibana file and the composable templates' files alone (it takes
	// every file for an index's).
	dir := t.TempDir()
	if _, err := r.RestoreTree(ctx, snap, dir, repository.TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := elastic.Start(t, elastic.ES8)
	runElasticdump(t, "--direction=load", "--input="+dir, "--output="+dst.URL, "--parallel=1", "--quiet", "--ignoreType=alias", "--match=^(?!kibana-saved-objects|_)")
	if got := len(dst.Docs("logs-1")); got != 10 {
		t.Errorf("elasticdump loaded %d documents of a backup with dashboards, want 10", got)
	}
	// A snapshot taken without dashboards cannot restore them.
	plain := backup(t, r, driverOf(t, s))
	if err := addontest.Restore(ctx, r.Reader, plain, d); err == nil || !strings.Contains(err.Error(), "without --enable-dashboard") {
		t.Errorf("dashboard restore of a snapshot without them: %v", err)
	}
	noURL := driverOf(t, s)
	noURL.Dashboard = true
	if _, err := addontest.Backup(ctx, r, noURL, repository.BackupOptions{Host: "host-0"}); err == nil || !strings.Contains(err.Error(), "spec.parameters") {
		t.Errorf("dashboard backup without a Kibana: %v", err)
	}
}

// TestRestoreIntoZincSearch: a backup restores into ZincSearch, an
// Elasticsearch-compatible server written independently of ours and of
// elasticdump, which judges the restore's requests (index creation with
// settings, mappings and aliases; _bulk; _refresh). ZincSearch cannot
// serve a backup (it ignores scroll and has no point in time), keeps
// templates in another form (left out here), ignores the aliases of an
// index's creation, and adds @timestamp to every document (ignored in the
// comparison).
func TestRestoreIntoZincSearch(t *testing.T) {
	ctx := context.Background()
	src := elastic.Start(t, elastic.ES7)
	api(t, src, "PUT", "/catalog", map[string]any{
		"settings": map[string]any{"number_of_shards": 2, "number_of_replicas": 0},
		"mappings": map[string]any{"properties": map[string]any{"name": map[string]any{"type": "keyword"}, "n": map[string]any{"type": "long"}}},
		"aliases":  map[string]any{"catalog-read": map[string]any{}},
	})
	var bulk strings.Builder
	for i := range 300 {
		fmt.Fprintf(&bulk, "{\"index\":{\"_index\":\"catalog\",\"_id\":\"c%d\"}}\n{\"name\":\"item %d ✓\",\"n\":%d}\n", i, i, i*3)
	}
	api(t, src, "POST", "/_bulk", bulk.String())
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, src))

	z := testserver.StartZincSearch(t, "7.9.0")
	d := driverOf(t, src, "--ignoreType=template", "--limit=100")
	d.Conn = &appbinding.Connection{Scheme: "http", Host: z.Host, Port: z.Port, Database: "es", Username: z.User, Password: z.Password}
	if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
		t.Fatal(err)
	}
	want := src.Docs("catalog")
	got := map[string]json.RawMessage{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		c, err := newClient(d.Conn)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Hits struct {
				Hits []struct {
					ID     string                     `json:"_id"`
					Source map[string]json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := c.call(ctx, "POST", "/catalog/_search", map[string]any{"size": 1000}, &res); err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits.Hits {
			delete(h.Source, "@timestamp")
			b, _ := json.Marshal(h.Source)
			got[h.ID] = b
		}
		if len(got) < len(want) {
			time.Sleep(200 * time.Millisecond) // ZincSearch indexes asynchronously.
		}
	}
	if len(got) != len(want) {
		t.Fatalf("ZincSearch holds %d documents, want %d", len(got), len(want))
	}
	for id, w := range want {
		var a, b any
		_ = json.Unmarshal(w, &a)
		_ = json.Unmarshal(got[id], &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("document %s: got %s, want %s", id, got[id], w)
		}
	}
}

// TestLargeDocument: a document larger than the restore's read buffer
// and a pretty-printed one (its source spans lines) come back whole.
func TestLargeDocument(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.ES8)
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	api(t, s, "POST", "/_bulk", `{"index":{"_index":"blobs","_id":"big"}}`+"\n"+`{"data":"`+big+`"}`+"\n"+
		`{"index":{"_index":"blobs","_id":"small"}}`+"\n"+`{"n":1}`+"\n")
	// The bulk API takes one line per source; a document indexed on its
	// own may keep the line breaks of a pretty-printed body.
	api(t, s, "POST", "/_bulk", `{"index":{"_index":"blobs","_id":"pretty"}}`+"\n"+`{"a":  "b",`+"\r"+`  "c": [1, 2]}`+"\n")
	want := s.Docs("blobs")
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, s))
	dropIndices(t, s, "blobs")
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, s)); err != nil {
		t.Fatal(err)
	}
	got := s.Docs("blobs")
	if len(got) != 3 || len(got["big"]) != len(want["big"]) || string(got["small"]) != string(want["small"]) {
		t.Errorf("restored %d documents (big: %d bytes, want %d)", len(got), len(got["big"]), len(want["big"]))
	}
	var a, b any
	_ = json.Unmarshal(got["pretty"], &a)
	_ = json.Unmarshal(want["pretty"], &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("pretty document: got %s, want %s", got["pretty"], want["pretty"])
	}
}

// TestIndexDeletedDuringBackup: an index deleted after the listing (as a
// rolled-over log index is) is left out with a warning, not a failed
// backup; one deleted before its documents are read keeps its metadata
// and an empty data file.
func TestIndexDeletedDuringBackup(t *testing.T) {
	ctx := context.Background()
	s := elastic.Start(t, elastic.ES7)
	for _, n := range []string{"logs-a", "logs-b", "logs-c"} {
		seed(t, s, n, 20)
	}
	want := s.Docs("logs-a")
	s.Before = func(method, path string) {
		switch path {
		case "/logs-b/_settings":
			s.DeleteIndex("logs-b")
		case "/logs-c/_pit":
			s.DeleteIndex("logs-c")
		}
	}
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, s))
	s.Before = nil
	var names []string
	if err := r.RestoreFiles(ctx, snap, nil, func(name string, _ io.Reader) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "logs-b.") {
			t.Errorf("a file of the deleted index: %s", n)
		}
	}
	dst := elastic.Start(t, elastic.ES7)
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, dst)); err != nil {
		t.Fatal(err)
	}
	if got := dst.Docs("logs-a"); !reflect.DeepEqual(got, want) {
		t.Errorf("logs-a: %d documents, want %d", len(got), len(want))
	}
	if got := dst.Docs("logs-c"); got == nil || len(got) != 0 {
		t.Errorf("logs-c, deleted before its documents were read: %v (want the index, empty)", got)
	}
}

// TestUnknownSettingDropped: a backup of Elasticsearch 8, whose indices
// carry data-tier settings, restores into OpenSearch, which does not know
// them: the setting is left out with a warning, the rest kept.
func TestUnknownSettingDropped(t *testing.T) {
	ctx := context.Background()
	src := elastic.Start(t, elastic.ES8)
	api(t, src, "PUT", "/tiered", map[string]any{"settings": map[string]any{"index": map[string]any{
		"number_of_shards": 2, "routing": map[string]any{"allocation": map[string]any{"include": map[string]any{"_tier_preference": "data_content"}}},
	}}})
	api(t, src, "POST", "/_bulk", `{"index":{"_index":"tiered","_id":"1"}}`+"\n"+`{"a":1}`+"\n")
	r := openRepo(t)
	snap := backup(t, r, driverOf(t, src))
	dst := elastic.Start(t, elastic.OpenSearch)
	if err := addontest.Restore(ctx, r.Reader, snap, driverOf(t, dst)); err != nil {
		t.Fatal(err)
	}
	set := state(t, dst, "tiered")["tiered"].(map[string]any)["settings"].(map[string]any)
	if set["number_of_shards"] != "2" || set["routing"] != nil {
		t.Errorf("settings in OpenSearch: %v (want 2 shards, no data tier)", set)
	}
	if len(dst.Docs("tiered")) != 1 {
		t.Errorf("documents: %d, want 1", len(dst.Docs("tiered")))
	}
}

// TestDataStreams: a data stream (whose backing indices are hidden, so
// no index listing shows them) is backed up with its index template and
// restored as a data stream with every document; restored again over
// itself it keeps them (a data stream takes only create), and
// --existing=refuse refuses it.
// streamTemplate makes logs-app* data streams.
var streamTemplate = map[string]any{"index_patterns": []string{"logs-app*"}, "priority": 100, "data_stream": map[string]any{},
	"template": map[string]any{"mappings": map[string]any{"properties": map[string]any{"@timestamp": map[string]any{"type": "date"}}}}}

// seedStream puts streamTemplate and writes n documents into the data
// stream logs-app, which the first write makes; it returns them.
func seedStream(t *testing.T, s *elastic.Server, n int) map[string]json.RawMessage {
	t.Helper()
	api(t, s, "PUT", "/_index_template/logs-app", streamTemplate)
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, `{"create":{"_index":"logs-app","_id":"e-%d"}}`+"\n"+`{"@timestamp":"2026-12-06T10:%02d:00Z","msg":"event %d"}`+"\n", i, i%60, i)
	}
	var res struct{ Errors bool }
	_ = json.Unmarshal(api(t, s, "POST", "/_bulk", body.String()), &res)
	if res.Errors {
		t.Fatal("seeding the data stream: bulk errors")
	}
	docs := s.Docs("logs-app")
	if len(docs) != n {
		t.Fatalf("the data stream holds %d documents, want %d", len(docs), n)
	}
	return docs
}

// checkStream fails unless logs-app is a data stream holding want.
func checkStream(t *testing.T, s *elastic.Server, want map[string]json.RawMessage) {
	t.Helper()
	if _, st := apiStatus(t, s, "GET", "/_data_stream/logs-app", nil); st != 200 {
		t.Fatalf("GET the restored data stream: HTTP %d", st)
	}
	if got := s.Docs("logs-app"); !reflect.DeepEqual(got, want) {
		t.Fatalf("the restored data stream holds %d documents, want the %d it had", len(got), len(want))
	}
}

func TestDataStreams(t *testing.T) {
	for _, f := range []elastic.Flavor{elastic.ES7, elastic.ES8, elastic.OpenSearch} {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			s := elastic.Start(t, f)
			seed(t, s, "shop", 20)
			want := seedStream(t, s, 50)
			r := openRepo(t)
			d := driverOf(t, s)
			snap := backup(t, r, d)
			var names []string
			if err := r.RestoreFiles(ctx, snap, nil, func(name string, _ io.Reader) error { names = append(names, name); return nil }); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{ClusterFileName(TypeIndexTemplate), ClusterFileName(TypeDataStream), "logs-app.json"} {
				if !slices.Contains(names, n) {
					t.Fatalf("backup files %v: no %s", names, n)
				}
			}
			api(t, s, "DELETE", "/_data_stream/logs-app", nil)
			api(t, s, "DELETE", "/_index_template/logs-app", nil)
			dropIndices(t, s, "shop")
			if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
				t.Fatal(err)
			}
			checkStream(t, s, want)
			if got := len(s.Docs("shop")); got != 20 {
				t.Errorf("index restored beside the stream with %d documents, want 20", got)
			}
			// Again over the stream: its documents are kept.
			if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
				t.Fatalf("restore over the existing data stream: %v", err)
			}
			if got := len(s.Docs("logs-app")); got != 50 {
				t.Errorf("after a second restore the stream holds %d documents, want 50", got)
			}
			// multielasticdump's --matchType chooses between them.
			for _, c := range []struct{ arg, has, hasNot string }{{"--matchType=datastream", "logs-app.json", "shop.json"}, {"--matchType=alias", "shop.json", "logs-app.json"}} {
				only := backup(t, r, driverOf(t, s, c.arg))
				var got []string
				if err := r.RestoreFiles(ctx, only, nil, func(name string, _ io.Reader) error { got = append(got, name); return nil }); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(got, c.has) || slices.Contains(got, c.hasNot) {
					t.Errorf("%s: files %v, want %s and no %s", c.arg, got, c.has, c.hasNot)
				}
			}
			refuse := driverOf(t, s, "--existing=refuse")
			if err := addontest.Restore(ctx, r.Reader, snap, refuse); err == nil || !strings.Contains(err.Error(), "exists already") {
				t.Errorf("--existing=refuse over an existing index or stream: %v", err)
			}
		})
	}
}

// TestRestoresElasticdumpDataStream: multielasticdump --matchType=datastream
// dumps a data stream as if it were an index (<stream>.json and its
// mapping and settings, no list of streams). Restored into a cluster whose
// index template makes that name a data stream, where Elasticsearch
// refuses to create an index of the name, it becomes the data stream
// again, with every document. Checked against the test server, which
// imitates that refusal, with elasticdump's own dump of it.
func TestRestoresElasticdumpDataStream(t *testing.T) {
	for _, f := range []elastic.Flavor{elastic.ES8, elastic.OpenSearch} {
		t.Run(string(f), func(t *testing.T) {
			ctx := context.Background()
			src := elastic.Start(t, f)
			want := seedStream(t, src, 30)
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			runElasticdump(t, "--direction=dump", "--matchType=datastream", "--input="+src.URL, "--output="+dir, "--includeType=data,mapping,settings", "--parallel=1", "--quiet")
			r, snap, names := backupDumpDir(t, dir)
			if !slices.Contains(names, "logs-app.json") {
				t.Fatalf("multielasticdump wrote %v: no logs-app.json", names)
			}
			dst := elastic.Start(t, f)
			api(t, dst, "PUT", "/_index_template/logs-app", streamTemplate)
			d := driverOf(t, dst)
			d.Path = dir
			if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
				t.Fatal(err)
			}
			checkStream(t, dst, want)
		})
	}
}
