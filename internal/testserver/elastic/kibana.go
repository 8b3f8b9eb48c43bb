package elastic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kibana answers the two calls of Kibana's saved objects API a backup
// uses, as Kibana 7.14 and 8 document them: POST
// /api/saved_objects/_export (NDJSON of the objects of the types asked
// for, then a line of export details; 400 for a type it cannot export)
// and POST /api/saved_objects/_import (a multipart NDJSON file, with
// ?overwrite=true), both requiring the kbn-xsrf header and, when User is
// set, basic authentication. No Kibana can be had where the tests run:
// a test against it checks our reading of Kibana's API, and says so.
type Kibana struct {
	URL            string
	User, Password string
	// Types are the types it can export; asking for another is a 400.
	Types   []string
	mu      sync.Mutex
	objects map[string]json.RawMessage // type/id -> object
}

// StartKibana starts one on a free local port, stopped when the test
// ends.
func StartKibana(t testing.TB) *Kibana {
	t.Helper()
	k := &Kibana{objects: map[string]json.RawMessage{},
		Types: []string{"config", "index-pattern", "visualization", "search", "dashboard", "url", "query", "lens", "tag"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kibana test server: %v", err)
	}
	k.URL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: k, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Close() })
	return k
}

// Put stores saved objects (each with type and id).
func (k *Kibana) Put(objs ...map[string]any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, o := range objs {
		raw, _ := json.Marshal(o)
		k.objects[fmt.Sprint(o["type"], "/", o["id"])] = raw
	}
}

// Objects returns the stored objects by type/id.
func (k *Kibana) Objects() map[string]json.RawMessage {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]json.RawMessage, len(k.objects))
	for key, v := range k.objects {
		out[key] = v
	}
	return out
}

// Clear deletes every object.
func (k *Kibana) Clear() { k.mu.Lock(); k.objects = map[string]json.RawMessage{}; k.mu.Unlock() }

func kbnError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "error": http.StatusText(status), "message": msg})
}

// ServeHTTP answers the export and import calls.
func (k *Kibana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if k.User != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != k.User || p != k.Password {
			kbnError(w, 401, "Unauthorized")
			return
		}
	}
	if r.Method != http.MethodPost {
		kbnError(w, 404, "Not Found")
		return
	}
	if r.Header.Get("kbn-xsrf") == "" {
		kbnError(w, 400, "Request must contain a kbn-xsrf header.")
		return
	}
	switch r.URL.Path {
	case "/api/saved_objects/_export":
		k.export(w, r)
	case "/api/saved_objects/_import":
		k.imp(w, r)
	default:
		kbnError(w, 404, "Not Found")
	}
}

func (k *Kibana) export(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type                  []string `json:"type"`
		IncludeReferencesDeep bool     `json:"includeReferencesDeep"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Type) == 0 {
		kbnError(w, 400, "[request body]: expected type or objects")
		return
	}
	var bad []string
	for _, t := range req.Type {
		if !slices.Contains(k.Types, t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		kbnError(w, 400, "Trying to export non-exportable type(s): "+strings.Join(bad, ", "))
		return
	}
	k.mu.Lock()
	var keys []string
	for key := range k.objects {
		if slices.Contains(req.Type, strings.SplitN(key, "/", 2)[0]) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	var out bytes.Buffer
	for _, key := range keys {
		out.Write(k.objects[key])
		out.WriteByte('\n')
	}
	k.mu.Unlock()
	fmt.Fprintf(&out, `{"excludedObjects":[],"excludedObjectsCount":0,"exportedCount":%d,"missingRefCount":0,"missingReferences":[]}`+"\n", len(keys))
	w.Header().Set("Content-Type", "application/ndjson")
	_, _ = w.Write(out.Bytes())
}

func (k *Kibana) imp(w http.ResponseWriter, r *http.Request) {
	overwrite := r.URL.Query().Get("overwrite") == "true"
	f, _, err := r.FormFile("file")
	if err != nil {
		kbnError(w, 400, "[request body.file]: expected value of type [Stream]")
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var errs []any
	n := 0
	k.mu.Lock()
	defer k.mu.Unlock()
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal(line, &o); err != nil {
			kbnError(w, 400, "Unexpected token in JSON")
			return
		}
		if _, ok := o["exportedCount"]; ok {
			continue
		}
		key := fmt.Sprint(o["type"], "/", o["id"])
		if _, exists := k.objects[key]; exists && !overwrite {
			errs = append(errs, map[string]any{"id": o["id"], "type": o["type"], "error": map[string]any{"type": "conflict"}})
			continue
		}
		k.objects[key] = append(json.RawMessage(nil), line...)
		n++
	}
	w.Header().Set("Content-Type", "application/json")
	out := map[string]any{"success": len(errs) == 0, "successCount": n}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	_ = json.NewEncoder(w).Encode(out)
}
