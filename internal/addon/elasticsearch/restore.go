package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
)

// maxBulkBytes bounds one bulk request: Elasticsearch's guidance is a few
// MiB, well under http.max_content_length (100 MiB). The memory budget
// may make requests smaller.
const maxBulkBytes int64 = 8 << 20

// Restore implements addon.Driver: the files of each index, in the order
// RestoreOrder gives them (templates, then each index made with its
// settings, mappings and aliases, then the documents of every index), go
// back to the server. A file set Stash's multielasticdump wrote restores
// the same way.
func (d Driver) Restore(ctx context.Context, r addon.Reader) error {
	c, err := newClient(d.Conn)
	if err != nil {
		return err
	}
	if err := c.hello(ctx); err != nil {
		return fmt.Errorf("Elasticsearch at %s: %w", d.Conn.Address(), err)
	}
	var kibana *client
	if d.Dashboard {
		if kibana, err = newKibana(d.Conn); err != nil {
			return err
		}
	}
	rs := &restorer{d: d, c: c, templates: map[string]bool{}}
	parent := ctx
	rs.out = rs.newSender(ctx)
	// A failed request stops the reading too.
	ctx = rs.out.ctx
	dashboards := -1
	err = d.files(ctx, r, func(name string, rd io.Reader) error {
		if name == KibanaFile {
			if kibana == nil {
				return nil
			}
			b, err := io.ReadAll(io.LimitReader(rd, 256<<20))
			if err != nil {
				return err
			}
			dashboards, err = importKibana(ctx, kibana, b)
			return err
		}
		ix, t, ok := ParseFileName(name)
		if !ok {
			slog.Warn("skipping a file that is not of multielasticdump's layout", "file", name)
			return nil
		}
		if ix == "" {
			// Cluster-wide files come first (RestoreOrder).
			switch {
			case t == TypeDataStream:
				return rs.readStreams(rd)
			case !d.Args.Types[t]:
				return nil
			}
			return rs.putComposable(ctx, t, rd)
		}
		if rs.cur == nil || rs.cur.source != ix {
			// The previous index's files are all read: make it
			// (it may have had no data file).
			if rs.cur != nil {
				if err := rs.ensure(ctx); err != nil {
					return err
				}
			}
			rs.cur = rs.pendingFor(ix)
		}
		if !d.Args.Types[t] && !(t == TypeIndex && (d.Args.Types[TypeSettings] || d.Args.Types[TypeMapping])) {
			return nil
		}
		if t == TypeData {
			if err := rs.ensure(ctx); err != nil {
				return err
			}
			return rs.load(rd)
		}
		return rs.meta(ctx, t, rd)
	})
	if err == nil && rs.cur != nil {
		err = rs.ensure(ctx)
	}
	if err = rs.out.close(err); err != nil {
		var r refused
		if errors.As(err, &r) && !rs.loaded {
			rs.undo(parent)
		}
		return err
	}
	if rs.indices == 0 {
		return fmt.Errorf("the snapshot of %s holds no index files (<index>.json, <index>.mapping.json, …)", d.Path)
	}
	if kibana != nil && dashboards < 0 {
		return fmt.Errorf("--enable-dashboard: the snapshot holds no Kibana saved objects (%s): it was taken without --enable-dashboard", KibanaFile)
	}
	if dashboards >= 0 {
		slog.Info("restored Kibana's saved objects", "objects", dashboards)
	}
	slog.Info("restored Elasticsearch", "server", c.server.String(), "indices", rs.indices, "documents", rs.docs.Load())
	return nil
}

// files reads the file set of the snapshot the step chose, under Path or,
// when there is none, under the paths Stash's backups have.
func (d Driver) files(ctx context.Context, r addon.Reader, each func(name string, rd io.Reader) error) error {
	paths := []string{d.Path}
	for _, p := range []string{StashTmpPath, d.InterimDir} {
		if p != "" && !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	var err error
	for _, p := range paths {
		if err = r.Files(ctx, "", p, RestoreOrder, each); !errors.Is(err, addon.ErrNoSnapshot) {
			return err
		}
	}
	return fmt.Errorf("%w (looked under %s)", err, strings.Join(paths, ", "))
}

// restorer is the state of one restore.
type restorer struct {
	d         Driver
	c         *client
	templates map[string]bool // put already
	// streams are the backup's data streams (_data_stream.json): their
	// documents go into a data stream of that name.
	streams map[string]bool
	cur     *pending
	// pending holds every index seen, by name in the snapshot: its data
	// file comes after every index's metadata (RestoreOrder).
	pending map[string]*pending
	// made are the indices and data streams this restore made (their
	// paths); loaded, whether it has written documents.
	made   []string
	loaded bool
	// out sends the documents.
	out *sender
	// br reads every data file in turn, in requests of up to batchBytes.
	br         *bufio.Reader
	batchBytes int64
	indices    int
	docs       atomic.Int64
	// indexTemplates are the cluster's, read when an index is about to
	// be made (and again after a restore put some): one of them may make
	// its name a data stream.
	indexTemplates []indexTemplate
}

// pending is the index whose files are being read: its metadata is
// gathered until the index is made, before its documents.
type pending struct {
	source, target string
	settings       map[string]any
	mappings       map[string]any
	aliases        map[string]json.RawMessage
	made           bool
	// stream: the documents are a data stream's, written with create
	// (the only op a data stream takes) into the stream.
	stream bool
}

// refused is the error of a restore that --existing=refuse stopped.
type refused struct{ msg string }

func (r refused) Error() string { return r.msg }

func refusal(format string, a ...any) error { return refused{fmt.Sprintf(format, a...)} }

// undo removes the indices and data streams a refused restore made before
// it met one that exists: every index is made before any document is
// written (RestoreOrder), so a refusal leaves the cluster as it was.
func (rs *restorer) undo(ctx context.Context) {
	for _, path := range rs.made {
		if _, err := rs.c.do(ctx, http.MethodDelete, path, nil, ""); err != nil {
			slog.Warn("could not remove what the refused restore made", "path", path, "error", err)
		}
	}
}

// pendingFor is the index of the snapshot named ix.
func (rs *restorer) pendingFor(ix string) *pending {
	p, ok := rs.pending[ix]
	if !ok {
		p = &pending{source: ix, target: rs.d.Args.Target(ix), stream: rs.streams[ix]}
		if rs.pending == nil {
			rs.pending = map[string]*pending{}
		}
		rs.pending[ix] = p
	}
	return p
}

// readMetaFile reads a metadata file (name, for errors): the server's
// answer, which elasticdump stores as a JSON string holding it (the
// mapping file holds it as an object).
func readMetaFile(rd io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(rd, 64<<20))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var inner string
		if err := json.Unmarshal(b, &inner); err != nil {
			return nil, fmt.Errorf("%s: not the JSON expected: %w", name, err)
		}
		b = bytes.TrimSpace([]byte(inner))
	}
	return b, nil
}

// meta reads one metadata file of the current index.
func (rs *restorer) meta(ctx context.Context, t string, rd io.Reader) error {
	b, err := readMetaFile(rd, FileName(rs.cur.source, t))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	if t == TypeTemplate {
		return rs.putTemplates(ctx, b)
	}
	var doc map[string]struct {
		Settings map[string]any             `json:"settings"`
		Mappings map[string]any             `json:"mappings"`
		Aliases  map[string]json.RawMessage `json:"aliases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: not the JSON expected: %w", FileName(rs.cur.source, t), err)
	}
	e, ok := doc[rs.cur.source]
	if !ok && len(doc) == 1 {
		// A file of an index dumped through an alias names the index.
		for _, v := range doc {
			e = v
		}
	}
	p := rs.cur
	if e.Settings != nil {
		in, _ := e.Settings["index"].(map[string]any)
		if in == nil {
			in = e.Settings
		}
		for _, k := range settingsExclude {
			deletePath(in, k)
			delete(in, "index."+k)
		}
		if p.settings == nil {
			p.settings = map[string]any{}
		}
		for k, v := range in {
			p.settings[k] = v
		}
	}
	if e.Mappings != nil {
		p.mappings = e.Mappings
	}
	if e.Aliases != nil {
		p.aliases = e.Aliases
	}
	return nil
}

// putTemplates puts the legacy index templates a file holds, each once.
func (rs *restorer) putTemplates(ctx context.Context, b []byte) error {
	var all map[string]map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("%s: not the JSON expected: %w", FileName(rs.cur.source, TypeTemplate), err)
	}
	for name, t := range all {
		if rs.templates[name] {
			continue
		}
		rs.templates[name] = true
		if p, ok := t["template"].(string); ok && t["index_patterns"] == nil {
			// Elasticsearch 5's spelling.
			t["index_patterns"] = []string{p}
			delete(t, "template")
		}
		if rs.systemTemplate(name, t) {
			continue
		}
		if m, ok := t["mappings"].(map[string]any); ok {
			t["mappings"] = rs.mappingFor(m)
		}
		if err := rs.c.call(ctx, http.MethodPut, "/_template/"+url.PathEscape(name), t, nil); err != nil {
			return fmt.Errorf("put index template %s: %w", name, err)
		}
	}
	return nil
}

// readStreams reads the backup's list of data streams.
func (rs *restorer) readStreams(rd io.Reader) error {
	b, err := readMetaFile(rd, ClusterFileName(TypeDataStream))
	if err != nil {
		return err
	}
	var doc struct {
		DataStreams []dataStream `json:"data_streams"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: not the JSON expected: %w", ClusterFileName(TypeDataStream), err)
	}
	rs.streams = map[string]bool{}
	for _, st := range doc.DataStreams {
		rs.streams[st.Name] = true
	}
	return nil
}

// ensureStream makes the current data stream, which its index template
// (restored before it) must match, unless it exists: then --existing says
// whether documents are added to it (those of an id it holds kept) or the
// restore is refused.
func (rs *restorer) ensureStream(ctx context.Context) error {
	p := rs.cur
	path := "/_data_stream/" + url.PathEscape(p.target)
	err := rs.c.call(ctx, http.MethodPut, path, nil, nil)
	switch {
	case err == nil:
		rs.made = append(rs.made, path)
		return nil
	case is(err, 400, "resource_already_exists_exception"):
		if rs.d.Args.Existing == "refuse" {
			return refusal("data stream %s exists already: delete it, restore under another name (--prefix or --suffix, which its index template must match), or give --existing=overwrite to add the documents to it", p.target)
		}
		slog.Warn("data stream exists: the documents are added to it, those of an id it holds kept", "stream", p.target)
		return nil
	}
	return fmt.Errorf("create data stream %s (its index template, which the backup holds when it was the cluster's own, must match the name): %w", p.target, err)
}

// putComposable puts the composable templates of kind t (component or
// index templates) a cluster-wide file holds: elasticdump's file of
// --type=component_template or index_template, the server's answer to
// GET /_<t>. Each is put over one of its name on the server, as a restore
// writes documents over an index's; the ones the server manages are left
// alone (ownComposable).
func (rs *restorer) putComposable(ctx context.Context, t string, rd io.Reader) error {
	b, err := readMetaFile(rd, ClusterFileName(t))
	if err != nil {
		return err
	}
	list, err := parseComposable(t, b)
	if err != nil {
		return fmt.Errorf("%s: %w", ClusterFileName(t), err)
	}
	var put []string
	for _, ct := range list {
		if !ownComposable(rs.d.Args.IncludeHidden, ct) {
			continue
		}
		put = append(put, ct.Name)
		if !rs.c.server.hasComposable() {
			continue
		}
		if err := rs.c.call(ctx, http.MethodPut, "/_"+t+"/"+url.PathEscape(ct.Name), ct.Body, nil); err != nil {
			return fmt.Errorf("put %s %s: %w", strings.ReplaceAll(t, "_", " "), ct.Name, err)
		}
		rs.indexTemplates = nil // read again when needed
	}
	switch {
	case len(put) > 0 && !rs.c.server.hasComposable():
		slog.Warn("composable templates not restored: the server has none (Elasticsearch 7.8 and later have them); the indices are restored without them",
			"server", rs.c.server.String(), "kind", t, "templates", put)
	case len(put) > 0:
		slog.Info("restored composable templates", "kind", t, "templates", len(put))
	}
	return nil
}

// composable is one composable template of a GET /_<kind> answer.
type composable struct {
	Name string
	Body map[string]any
}

// parseComposable reads the server's answer to GET /_<kind>:
// {"<kind>s": [{"name": …, "<kind>": {…}}]}.
func parseComposable(kind string, b []byte) ([]composable, error) {
	var doc map[string][]map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(b), &doc); err != nil {
		return nil, fmt.Errorf("not the JSON expected: %w", err)
	}
	var out []composable
	for _, e := range doc[kind+"s"] {
		var c composable
		if err := json.Unmarshal(e["name"], &c.Name); err != nil || c.Name == "" {
			return nil, errors.New("a template without a name")
		}
		// Numbers kept as written (a version can exceed a float's
		// precision).
		dec := json.NewDecoder(bytes.NewReader(e[kind]))
		dec.UseNumber()
		if err := dec.Decode(&c.Body); err != nil || c.Body == nil {
			return nil, fmt.Errorf("template %s: not the JSON expected", c.Name)
		}
		out = append(out, c)
	}
	return out, nil
}

// ownComposable tells a composable template of the cluster's users: not
// one the server or an integration manages (_meta.managed, as
// Elasticsearch's own logs and metrics templates, which it installs
// itself), nor one serving only hidden indices unless includeHidden.
func ownComposable(includeHidden bool, c composable) bool {
	if meta, _ := c.Body["_meta"].(map[string]any); meta["managed"] == true {
		return false
	}
	return !systemTemplate(includeHidden, c.Name, c.Body)
}

// systemTemplate tells a template that serves only hidden indices (the
// server's own, such as .monitoring-*), left alone unless --include-hidden.
func (rs *restorer) systemTemplate(name string, t map[string]any) bool {
	return systemTemplate(rs.d.Args.IncludeHidden, name, t)
}

func systemTemplate(includeHidden bool, name string, t map[string]any) bool {
	if includeHidden {
		return false
	}
	pats, _ := t["index_patterns"].([]any)
	if len(pats) == 0 {
		return strings.HasPrefix(name, ".")
	}
	for _, p := range pats {
		if s, _ := p.(string); !strings.HasPrefix(s, ".") {
			return false
		}
	}
	return true
}

// mappingFor turns a mapping into the form the server takes: typed
// ({"_doc": {...}}) for Elasticsearch 5 and 6, typeless for the others.
// A mapping of several types (Elasticsearch 5) cannot become typeless.
func (rs *restorer) mappingFor(m map[string]any) map[string]any {
	typed := len(m) == 1
	for k := range m {
		if k == "properties" || k == "dynamic" || k == "_source" || k == "_meta" || k == "dynamic_templates" || k == "_routing" || k == "date_detection" || k == "numeric_detection" {
			typed = false
		}
	}
	switch {
	case rs.c.server.typed() && !typed && len(m) > 0:
		return map[string]any{"_doc": m}
	case !rs.c.server.typed() && typed:
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok {
				return sub
			}
		}
	}
	return m
}

// ensure makes the current index, with the settings, mappings and aliases
// read for it, unless it exists: then --existing says whether its
// documents are written over (its mappings and aliases added to) or the
// restore is refused.
func (rs *restorer) ensure(ctx context.Context) error {
	p := rs.cur
	if p.made {
		return nil
	}
	p.made = true
	rs.indices++
	// Every index is kept until the restore ends; its metadata is not
	// needed once it is made.
	defer func() { p.settings, p.mappings, p.aliases = nil, nil, nil }()
	if p.stream && !rs.c.server.hasDataStreams() {
		slog.Warn("the server has no data streams (Elasticsearch 7.9 and later have them): the stream's documents go into an index of its name", "stream", p.target)
		p.stream = false
	}
	if p.stream {
		return rs.ensureStream(ctx)
	}
	esc := "/" + url.PathEscape(p.target)
	_, err := rs.c.do(ctx, http.MethodHead, esc, nil, "")
	if err != nil && !is(err, 404, "") {
		return fmt.Errorf("look for index %s: %w", p.target, err)
	}
	exists := err == nil
	if rs.c.server.hasDataStreams() {
		// A dump that holds a data stream as an index (multielasticdump's
		// --matchType=datastream lists no streams): where the cluster's
		// index template makes the name a stream, Elasticsearch refuses
		// an index of it, and a stream takes the documents.
		t, err := rs.streamTemplate(ctx, p.target, exists)
		if err != nil {
			return err
		}
		if t != "" {
			slog.Info("restored as a data stream: the cluster's index template makes the name one; its mapping and settings are the template's",
				"stream", p.target, "template", t)
			p.stream = true
			return rs.ensureStream(ctx)
		}
	}
	if exists {
		if rs.d.Args.Existing == "refuse" {
			return refusal("index %s exists already: delete it, restore under another name (--prefix or --suffix in the task's args), or give --existing=overwrite to write the documents over it", p.target)
		}
		slog.Warn("index exists: its documents are written over", "index", p.target)
		if len(p.mappings) > 0 {
			if err := rs.putMapping(ctx, esc, p.mappings); err != nil {
				return fmt.Errorf("index %s exists, and the backup's mapping does not fit it: %w", p.target, err)
			}
		}
		return rs.putAliases(ctx, p)
	}
	body := map[string]any{}
	if len(p.settings) > 0 {
		body["settings"] = map[string]any{"index": p.settings}
	}
	if len(p.mappings) > 0 {
		body["mappings"] = rs.mappingFor(p.mappings)
	}
	if len(p.aliases) > 0 {
		body["aliases"] = p.aliases
	}
	for range 20 {
		err := rs.c.call(ctx, http.MethodPut, esc, body, nil)
		if err == nil {
			rs.made = append(rs.made, esc)
			return nil
		}
		// A setting the server does not know (a backup of another
		// distribution or version: Elasticsearch's data tiers restored
		// into OpenSearch) is dropped, with a warning, rather than
		// failing the restore.
		name := unknownSetting(err)
		if name == "" || !dropSetting(p.settings, name) {
			return fmt.Errorf("create index %s: %w", p.target, err)
		}
		slog.Warn("setting unknown to the server: left out", "index", p.target, "setting", name)
	}
	return fmt.Errorf("create index %s: too many settings the server does not know", p.target)
}

// indexTemplate is what decides whether a composable index template
// makes the names it matches data streams.
type indexTemplate struct {
	Name     string
	Patterns []string
	Priority int
	Stream   bool
}

// streamTemplate returns the cluster's index template that makes name a
// data stream, or "". A name that exists (exists) is a stream only if
// the cluster lists it as one: an index made before its template stays
// an index.
func (rs *restorer) streamTemplate(ctx context.Context, name string, exists bool) (string, error) {
	if rs.indexTemplates == nil {
		var doc struct {
			IndexTemplates []struct {
				Name          string `json:"name"`
				IndexTemplate struct {
					IndexPatterns []string        `json:"index_patterns"`
					Priority      int             `json:"priority"`
					DataStream    json.RawMessage `json:"data_stream"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		var ute *json.UnmarshalTypeError
		switch err := rs.c.call(ctx, http.MethodGet, "/_index_template", nil, &doc); {
		case errors.As(err, &ute):
			// Not Elasticsearch's answer (ZincSearch keeps templates
			// of its own): no template of this server makes streams.
			slog.Warn("the server's index templates are not in Elasticsearch's form: indices are restored as indices", "error", err)
		case err != nil && !is(err, 404, ""):
			return "", fmt.Errorf("read the cluster's index templates (one may make %s a data stream): %w", name, err)
		}
		rs.indexTemplates = []indexTemplate{}
		for _, t := range doc.IndexTemplates {
			it := t.IndexTemplate
			rs.indexTemplates = append(rs.indexTemplates, indexTemplate{Name: t.Name, Patterns: it.IndexPatterns, Priority: it.Priority,
				Stream: len(it.DataStream) > 0 && string(it.DataStream) != "null"})
		}
	}
	t := applyingTemplate(rs.indexTemplates, name)
	if t == nil || !t.Stream {
		return "", nil
	}
	if exists {
		var ds struct {
			DataStreams []dataStream `json:"data_streams"`
		}
		err := rs.c.call(ctx, http.MethodGet, "/_data_stream/"+url.PathEscape(name), nil, &ds)
		if err != nil && !is(err, 404, "") {
			return "", fmt.Errorf("look for data stream %s: %w", name, err)
		}
		if !slices.ContainsFunc(ds.DataStreams, func(d dataStream) bool { return d.Name == name }) {
			return "", nil
		}
	}
	return t.Name, nil
}

// applyingTemplate returns the index template Elasticsearch applies to a
// new index or data stream of name: the highest priority among those with
// a pattern that matches it; nil when none does.
func applyingTemplate(ts []indexTemplate, name string) *indexTemplate {
	var best *indexTemplate
	for i := range ts {
		if (best == nil || ts[i].Priority > best.Priority) && slices.ContainsFunc(ts[i].Patterns, func(p string) bool { return wildcardMatch(p, name) }) {
			best = &ts[i]
		}
	}
	return best
}

// wildcardMatch tells whether name matches pattern, whose * (the only
// wildcard of index patterns) stands for any run of characters.
func wildcardMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(name, mid)
		if i < 0 {
			return false
		}
		name = name[i+len(mid):]
	}
	return strings.HasSuffix(name, parts[len(parts)-1])
}

var unknownSettingRE = regexp.MustCompile(`unknown setting \[([^\]]+)\]`)

// unknownSetting is the setting an "unknown setting [x]" answer names.
func unknownSetting(err error) string {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 {
		return ""
	}
	if m := unknownSettingRE.FindStringSubmatch(ae.Reason); m != nil {
		return m[1]
	}
	return ""
}

// dropSetting removes the setting index.<path> (or <path>), nested or
// flat, from an index's settings, and tells whether it was there.
func dropSetting(settings map[string]any, name string) bool {
	name = strings.TrimPrefix(name, "index.")
	a := deletePath(settings, name)
	b := deletePath(settings, "index."+name)
	return a || b
}

func (rs *restorer) putMapping(ctx context.Context, esc string, m map[string]any) error {
	mm := rs.mappingFor(m)
	if rs.c.server.typed() {
		for typ, sub := range mm {
			if err := rs.c.call(ctx, http.MethodPut, esc+"/_mapping/"+url.PathEscape(typ), sub, nil); err != nil {
				return err
			}
		}
		return nil
	}
	return rs.c.call(ctx, http.MethodPut, esc+"/_mapping", mm, nil)
}

func (rs *restorer) putAliases(ctx context.Context, p *pending) error {
	if len(p.aliases) == 0 {
		return nil
	}
	var actions []any
	for name, opts := range p.aliases {
		add := map[string]any{}
		if len(opts) > 0 {
			_ = json.Unmarshal(opts, &add)
		}
		add["index"], add["alias"] = p.target, name
		actions = append(actions, map[string]any{"add": add})
	}
	if err := rs.c.call(ctx, http.MethodPost, "/_aliases", map[string]any{"actions": actions}, nil); err != nil {
		return fmt.Errorf("add the aliases of %s: %w", p.target, err)
	}
	return nil
}

// batch is one bulk request's documents.
type batch struct {
	body  []byte // action and source lines, two per document
	items int
	ix    *indexLoad
}

// indexLoad is the loading of one index's documents: its requests may
// still be in flight while the next index is made and read.
type indexLoad struct {
	target string
	// stream: the documents are a data stream's (create, and a 409 is a
	// document kept).
	stream bool
	start  time.Time
	docs   atomic.Int64
	// sent counts the index's requests not yet answered.
	sent sync.WaitGroup
}

// sender sends the bulk requests of every index of a restore, Slices at
// once. It outlives each index so that the server is not left idle while
// one index's last requests are answered and the next index is made and
// its first documents read.
type sender struct {
	rs      *restorer
	ctx     context.Context
	cancel  context.CancelCauseFunc
	batches chan *batch
	// workers are the senders; finishing, the indices waiting for their
	// last answers before they are refreshed.
	workers, finishing sync.WaitGroup
}

// newSender starts the restore's senders; close stops them.
func (rs *restorer) newSender(ctx context.Context) *sender {
	s := &sender{rs: rs, batches: make(chan *batch, rs.d.Args.Slices)}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	for range rs.d.Args.Slices {
		s.workers.Go(func() {
			// Every batch queued is taken and marked answered, even
			// after a failure, so that no index waits for it forever.
			for b := range s.batches {
				ix := b.ix
				if s.ctx.Err() == nil {
					if err := rs.send(s.ctx, ix, b); err != nil {
						s.cancel(err)
					} else {
						ix.docs.Add(int64(b.items))
						rs.docs.Add(int64(b.items))
					}
				}
				b.release()
				ix.sent.Done()
			}
		})
	}
	return s
}

// push queues b; it fails once the restore has.
func (s *sender) push(b *batch) error {
	b.ix.sent.Add(1)
	select {
	case s.batches <- b:
		return nil
	case <-s.ctx.Done():
		b.ix.sent.Done()
		b.release()
		return context.Cause(s.ctx)
	}
}

// finish refreshes ix once its last request is answered, so its
// documents can be searched when the restore ends.
func (s *sender) finish(ix *indexLoad) {
	s.finishing.Go(func() {
		ix.sent.Wait()
		if s.ctx.Err() != nil {
			return
		}
		if _, err := s.rs.c.do(s.ctx, http.MethodPost, "/"+url.PathEscape(ix.target)+"/_refresh", nil, ""); err != nil {
			s.cancel(fmt.Errorf("refresh index %s: %w", ix.target, err))
			return
		}
		slog.Info("restored index", "index", ix.target, "documents", ix.docs.Load(), "duration", time.Since(ix.start).Round(time.Millisecond))
	})
}

// close waits for every request and refresh, after cancelling them when
// err (how reading the snapshot ended) is set. It returns the first
// failure: a request's or refresh's, else err.
func (s *sender) close(err error) error {
	if err != nil {
		s.cancel(err)
	}
	close(s.batches)
	s.workers.Wait()
	s.finishing.Wait()
	cause := context.Cause(s.ctx)
	s.cancel(nil)
	if cause != nil {
		return cause
	}
	return err
}

// load reads the documents of a data file into bulk requests of Limit
// documents or maxBulkBytes for the current index, and queues them.
func (rs *restorer) load(rd io.Reader) (err error) {
	p, out := rs.cur, rs.out
	rs.loaded = true
	ix := &indexLoad{target: p.target, stream: p.stream, start: time.Now()}
	if rs.br == nil {
		// Batches queued and in flight (twice the slices) share the
		// memory budget: many slices make smaller requests.
		rs.batchBytes = min(maxBulkBytes, max(memoryBudget()/int64(2*rs.d.Args.Slices), 256<<10))
		rs.br = bufio.NewReaderSize(rd, 1<<20)
	}
	batchBytes, br := rs.batchBytes, rs.br
	br.Reset(rd)
	cur := newBatch()
	cur.ix = ix
	defer func() {
		if cur != nil {
			cur.release()
		}
		if err != nil {
			out.cancel(err)
			return
		}
		out.finish(ix)
	}()
	push := func() error {
		if cur.items == 0 {
			return nil
		}
		b := cur
		cur = nil
		if err := out.push(b); err != nil {
			return err
		}
		cur = newBatch()
		cur.ix = ix
		return nil
	}
	var long []byte // a line longer than br's buffer
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if aerr := rs.appendDoc(cur, p, line); aerr != nil {
				return fmt.Errorf("%s line %d: %w", FileName(p.source, TypeData), lineNo, aerr)
			}
			if cur.items >= rs.d.Args.Limit || int64(len(cur.body)) >= batchBytes {
				if perr := push(); perr != nil {
					return perr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return push()
		}
		if err != nil {
			return err
		}
	}
}

// appendDoc adds one line of a data file to b as a bulk index action.
func (rs *restorer) appendDoc(b *batch, p *pending, line []byte) error {
	h, err := parseLine(line)
	if err != nil {
		return fmt.Errorf("not a document as elasticdump writes one: %w", err)
	}
	body := b.body
	if p.stream {
		body = append(body, `{"create":{"_index":`...)
	} else {
		body = append(body, `{"index":{"_index":`...)
	}
	body = appendString(body, p.target)
	if h.hasID() {
		body = append(body, `,"_id":`...)
		body = h.appendID(body)
	}
	if rs.c.server.typed() {
		typ := h.Type
		if typ == "" {
			typ = "_doc"
		}
		body = append(body, `,"_type":`...)
		body = appendString(body, typ)
	}
	if h.Routing != "" {
		body = append(body, `,"routing":`...)
		body = appendString(body, h.Routing)
	}
	body = append(body, "}}\n"...)
	body = append(body, bytes.TrimSpace(h.Source)...)
	b.body = append(body, '\n')
	b.items++
	return nil
}

// batches are reused: a bulk body is up to maxBulkBytes, and growing a
// fresh one for every request cost more CPU than building its lines.
var batches = sync.Pool{New: func() any { return new(batch) }}

func newBatch() *batch { return batches.Get().(*batch) }

// release hands b back for reuse once its request is done.
func (b *batch) release() {
	b.body, b.items, b.ix = b.body[:0], 0, nil
	batches.Put(b)
}

// bulkRetries and bulkBackoff bound how long a rejected request or item
// is retried: a busy cluster's write queue drains in seconds; one that
// rejects for minutes needs an operator, not more load.
const (
	bulkRetries = 10
	bulkBackoff = 200 * time.Millisecond
	maxBackoff  = 10 * time.Second
)

// send sends one bulk request, retrying what the server rejected for load
// (the whole request with 429 or 503, or single items with 429) with
// backoff. Any other failed item fails the restore with its id.
func (rs *restorer) send(ctx context.Context, ix *indexLoad, b *batch) error {
	target := ix.target
	wait := bulkBackoff
	for attempt := 0; ; attempt++ {
		var (
			retry  *batch
			resErr error
		)
		err := rs.c.send(ctx, http.MethodPost, "/_bulk", b.body, "application/x-ndjson", nil, func(out []byte) error {
			retry, resErr = rs.bulkResult(ix, b, out)
			return nil
		})
		switch {
		case err == nil && resErr != nil:
			return resErr
		case err != nil && (is(err, 429, "") || is(err, 503, "")) && attempt < bulkRetries:
			if serr := sleep(ctx, wait); serr != nil {
				return serr
			}
			wait = min(2*wait, maxBackoff)
			continue
		case err != nil:
			return fmt.Errorf("bulk load into %s: %w", target, err)
		}
		if retry == nil {
			return nil
		}
		if attempt >= bulkRetries {
			return fmt.Errorf("bulk load into %s: document %q still rejected (429) after %d attempts: the cluster is overloaded", target, actionID(retry.body), attempt+1)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, maxBackoff)
		b = retry
	}
}

// bulkResult reads a bulk answer: nil when every item succeeded, a batch
// of the items rejected for load, or an error naming the first item that
// failed otherwise.
func (rs *restorer) bulkResult(ix *indexLoad, b *batch, out []byte) (*batch, error) {
	target := ix.target
	type result struct {
		Status int             `json:"status"`
		Error  json.RawMessage `json:"error"`
	}
	var res struct {
		Errors bool `json:"errors"`
		// Each item is keyed by its op: index, or create for a data
		// stream's.
		Items []map[string]result `json:"items"`
	}
	if i := bytes.Index(out[:min(len(out), 128)], []byte(`"errors":false`)); i >= 0 {
		// Nothing failed: count the items rather than decode them,
		// which was most of the CPU a restore spent on answers.
		if n := bytes.Count(out, []byte(`"status":`)); n != b.items {
			return nil, fmt.Errorf("bulk load into %s: %d documents sent, %d results", target, b.items, n)
		}
		return nil, nil
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("bulk load into %s: the answer is not the JSON expected: %w", target, err)
	}
	if len(res.Items) != b.items {
		return nil, fmt.Errorf("bulk load into %s: %d documents sent, %d results", target, b.items, len(res.Items))
	}
	if !res.Errors {
		return nil, nil
	}
	lines := bytes.SplitAfter(b.body, []byte("\n"))
	retry := &batch{}
	for i, item := range res.Items {
		for _, r := range item {
			switch {
			case r.Status < 300:
			case r.Status == 409 && ix.stream:
				// A data stream takes only create: a document of
				// that id is there already, and is kept.
			case r.Status == 429:
				retry.body = append(retry.body, lines[2*i]...)
				retry.body = append(retry.body, lines[2*i+1]...)
				retry.items++
			default:
				var e struct{ Type, Reason string }
				_ = json.Unmarshal(r.Error, &e)
				return nil, fmt.Errorf("index %s, document %q: HTTP %d %s: %s", target, actionID(lines[2*i]), r.Status, e.Type, bulkReason(e.Reason))
			}
		}
	}
	if retry.items == 0 {
		return nil, nil
	}
	return retry, nil
}

// bulkReason is the server's reason for rejecting a document, as the
// session's status, its events and output.json may show it: without the
// values of the document it quotes (a mapping error's "Preview of field's
// value: '…'", the bytes of an immense term).
func bulkReason(reason string) string {
	if i := strings.Index(reason, "Preview of field's value"); i >= 0 {
		reason = strings.TrimRight(reason[:i], " .")
	}
	return dump.RedactTail(reason)
}

// actionID is the _id of the bulk action line that starts b, "" when it
// names none: batches keep no ids beside their bodies, since an id is
// needed only to name a document that failed.
func actionID(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	var a map[string]struct {
		ID string `json:"_id"`
	}
	if json.Unmarshal(line, &a) != nil {
		return ""
	}
	for _, v := range a {
		return v.ID
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
