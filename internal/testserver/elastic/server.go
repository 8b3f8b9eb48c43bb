// Package elastic is an in-memory server that answers the part of
// Elasticsearch's REST API a backup tool uses, with the response shapes
// of Elasticsearch 6, 7 and 8 or OpenSearch 2 (Flavor): no Elasticsearch
// or OpenSearch distribution can be had on the machine the tests run on.
//
// It is written from Elasticsearch's published REST API specification and
// held honest by an independent client: elasticdump, written against real
// Elasticsearch, dumps from it and loads into it in the tests. A test that
// uses it checks our reading of Elasticsearch, not Elasticsearch, and says
// so.
//
// What it models: indices with settings, mappings and aliases; legacy
// index templates; documents by id (kept in insertion order, with
// _seq_no); match_all and ids queries; scroll (sliced), point in time
// with search_after (Elasticsearch 7.10+ and OpenSearch 2 each in their
// own shape), _bulk with per-item results, _refresh and _count; basic
// authentication; and injected 429 rejections of bulk items (RejectEvery).
package elastic

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Flavor is the server the test server imitates.
type Flavor string

// The flavors, named by the version number GET / reports.
const (
	ES6        Flavor = "6.8.23"
	ES7        Flavor = "7.17.9"
	ES8        Flavor = "8.11.3"
	OpenSearch Flavor = "opensearch-2.11.1"
)

// Major is the flavor's major version (OpenSearch 2 answers as 7, as its
// compatibility mode does for clients that check).
func (f Flavor) Major() int {
	if f.IsOpenSearch() {
		return 7
	}
	n, _ := strconv.Atoi(strings.SplitN(string(f), ".", 2)[0])
	return n
}

// IsOpenSearch tells an OpenSearch flavor.
func (f Flavor) IsOpenSearch() bool { return strings.HasPrefix(string(f), "opensearch-") }

// number is the version number GET / reports.
func (f Flavor) number() string { return strings.TrimPrefix(string(f), "opensearch-") }

// hasPIT tells whether the flavor has point in time: Elasticsearch 7.10
// and later (its _pit API), OpenSearch 2.4 and later (its own).
func (f Flavor) hasPIT() bool { return f.IsOpenSearch() || f.Major() >= 8 || f == ES7 }

// typed tells whether hits carry _type (Elasticsearch before 8).
func (f Flavor) typed() bool { return !f.IsOpenSearch() && f.Major() < 8 }

// HasComposable tells whether the flavor has composable index and
// component templates: Elasticsearch 7.8 and later, OpenSearch.
func (f Flavor) HasComposable() bool { return f.IsOpenSearch() || f.Major() >= 8 || f == ES7 }

// Server is a running test server.
type Server struct {
	// URL is the server's address, http://127.0.0.1:PORT.
	URL string
	// User and Password, when set, are required as basic authentication.
	User, Password string
	// RejectEvery, when positive, rejects every n-th bulk item with 429
	// (es_rejected_execution_exception), as a busy node's write queue
	// does; Rejected counts them.
	RejectEvery int64
	Rejected    atomic.Int64
	// FailID, when set, fails the bulk item of that document id with a
	// mapper_parsing_exception, as a document that does not fit its
	// mapping fails.
	FailID string
	// FailSearchAfter, when positive, fails every search and scroll
	// request after that many with 500, as a node that goes away does.
	FailSearchAfter int64
	searches        atomic.Int64
	// Before, when set, is called with each request's method and path
	// before it is answered (outside the server's lock), as another
	// client acting at that moment.
	Before func(method, path string)

	flavor  Flavor
	mu      sync.Mutex
	indices map[string]*index
	tmpls   map[string]json.RawMessage
	// composable holds the composable templates by kind
	// ("index_template", "component_template"), then name.
	composable map[string]map[string]json.RawMessage
	// streams are the data streams by name, each its backing indices
	// (hidden, .ds-<name>-<date>-<generation>), the last one written.
	streams map[string][]string
	scrolls map[string]*cursor
	pits    map[string]*pit
	items   atomic.Int64
	srv     *http.Server
}

type index struct {
	name     string
	settings map[string]any // the "index" object of settings
	mappings map[string]any // typeless: {"properties": …}
	aliases  map[string]json.RawMessage
	ids      []string // insertion order
	docs     map[string]*doc
	created  time.Time
	uuid     string
}

type doc struct {
	source json.RawMessage
	seq    int64
}

// pit is an open point in time: the documents as they were when it was
// opened, in _shard_doc order, and their slices as asked for.
type pit struct {
	hits   []hit
	slices map[[2]int][]hit // {id, max} -> hits of that slice
}

// cursor is an open scroll: the hits still to give.
type cursor struct {
	hits []hit
	size int
}

type hit struct {
	index, id string
	source    json.RawMessage
	sort      int64
}

// Start starts a server of flavor f on a free local port, stopped when
// the test ends.
func Start(t testing.TB, f Flavor) *Server { t.Helper(); return start(t, f, "127.0.0.1", nil) }

// StartOn is Start on a free port of the given local address (the node's
// address, which a cluster's pods reach).
func StartOn(t testing.TB, f Flavor, host string) *Server { t.Helper(); return start(t, f, host, nil) }

// StartTLS starts a server of flavor f that serves HTTPS with the PEM
// certificate and key given.
func StartTLS(t testing.TB, f Flavor, cert, key []byte) *Server {
	t.Helper()
	c, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("elastic test server: %v", err)
	}
	return start(t, f, "127.0.0.1", &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12})
}

func start(t testing.TB, f Flavor, host string, cfg *tls.Config) *Server {
	t.Helper()
	s := &Server{flavor: f, indices: map[string]*index{}, tmpls: map[string]json.RawMessage{},
		scrolls: map[string]*cursor{}, pits: map[string]*pit{}}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("elastic test server: %v", err)
	}
	s.URL = "http://" + ln.Addr().String()
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
		s.URL = "https://" + strings.TrimPrefix(s.URL, "http://")
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Flavor is what the server imitates.
func (s *Server) Flavor() Flavor { return s.flavor }

// apiError is an error response in Elasticsearch's shape.
type apiError struct {
	status int
	typ    string
	reason string
}

func (e *apiError) Error() string { return e.typ + ": " + e.reason }

func errf(status int, typ, format string, a ...any) *apiError {
	return &apiError{status, typ, fmt.Sprintf(format, a...)}
}

func notFound(name string) *apiError {
	return errf(404, "index_not_found_exception", "no such index [%s]", name)
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.User != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.User || p != s.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
			writeJSON(w, 401, errorBody(errf(401, "security_exception", "missing authentication credentials for REST request [%s]", r.URL.Path)))
			return
		}
	}
	if s.Before != nil {
		s.Before(r.Method, r.URL.Path)
	}
	if !s.flavor.IsOpenSearch() && s.flavor.Major() >= 7 {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	body, err := readBody(r)
	if err != nil {
		writeJSON(w, 400, errorBody(errf(400, "parse_exception", "%v", err)))
		return
	}
	status, out, err := s.route(r.Method, r.URL, body)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = errf(500, "exception", "%v", err)
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(ae.status)
			return
		}
		writeJSON(w, ae.status, errorBody(ae))
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, out)
}

func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func errorBody(e *apiError) map[string]any {
	cause := map[string]any{"type": e.typ, "reason": e.reason}
	return map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": e.typ, "reason": e.reason}, "status": e.status}
}

// writeJSON answers with v and its length, as Elasticsearch does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"type":"exception","reason":"encode the answer"},"status":500}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// route dispatches on method and path.
func (s *Server) route(method string, u *url.URL, body []byte) (int, any, error) {
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	for i, p := range parts {
		if v, err := url.PathUnescape(p); err == nil {
			parts[i] = v
		}
	}
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	q := u.Query()
	// A bulk request is parsed before the server is locked, so that
	// bulk requests sent at once are not read one after another.
	switch {
	case len(parts) == 1 && parts[0] == "_bulk":
		return s.bulk("", body, q)
	case len(parts) == 2 && parts[1] == "_bulk":
		return s.bulk(parts[0], body, q)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(parts) == 0:
		return s.info()
	case parts[0] == "_aliases" && method == http.MethodGet:
		return s.getAliases("*")
	case parts[0] == "_aliases":
		return s.updateAliases(body)
	case parts[0] == "_template":
		return s.template(method, parts[1:], body)
	case (parts[0] == "_index_template" || parts[0] == "_component_template") && s.flavor.HasComposable():
		return s.composableTemplate(parts[0][1:], method, parts[1:], body)
	case parts[0] == "_data_stream" && s.flavor.HasComposable():
		return s.dataStream(method, parts[1:])
	case parts[0] == "_search" && len(parts) == 2 && parts[1] == "scroll":
		return s.scroll(method, body, q)
	case parts[0] == "_search" && len(parts) == 2 && parts[1] == "point_in_time" && s.flavor.IsOpenSearch():
		return s.closePIT(body, "pit_id")
	case parts[0] == "_pit" && !s.flavor.IsOpenSearch() && s.flavor.hasPIT():
		return s.closePIT(body, "id")
	case parts[0] == "_search" && len(parts) == 1:
		return s.search("", body, q)
	case parts[0] == "_settings" || parts[0] == "_mapping" || parts[0] == "_alias":
		return s.indexGet("*", parts[0])
	case parts[0] == "_refresh":
		return 200, map[string]any{"_shards": shards()}, nil
	case strings.HasPrefix(parts[0], "_") && parts[0] != "_all":
		return 0, nil, errf(400, "invalid_index_name_exception", "unknown endpoint [%s]", u.Path)
	}
	name := parts[0]
	rest := parts[1:]
	switch {
	case len(rest) == 0:
		switch method {
		case http.MethodPut:
			// As Elasticsearch 7.9+ and OpenSearch do: a name an index
			// template makes a data stream is not an index's.
			if t := s.streamTemplate(name); t != "" {
				if _, ok := s.indices[name]; !ok {
					return 0, nil, errf(400, "illegal_argument_exception", "cannot create index with name [%s], because it matches with template [%s] that creates data streams only, use create data stream api instead", name, t)
				}
			}
			return s.createIndex(name, body)
		case http.MethodDelete:
			return s.deleteIndex(name)
		case http.MethodHead, http.MethodGet:
			if len(s.match(name)) == 0 {
				return 0, nil, notFound(name)
			}
			if method == http.MethodHead {
				return 200, nil, nil
			}
			return s.indexGet(name, "")
		}
	case rest[0] == "_search" && len(rest) == 2 && rest[1] == "point_in_time" && s.flavor.IsOpenSearch():
		return s.openPIT(name, "pit_id")
	case rest[0] == "_pit" && !s.flavor.IsOpenSearch() && s.flavor.hasPIT():
		return s.openPIT(name, "id")
	case rest[0] == "_search":
		return s.search(name, body, q)
	case rest[0] == "_refresh":
		return 200, map[string]any{"_shards": shards()}, nil
	case rest[0] == "_count":
		return s.count(name)
	case rest[0] == "_settings" && method == http.MethodGet, rest[0] == "_mapping" && method == http.MethodGet,
		rest[0] == "_alias" && method == http.MethodGet:
		return s.indexGet(name, rest[0])
	case rest[0] == "_mapping":
		return s.putMapping(name, body)
	case len(rest) == 2 && rest[1] == "_mapping" && s.flavor.Major() < 7:
		return s.putMapping(name, body)
	case rest[0] == "_settings":
		return s.putSettings(name, body)
	case len(rest) >= 1 && (rest[0] == "_doc" || s.flavor.Major() < 7) && len(rest) == 2 && method == http.MethodGet:
		return s.getDoc(name, rest[1])
	}
	return 0, nil, errf(405, "method_not_allowed", "%s %s is not served by the test server", method, u.Path)
}

func shards() map[string]int { return map[string]int{"total": 1, "successful": 1, "failed": 0} }

func (s *Server) info() (int, any, error) {
	v := map[string]any{"number": s.flavor.number(), "build_flavor": "default", "lucene_version": "9.8.0",
		"minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"}
	if s.flavor.IsOpenSearch() {
		v = map[string]any{"distribution": "opensearch", "number": s.flavor.number(), "lucene_version": "9.7.0",
			"minimum_wire_compatibility_version": "7.10.0", "minimum_index_compatibility_version": "7.0.0"}
	}
	tagline := "You Know, for Search"
	if s.flavor.IsOpenSearch() {
		tagline = "The OpenSearch Project: https://opensearch.org/"
	}
	return 200, map[string]any{"name": "node-0", "cluster_name": "stash-test", "cluster_uuid": "7QvB1hZkR4CqX2b0dJ3w2g",
		"version": v, "tagline": tagline}, nil
}

// match returns the indices a name, a comma list, a wildcard pattern or an
// alias names, sorted; "_all" and "*" name every index.
func (s *Server) match(expr string) []*index {
	var out []*index
	seen := map[string]bool{}
	for _, e := range strings.Split(expr, ",") {
		for st, backing := range s.streams {
			if !wildcard(e, st) {
				continue
			}
			for _, b := range backing {
				if ix := s.indices[b]; ix != nil && !seen[b] {
					seen[b] = true
					out = append(out, ix)
				}
			}
		}
		for _, ix := range s.indices {
			_, aliased := ix.aliases[e]
			if seen[ix.name] || !(e == "_all" || wildcard(e, ix.name) || aliased) {
				continue
			}
			if (e == "_all" || e == "*") && strings.HasPrefix(ix.name, ".") {
				// Wildcards leave hidden (dot) indices out, as
				// expand_wildcards=open does since Elasticsearch 7.7.
				continue
			}
			seen[ix.name] = true
			out = append(out, ix)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func wildcard(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
	ok, _ := regexp.MatchString(re, name)
	return ok
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)

func (s *Server) createIndex(name string, body []byte) (int, any, error) {
	if _, ok := s.indices[name]; ok {
		return 0, nil, errf(400, "resource_already_exists_exception", "index [%s/%s] already exists", name, s.indices[name].uuid)
	}
	if !validName.MatchString(name) && !strings.HasPrefix(name, ".") {
		return 0, nil, errf(400, "invalid_index_name_exception", "Invalid index name [%s], must be lowercase", name)
	}
	var req struct {
		Settings map[string]any             `json:"settings"`
		Mappings map[string]any             `json:"mappings"`
		Aliases  map[string]json.RawMessage `json:"aliases"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, nil, errf(400, "parse_exception", "request body: %v", err)
		}
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(body, &keys)
		for k := range keys {
			switch {
			case k == "settings" || k == "mappings" || k == "aliases":
			case s.flavor.Major() < 7 && req.Settings == nil:
				// Before 7.0, a body without "settings" is the
				// settings (CreateIndexRequest.source).
				_ = json.Unmarshal(body, &req.Settings)
			default:
				return 0, nil, errf(400, "parse_exception", "unknown key [%s] for create index", k)
			}
		}
	}
	ix := &index{name: name, settings: map[string]any{}, mappings: map[string]any{}, aliases: map[string]json.RawMessage{},
		docs: map[string]*doc{}, created: time.Now(), uuid: newID()[:22]}
	for _, t := range s.templatesFor(name) {
		mergeSettings(ix.settings, t.Settings)
		mergeMap(ix.mappings, s.typeless(t.Mappings))
		for a, v := range t.Aliases {
			ix.aliases[a] = v
		}
	}
	if err := s.checkSettings(req.Settings, true); err != nil {
		return 0, nil, err
	}
	mergeSettings(ix.settings, req.Settings)
	mergeMap(ix.mappings, s.typeless(req.Mappings))
	for a, v := range req.Aliases {
		ix.aliases[a] = v
	}
	s.indices[name] = ix
	out := map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name}
	return 200, out, nil
}

// checkSettings refuses settings only the server sets, as Elasticsearch
// does ("unknown setting" / "private index setting").
func (s *Server) checkSettings(settings map[string]any, creating bool) error {
	flat := map[string]any{}
	flatten("", settings, flat)
	for k := range flat {
		k = strings.TrimPrefix(k, "index.")
		switch k {
		case "uuid", "creation_date", "version.created", "version.upgraded", "provided_name", "resize.source.uuid":
			return errf(400, "illegal_argument_exception", "unknown setting [index.%s] please check that any required plugins are installed, or check the breaking changes documentation for removed settings", k)
		case "routing.allocation.include._tier_preference":
			// Data tiers came with Elasticsearch 7.10; OpenSearch
			// and Elasticsearch 6 do not know the setting.
			if s.flavor.IsOpenSearch() || s.flavor.Major() < 7 {
				return errf(400, "illegal_argument_exception", "unknown setting [index.%s] please check that any required plugins are installed, or check the breaking changes documentation for removed settings", k)
			}
		case "number_of_shards", "routing_partition_size":
			if !creating {
				return errf(400, "illegal_argument_exception", "Can't update non dynamic settings [[index.%s]] for open indices", k)
			}
		}
	}
	return nil
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

// mergeSettings merges settings given flat ("index.number_of_shards"),
// nested or under "index" into the index object.
func mergeSettings(dst map[string]any, src map[string]any) {
	flat := map[string]any{}
	flatten("", src, flat)
	for k, v := range flat {
		k = strings.TrimPrefix(k, "index.")
		cur := dst
		keys := strings.Split(k, ".")
		for _, p := range keys[:len(keys)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		// Elasticsearch reports every setting as a string, or a list of
		// strings.
		if list, ok := v.([]any); ok {
			strs := make([]string, len(list))
			for i, x := range list {
				strs[i] = fmt.Sprint(x)
			}
			cur[keys[len(keys)-1]] = strs
			continue
		}
		cur[keys[len(keys)-1]] = fmt.Sprint(v)
	}
}

func mergeMap(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeMap(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// typeless takes a mapping as given (ES 6: under a type name) to its
// typeless form.
func (s *Server) typeless(m map[string]any) map[string]any {
	if s.flavor.Major() >= 7 || len(m) != 1 {
		return m
	}
	for k, v := range m {
		if k == "properties" || strings.HasPrefix(k, "_") && k != "_doc" {
			return m
		}
		if sub, ok := v.(map[string]any); ok {
			return sub
		}
	}
	return m
}

func (s *Server) deleteIndex(expr string) (int, any, error) {
	ixs := s.match(expr)
	if len(ixs) == 0 {
		return 0, nil, notFound(expr)
	}
	for _, ix := range ixs {
		delete(s.indices, ix.name)
	}
	return 200, map[string]any{"acknowledged": true}, nil
}

// indexGet answers GET /<index>[/_settings|_mapping|_alias].
func (s *Server) indexGet(expr, what string) (int, any, error) {
	ixs := s.match(expr)
	if len(ixs) == 0 && expr != "*" {
		return 0, nil, notFound(expr)
	}
	out := map[string]any{}
	for _, ix := range ixs {
		e := map[string]any{}
		if what == "" || what == "_alias" {
			e["aliases"] = ix.aliases
		}
		if what == "" || what == "_mapping" {
			e["mappings"] = s.mappingOut(ix)
		}
		if what == "" || what == "_settings" {
			e["settings"] = map[string]any{"index": s.settingsOut(ix)}
		}
		out[ix.name] = e
	}
	return 200, out, nil
}

func (s *Server) mappingOut(ix *index) any {
	if s.flavor.Major() < 7 {
		if len(ix.mappings) == 0 {
			return map[string]any{}
		}
		return map[string]any{"_doc": ix.mappings}
	}
	return ix.mappings
}

func (s *Server) settingsOut(ix *index) map[string]any {
	out := map[string]any{}
	mergeMap(out, deepCopy(ix.settings))
	if _, ok := out["number_of_shards"]; !ok {
		out["number_of_shards"] = "1"
	}
	if _, ok := out["number_of_replicas"]; !ok {
		out["number_of_replicas"] = "1"
	}
	out["uuid"] = ix.uuid
	out["provided_name"] = ix.name
	out["creation_date"] = strconv.FormatInt(ix.created.UnixMilli(), 10)
	out["version"] = map[string]any{"created": "7170999"}
	return out
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func (s *Server) getAliases(expr string) (int, any, error) {
	out := map[string]any{}
	for _, ix := range s.indices {
		if expr == "*" || wildcard(expr, ix.name) {
			out[ix.name] = map[string]any{"aliases": ix.aliases}
		}
	}
	return 200, out, nil
}

func (s *Server) updateAliases(body []byte) (int, any, error) {
	var req struct {
		Actions []map[string]map[string]any `json:"actions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, errf(400, "parse_exception", "request body: %v", err)
	}
	for _, a := range req.Actions {
		for op, args := range a {
			name, _ := args["index"].(string)
			alias, _ := args["alias"].(string)
			ixs := s.match(name)
			if len(ixs) == 0 {
				return 0, nil, notFound(name)
			}
			opts := map[string]any{}
			for k, v := range args {
				if k != "index" && k != "alias" {
					opts[k] = v
				}
			}
			raw, _ := json.Marshal(opts)
			for _, ix := range ixs {
				switch op {
				case "add":
					ix.aliases[alias] = raw
				case "remove":
					delete(ix.aliases, alias)
				default:
					return 0, nil, errf(400, "parse_exception", "unknown alias action [%s]", op)
				}
			}
		}
	}
	return 200, map[string]any{"acknowledged": true}, nil
}

func (s *Server) putMapping(name string, body []byte) (int, any, error) {
	ixs := s.match(name)
	if len(ixs) == 0 {
		return 0, nil, notFound(name)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, nil, errf(400, "parse_exception", "request body: %v", err)
	}
	for _, ix := range ixs {
		mergeMap(ix.mappings, s.typeless(m))
	}
	return 200, map[string]any{"acknowledged": true}, nil
}

func (s *Server) putSettings(name string, body []byte) (int, any, error) {
	ixs := s.match(name)
	if len(ixs) == 0 {
		return 0, nil, notFound(name)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, nil, errf(400, "parse_exception", "request body: %v", err)
	}
	if inner, ok := m["settings"].(map[string]any); ok {
		m = inner
	}
	if err := s.checkSettings(m, false); err != nil {
		return 0, nil, err
	}
	for _, ix := range ixs {
		mergeSettings(ix.settings, m)
	}
	return 200, map[string]any{"acknowledged": true}, nil
}

type template struct {
	IndexPatterns []string                   `json:"index_patterns,omitempty"`
	Template      string                     `json:"template,omitempty"` // ES 5 form
	Order         int                        `json:"order"`
	Settings      map[string]any             `json:"settings"`
	Mappings      map[string]any             `json:"mappings"`
	Aliases       map[string]json.RawMessage `json:"aliases"`
}

func (s *Server) template(method string, rest []string, body []byte) (int, any, error) {
	pattern := "*"
	if len(rest) > 0 && rest[0] != "" {
		pattern = rest[0]
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		out := map[string]json.RawMessage{}
		for n, t := range s.tmpls {
			if wildcard(pattern, n) {
				out[n] = t
			}
		}
		if len(out) == 0 && pattern != "*" {
			return 0, nil, errf(404, "resource_not_found_exception", "index template matching [%s] not found", pattern)
		}
		return 200, out, nil
	case http.MethodPut, http.MethodPost:
		var t template
		if err := json.Unmarshal(body, &t); err != nil {
			return 0, nil, errf(400, "parse_exception", "request body: %v", err)
		}
		if len(t.IndexPatterns) == 0 && t.Template == "" {
			return 0, nil, errf(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
		}
		if t.Settings == nil {
			t.Settings = map[string]any{}
		}
		flat := map[string]any{}
		mergeSettings(flat, t.Settings)
		t.Settings = map[string]any{"index": flat}
		if t.Mappings == nil {
			t.Mappings = map[string]any{}
		}
		if t.Aliases == nil {
			t.Aliases = map[string]json.RawMessage{}
		}
		raw, _ := json.Marshal(t)
		s.tmpls[pattern] = raw
		return 200, map[string]any{"acknowledged": true}, nil
	case http.MethodDelete:
		delete(s.tmpls, pattern)
		return 200, map[string]any{"acknowledged": true}, nil
	}
	return 0, nil, errf(405, "method_not_allowed", "%s on _template", method)
}

func (s *Server) templatesFor(name string) []template {
	var out []template
	for _, raw := range s.tmpls {
		var t template
		_ = json.Unmarshal(raw, &t)
		pats := t.IndexPatterns
		if t.Template != "" {
			pats = append(pats, t.Template)
		}
		if slices.ContainsFunc(pats, func(p string) bool { return wildcard(p, name) }) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

func (s *Server) count(name string) (int, any, error) {
	ixs := s.match(name)
	if len(ixs) == 0 {
		return 0, nil, notFound(name)
	}
	n := 0
	for _, ix := range ixs {
		n += len(ix.docs)
	}
	return 200, map[string]any{"count": n, "_shards": shards()}, nil
}

func (s *Server) getDoc(name, id string) (int, any, error) {
	ixs := s.match(name)
	if len(ixs) != 1 {
		return 0, nil, notFound(name)
	}
	d, ok := ixs[0].docs[id]
	if !ok {
		return 404, map[string]any{"_index": ixs[0].name, "_id": id, "found": false}, nil
	}
	return 200, map[string]any{"_index": ixs[0].name, "_id": id, "found": true, "_seq_no": d.seq, "_source": d.source}, nil
}

func newID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bulk answers _bulk: index, create, update (doc) and delete actions, one
// result per item; an item may be rejected with 429 (RejectEvery).
func (s *Server) bulk(defIndex string, body []byte, q url.Values) (int, any, error) {
	start := time.Now()
	type op struct {
		name, id, op string
		meta         map[string]any
		src          json.RawMessage
	}
	var ops []op
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var action map[string]map[string]any
		if err := json.Unmarshal(line, &action); err != nil || len(action) != 1 {
			return 0, nil, errf(400, "illegal_argument_exception", "Malformed action/metadata line [%s]", line)
		}
		var o op
		for o.op, o.meta = range action {
		}
		if o.op != "delete" {
			if !sc.Scan() {
				return 0, nil, errf(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			}
			o.src = append(json.RawMessage(nil), bytes.TrimSpace(sc.Bytes())...)
			if !json.Valid(o.src) {
				o.src = nil
			}
		}
		o.name, _ = o.meta["_index"].(string)
		if o.name == "" {
			o.name = defIndex
		}
		o.id, _ = o.meta["_id"].(string)
		ops = append(ops, o)
	}
	if err := sc.Err(); err != nil {
		return 0, nil, errf(400, "parse_exception", "bulk body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]any, 0, len(ops))
	errorsSeen := false
	for _, o := range ops {
		item := map[string]any{"_index": o.name, "_id": o.id}
		if s.flavor.typed() {
			item["_type"] = "_doc"
		}
		status, res, ierr := s.bulkItem(o.op, o.name, o.id, o.src, o.meta)
		if ierr != nil {
			errorsSeen = true
			item["status"] = ierr.status
			item["error"] = map[string]any{"type": ierr.typ, "reason": ierr.reason, "index": o.name}
		} else {
			item["status"] = status
			item["result"] = res
		}
		items = append(items, map[string]any{o.op: item})
	}
	return 200, map[string]any{"took": time.Since(start).Milliseconds(), "errors": errorsSeen, "items": items}, nil
}

func (s *Server) bulkItem(op, name, id string, src json.RawMessage, meta map[string]any) (int, string, *apiError) {
	if s.RejectEvery > 0 && s.items.Add(1)%s.RejectEvery == 0 {
		s.Rejected.Add(1)
		return 0, "", errf(429, "es_rejected_execution_exception", "rejected execution of coordinating operation [queue capacity = 200]")
	}
	if s.FailID != "" && id == s.FailID {
		return 0, "", errf(400, "mapper_parsing_exception", "failed to parse field [n] of type [long] in document with id '%s'", id)
	}
	if s.flavor.Major() < 7 {
		if _, ok := meta["_type"]; !ok && op != "delete" {
			return 0, "", errf(400, "action_request_validation_exception", "Validation Failed: 1: type is missing;")
		}
	}
	if name == "" {
		return 0, "", errf(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
	}
	if _, isStream := s.streams[name]; isStream || s.indices[name] == nil && s.streamTemplate(name) != "" {
		if op != "create" {
			return 0, "", errf(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
		}
		if !isStream {
			if _, _, err := s.dataStream(http.MethodPut, []string{name}); err != nil {
				return 0, "", err.(*apiError)
			}
		}
		backing := s.streams[name]
		name = backing[len(backing)-1]
	}
	ix, ok := s.indices[name]
	if !ok {
		if op == "delete" {
			return 0, "", notFound(name)
		}
		if _, _, err := s.createIndex(name, nil); err != nil {
			return 0, "", err.(*apiError)
		}
		ix = s.indices[name]
	}
	if op != "delete" && src == nil {
		return 0, "", errf(400, "mapper_parsing_exception", "failed to parse")
	}
	if id == "" && op != "delete" {
		id = newID()[:20]
	}
	_, exists := ix.docs[id]
	switch op {
	case "index":
	case "create":
		if exists {
			return 0, "", errf(409, "version_conflict_engine_exception", "[%s]: version conflict, document already exists", id)
		}
	case "update":
		if !exists {
			return 0, "", errf(404, "document_missing_exception", "[%s]: document missing", id)
		}
		var u struct {
			Doc map[string]any `json:"doc"`
		}
		if err := json.Unmarshal(src, &u); err != nil || u.Doc == nil {
			return 0, "", errf(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing")
		}
		var cur map[string]any
		_ = json.Unmarshal(ix.docs[id].source, &cur)
		mergeMap(cur, u.Doc)
		src, _ = json.Marshal(cur)
	case "delete":
		if !exists {
			return 404, "not_found", nil
		}
		delete(ix.docs, id)
		ix.ids = slices.DeleteFunc(ix.ids, func(x string) bool { return x == id })
		return 200, "deleted", nil
	default:
		return 0, "", errf(400, "illegal_argument_exception", "Malformed action/metadata line, expected one of [create, delete, index, update] but found [%s]", op)
	}
	if exists {
		ix.docs[id] = &doc{source: src, seq: ix.docs[id].seq}
		return 200, "updated", nil
	}
	ix.docs[id] = &doc{source: src, seq: int64(len(ix.ids))}
	ix.ids = append(ix.ids, id)
	return 201, "created", nil
}

// searchRequest is the part of a search body the server understands.
type searchRequest struct {
	Query       map[string]json.RawMessage `json:"query"`
	Size        *int                       `json:"size"`
	Sort        json.RawMessage            `json:"sort"`
	SearchAfter []int64                    `json:"search_after"`
	Slice       *struct {
		ID  int `json:"id"`
		Max int `json:"max"`
	} `json:"slice"`
	PIT *struct {
		ID        string `json:"id"`
		KeepAlive string `json:"keep_alive"`
	} `json:"pit"`
}

// search answers _search: match_all or ids, optionally sliced, as a
// scroll (?scroll=), from a point in time (pit in the body, with
// search_after), or a first page.
func (s *Server) search(name string, body []byte, q url.Values) (int, any, error) {
	if err := s.failSearch(); err != nil {
		return 0, nil, err
	}
	var req searchRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, nil, errf(400, "parse_exception", "request body: %v", err)
		}
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	if v := q.Get("size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	var ids map[string]bool
	for k, v := range req.Query {
		switch k {
		case "match_all":
		case "ids":
			var x struct {
				Values []string `json:"values"`
			}
			_ = json.Unmarshal(v, &x)
			ids = map[string]bool{}
			for _, id := range x.Values {
				ids[id] = true
			}
		default:
			return 0, nil, errf(400, "parsing_exception", "the test server answers match_all and ids queries, not [%s]", k)
		}
	}
	if req.Slice != nil && (req.Slice.Max < 2 || req.Slice.ID < 0 || req.Slice.ID >= req.Slice.Max) {
		return 0, nil, errf(400, "illegal_argument_exception", "slice id %d out of [0, %d)", req.Slice.ID, req.Slice.Max)
	}
	var hits []hit
	if req.PIT != nil {
		if name != "" {
			return 0, nil, errf(400, "action_request_validation_exception", "Validation Failed: 1: [indices] cannot be used with point in time;")
		}
		p, ok := s.pits[req.PIT.ID]
		if !ok {
			return 0, nil, errf(404, "search_context_missing_exception", "No search context found for id [%s]", req.PIT.ID)
		}
		hits = p.hits
		if req.Slice != nil {
			key := [2]int{req.Slice.ID, req.Slice.Max}
			if p.slices[key] == nil {
				p.slices[key] = sliceHits(p.hits, key[0], key[1])
			}
			hits = p.slices[key]
		}
	} else {
		target := name
		if target == "" {
			target = "_all"
		}
		ixs := s.match(target)
		if len(ixs) == 0 && name != "" && !strings.Contains(name, "*") {
			return 0, nil, notFound(name)
		}
		for _, ix := range ixs {
			for _, id := range ix.ids {
				hits = append(hits, hit{ix.name, id, ix.docs[id].source, ix.docs[id].seq})
			}
		}
		if req.Slice != nil {
			hits = sliceHits(hits, req.Slice.ID, req.Slice.Max)
		}
	}
	if ids != nil {
		hits = slices.DeleteFunc(slices.Clone(hits), func(h hit) bool { return !ids[h.id] })
	}
	total := len(hits)
	if len(req.SearchAfter) > 0 {
		// Hits are in sort order: a point in time's by _shard_doc.
		after := req.SearchAfter[0]
		hits = hits[sort.Search(len(hits), func(i int) bool { return hits[i].sort > after }):]
	}
	out := map[string]any{"took": 1, "timed_out": false, "_shards": shards()}
	page := hits[:min(size, len(hits))]
	if scroll := q.Get("scroll"); scroll != "" {
		if req.PIT != nil {
			return 0, nil, errf(400, "action_request_validation_exception", "Validation Failed: 1: using [point in time] is not allowed in a scroll context;")
		}
		id := newID()
		s.scrolls[id] = &cursor{hits: hits[len(page):], size: size}
		out["_scroll_id"] = id
	}
	if req.PIT != nil {
		out["pit_id"] = req.PIT.ID
	}
	out["hits"] = s.hitsOut(page, total, req.PIT != nil || len(req.Sort) > 0)
	return 200, out, nil
}

func (s *Server) failSearch() error {
	if s.FailSearchAfter > 0 && s.searches.Add(1) > s.FailSearchAfter {
		return errf(500, "node_closed_exception", "node closed while serving the search")
	}
	return nil
}

// sliceHits are the hits of one slice of max.
func sliceHits(hits []hit, id, max int) []hit {
	var out []hit
	for _, h := range hits {
		if sliceOf(h.id, max) == id {
			out = append(out, h)
		}
	}
	return out
}

// sliceOf is the slice a document falls in: by its id's hash, as
// Elasticsearch slices by _id.
func sliceOf(id string, max int) int {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(max))
}

// hitOut is a hit as the server answers it.
type hitOut struct {
	Index  string          `json:"_index"`
	Type   string          `json:"_type,omitempty"`
	ID     string          `json:"_id"`
	Score  *float64        `json:"_score"`
	Source json.RawMessage `json:"_source"`
	Sort   []int64         `json:"sort,omitempty"`
}

func (s *Server) hitsOut(page []hit, total int, sorted bool) map[string]any {
	one := 1.0
	hs := make([]hitOut, len(page))
	for i, h := range page {
		hs[i] = hitOut{Index: h.index, ID: h.id, Score: &one, Source: h.source}
		if s.flavor.typed() {
			hs[i].Type = "_doc"
		}
		if sorted {
			hs[i].Score = nil
			hs[i].Sort = []int64{h.sort}
		}
	}
	var t any = total
	if s.flavor.Major() >= 7 {
		t = map[string]any{"value": total, "relation": "eq"}
	}
	return map[string]any{"total": t, "max_score": 1.0, "hits": hs}
}

func (s *Server) scroll(method string, body []byte, q url.Values) (int, any, error) {
	var req struct {
		ScrollID any `json:"scroll_id"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, nil, errf(400, "parse_exception", "request body: %v", err)
		}
	}
	if method == http.MethodDelete {
		ids := []string{}
		switch v := req.ScrollID.(type) {
		case string:
			ids = append(ids, v)
		case []any:
			for _, x := range v {
				ids = append(ids, fmt.Sprint(x))
			}
		}
		for _, id := range ids {
			delete(s.scrolls, id)
		}
		return 200, map[string]any{"succeeded": true, "num_freed": len(ids)}, nil
	}
	if err := s.failSearch(); err != nil {
		return 0, nil, err
	}
	id, _ := req.ScrollID.(string)
	if id == "" {
		id = q.Get("scroll_id")
	}
	c, ok := s.scrolls[id]
	if !ok {
		return 0, nil, errf(404, "search_context_missing_exception", "No search context found for id [%s]", id)
	}
	page := c.hits[:min(c.size, len(c.hits))]
	c.hits = c.hits[len(page):]
	return 200, map[string]any{"_scroll_id": id, "took": 1, "timed_out": false, "_shards": shards(),
		"hits": s.hitsOut(page, len(page)+len(c.hits), false)}, nil
}

func (s *Server) openPIT(name, key string) (int, any, error) {
	ixs := s.match(name)
	if len(ixs) == 0 {
		return 0, nil, notFound(name)
	}
	p := &pit{slices: map[[2]int][]hit{}}
	var n int64
	for _, ix := range ixs {
		for _, id := range ix.ids {
			n++
			p.hits = append(p.hits, hit{ix.name, id, ix.docs[id].source, n})
		}
	}
	id := newID()
	s.pits[id] = p
	out := map[string]any{key: id}
	if key == "pit_id" {
		out["_shards"] = shards()
		out["creation_time"] = time.Now().UnixMilli()
	}
	return 200, out, nil
}

func (s *Server) closePIT(body []byte, key string) (int, any, error) {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, errf(400, "parse_exception", "request body: %v", err)
	}
	var ids []string
	switch v := req[key].(type) {
	case string:
		ids = []string{v}
	case []any:
		for _, x := range v {
			ids = append(ids, fmt.Sprint(x))
		}
	}
	for _, id := range ids {
		delete(s.pits, id)
	}
	if key == "pit_id" {
		return 200, map[string]any{"pits": []any{}}, nil
	}
	return 200, map[string]any{"succeeded": true, "num_freed": len(ids)}, nil
}

// Docs returns the documents of index name by id, for tests to compare.
func (s *Server) Docs(name string) map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, ok := s.indices[name]
	if !ok {
		// A data stream: the documents of its backing indices.
		if _, isStream := s.streams[name]; !isStream {
			return nil
		}
		out := map[string]json.RawMessage{}
		for _, ix := range s.match(name) {
			for id, d := range ix.docs {
				out[id] = d.source
			}
		}
		return out
	}
	out := make(map[string]json.RawMessage, len(ix.docs))
	for id, d := range ix.docs {
		out[id] = d.source
	}
	return out
}

// DeleteIndex deletes an index, as another client would.
func (s *Server) DeleteIndex(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.indices, name)
}

// OpenScrolls and OpenPITs count the search contexts left open.
func (s *Server) OpenScrolls() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.scrolls) }

// OpenPITs counts the points in time left open.
func (s *Server) OpenPITs() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pits) }

// composableTemplate serves _index_template and _component_template
// (kind without the underscore) as Elasticsearch 7.8+ does: GET of all or
// of a name or wildcard ({"index_templates": [{"name", "index_template"}]}),
// PUT refusing an index template without index_patterns or composed of a
// component template that does not exist, DELETE.
func (s *Server) composableTemplate(kind, method string, rest []string, body []byte) (int, any, error) {
	if s.composable == nil {
		s.composable = map[string]map[string]json.RawMessage{}
	}
	m := s.composable[kind]
	if m == nil {
		m = map[string]json.RawMessage{}
		s.composable[kind] = m
	}
	name := "*"
	if len(rest) > 0 {
		name = rest[0]
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		list := []map[string]any{}
		for _, n := range slices.Sorted(maps.Keys(m)) {
			if wildcard(name, n) {
				list = append(list, map[string]any{"name": n, kind: m[n]})
			}
		}
		if len(list) == 0 && name != "*" {
			return 0, nil, errf(404, "resource_not_found_exception", "%s matching [%s] not found", strings.ReplaceAll(kind, "_", " "), name)
		}
		return 200, map[string]any{kind + "s": list}, nil
	case http.MethodPut, http.MethodPost:
		if name == "*" {
			return 0, nil, errf(405, "method_not_allowed", "PUT on _%s needs a name", kind)
		}
		var t struct {
			IndexPatterns []string       `json:"index_patterns"`
			ComposedOf    []string       `json:"composed_of"`
			Template      map[string]any `json:"template"`
		}
		if err := json.Unmarshal(body, &t); err != nil {
			return 0, nil, errf(400, "x_content_parse_exception", "request body: %v", err)
		}
		if kind == "index_template" {
			if len(t.IndexPatterns) == 0 {
				return 0, nil, errf(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
			}
			var missing []string
			for _, c := range t.ComposedOf {
				if _, ok := s.composable["component_template"][c]; !ok {
					missing = append(missing, c)
				}
			}
			if len(missing) > 0 {
				return 0, nil, errf(400, "invalid_index_template_exception", "index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, missing)
			}
		} else if t.Template == nil {
			return 0, nil, errf(400, "action_request_validation_exception", "Validation Failed: 1: template is missing;")
		}
		m[name] = json.RawMessage(slices.Clone(body))
		return 200, map[string]any{"acknowledged": true}, nil
	case http.MethodDelete:
		if _, ok := m[name]; !ok {
			return 0, nil, errf(404, "resource_not_found_exception", "%s [%s] missing", kind, name)
		}
		delete(m, name)
		return 200, map[string]any{"acknowledged": true}, nil
	}
	return 0, nil, errf(405, "method_not_allowed", "%s on _%s", method, kind)
}

// streamTemplate returns the index template that makes name a data
// stream, or "": the template that applies to name (the highest priority
// among those whose patterns match) when it has data_stream.
func (s *Server) streamTemplate(name string) string {
	best, prio, stream := "", -1, false
	for tn, raw := range s.composable["index_template"] {
		var t struct {
			IndexPatterns []string        `json:"index_patterns"`
			Priority      int             `json:"priority"`
			DataStream    json.RawMessage `json:"data_stream"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		for _, p := range t.IndexPatterns {
			if wildcard(p, name) && t.Priority > prio {
				best, prio, stream = tn, t.Priority, t.DataStream != nil
			}
		}
	}
	if !stream {
		return ""
	}
	return best
}

// dataStream serves _data_stream: GET of all, a name or a wildcard (with
// Elasticsearch's fields), PUT of a name an index template with
// data_stream matches (its first backing index made, hidden), DELETE
// with its backing indices.
func (s *Server) dataStream(method string, rest []string) (int, any, error) {
	if s.streams == nil {
		s.streams = map[string][]string{}
	}
	name := "*"
	if len(rest) > 0 {
		name = rest[0]
	}
	switch method {
	case http.MethodGet:
		list := []map[string]any{}
		for _, n := range slices.Sorted(maps.Keys(s.streams)) {
			if !wildcard(name, n) {
				continue
			}
			var ixs []map[string]any
			for _, b := range s.streams[n] {
				ixs = append(ixs, map[string]any{"index_name": b, "index_uuid": s.indices[b].uuid})
			}
			list = append(list, map[string]any{"name": n, "timestamp_field": map[string]any{"name": "@timestamp"},
				"indices": ixs, "generation": len(ixs), "status": "GREEN", "template": s.streamTemplate(n), "hidden": false, "system": false})
		}
		if len(list) == 0 && name != "*" {
			return 0, nil, notFound(name)
		}
		return 200, map[string]any{"data_streams": list}, nil
	case http.MethodPut:
		if _, ok := s.streams[name]; ok {
			return 0, nil, errf(400, "resource_already_exists_exception", "data_stream [%s] already exists", name)
		}
		if s.streamTemplate(name) == "" {
			return 0, nil, errf(400, "illegal_argument_exception", "no matching index template found for data stream [%s]", name)
		}
		backing := fmt.Sprintf(".ds-%s-%s-000001", name, time.Now().UTC().Format("2006.01.02"))
		if _, _, err := s.createIndex(backing, []byte(`{"settings":{"index":{"hidden":"true"}}}`)); err != nil {
			return 0, nil, err
		}
		s.streams[name] = []string{backing}
		return 200, map[string]any{"acknowledged": true}, nil
	case http.MethodDelete:
		backing, ok := s.streams[name]
		if !ok {
			return 0, nil, notFound(name)
		}
		for _, b := range backing {
			delete(s.indices, b)
		}
		delete(s.streams, name)
		return 200, map[string]any{"acknowledged": true}, nil
	}
	return 0, nil, errf(405, "method_not_allowed", "%s on _data_stream", method)
}
