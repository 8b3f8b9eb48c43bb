package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
)

// settingsExclude are the settings only the server sets: a dump leaves
// them out, as elasticdump does, so that the settings load back into any
// cluster.
var settingsExclude = []string{"version", "creation_date", "uuid", "provided_name", "resize", "routing.allocation.initial_recovery"}

// indexInfo is one index to back up.
type indexInfo struct {
	Name    string
	Aliases []string
}

// Backup implements addon.Driver: every selected index becomes its files
// of multielasticdump's layout in one directory snapshot of the interim
// data directory's path, streamed straight into the repository.
func (d Driver) Backup(ctx context.Context, w addon.Writer) error {
	c, err := newClient(d.Conn)
	if err != nil {
		return err
	}
	if err := c.hello(ctx); err != nil {
		return &dump.NoOutputError{Err: fmt.Errorf("Elasticsearch at %s: %w", d.Conn.Address(), err)}
	}
	indices, err := d.listIndices(ctx, c)
	if err != nil {
		return err
	}
	streams, err := d.listDataStreams(ctx, c)
	if err != nil {
		return err
	}
	if len(indices) == 0 && len(streams) == 0 {
		return fmt.Errorf("%s at %s has no index to back up (hidden and system indices are left out unless --include-hidden is given; --match and --exclude select)", c.server, d.Conn.Address())
	}
	slog.Info("backing up Elasticsearch", "server", c.server.String(), "indices", len(indices), "data streams", len(streams))
	var kibana []byte
	if d.Dashboard {
		k, err := newKibana(d.Conn)
		if err != nil {
			return err
		}
		if kibana, err = exportKibana(ctx, k); err != nil {
			return err
		}
	}
	var templates []byte
	if d.Args.Types[TypeTemplate] {
		if templates, err = c.do(ctx, http.MethodGet, "/_template", nil, ""); err != nil {
			return fmt.Errorf("read the index templates: %w", err)
		}
	}
	cluster, err := d.clusterTemplates(ctx, c)
	if err != nil {
		return err
	}
	if len(streams) > 0 {
		b, err := json.Marshal(map[string]any{"data_streams": streams})
		if err != nil {
			return err
		}
		if cluster[TypeDataStream], err = fileLine(TypeDataStream, b); err != nil {
			return err
		}
	}
	return w.Files(ctx, "", d.Path, func(ctx context.Context, add addon.AddFile) error {
		for _, t := range clusterFiles {
			if line, ok := cluster[t]; ok {
				if err := add(ClusterFileName(t), func(w io.Writer) error { _, err := w.Write(line); return err }); err != nil {
					return err
				}
			}
		}
		if kibana != nil {
			if err := add(KibanaFile, func(w io.Writer) error { _, err := w.Write(kibana); return err }); err != nil {
				return err
			}
		}
		// The next index's metadata is read while this one's documents
		// are: three requests an index, which waited one after another
		// between the scans.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		fetch := func(ix indexInfo) <-chan indexMeta {
			ch := make(chan indexMeta, 1)
			go func() { ch <- d.readIndexMeta(ctx, c, ix, templates) }()
			return ch
		}
		var next <-chan indexMeta
		if len(indices) > 0 {
			next = fetch(indices[0])
		}
		for i, ix := range indices {
			m := <-next
			if i+1 < len(indices) {
				next = fetch(indices[i+1])
			}
			if err := d.backupIndex(ctx, c, ix, m, add); err != nil {
				return fmt.Errorf("index %s: %w", ix.Name, err)
			}
		}
		for _, st := range streams {
			if err := d.backupStream(ctx, c, st.Name, add); err != nil {
				return fmt.Errorf("data stream %s: %w", st.Name, err)
			}
		}
		return nil
	})
}

// clusterTemplates reads the composable templates (component, then
// index) the args select, each kind as the line of its file: the
// server's answer with only the users' own templates (ownComposable). A
// kind with none has no file, so that a backup of a cluster without
// templates of its own is exactly the file set multielasticdump loads
// (which reads every file of the directory as an index's). A server
// before Elasticsearch 7.8 has none.
func (d Driver) clusterTemplates(ctx context.Context, c *client) (map[string][]byte, error) {
	out := map[string][]byte{}
	if !c.server.hasComposable() {
		return out, nil
	}
	for _, t := range templateKinds {
		if !d.Args.Types[t] {
			continue
		}
		kind := strings.ReplaceAll(t, "_", " ")
		body, err := c.do(ctx, http.MethodGet, "/_"+t, nil, "")
		if err != nil {
			return nil, fmt.Errorf("read the %ss: %w", kind, err)
		}
		all, err := parseComposable(t, body)
		if err != nil {
			return nil, fmt.Errorf("the %ss: %w", kind, err)
		}
		keep := []map[string]any{}
		for _, ct := range all {
			if ownComposable(d.Args.IncludeHidden, ct) {
				keep = append(keep, map[string]any{"name": ct.Name, t: ct.Body})
			}
		}
		if len(keep) == 0 {
			continue
		}
		b, err := json.Marshal(map[string]any{t + "s": keep})
		if err != nil {
			return nil, err
		}
		if out[t], err = fileLine(t, b); err != nil {
			return nil, fmt.Errorf("the %ss: %w", kind, err)
		}
	}
	return out, nil
}

// dataStream is a data stream as the backup records it.
type dataStream struct {
	Name           string          `json:"name"`
	TimestampField json.RawMessage `json:"timestamp_field,omitempty"`
	Template       string          `json:"template,omitempty"`
}

// listDataStreams lists the data streams the args select (by name, as
// multielasticdump's --matchType=datastream does), in name order. Their
// backing indices are hidden, so listIndices leaves them out: without
// this a backup of a cluster writing logs into data streams would hold
// none of them. Hidden and system streams are left out unless
// --include-hidden. Without --includeType data, there is nothing of a
// stream to keep (its mappings and settings are its index template's).
func (d Driver) listDataStreams(ctx context.Context, c *client) ([]dataStream, error) {
	if !c.server.hasDataStreams() || !d.Args.Types[TypeData] || !d.Args.MatchTypes["datastream"] {
		return nil, nil
	}
	var res struct {
		DataStreams []struct {
			dataStream
			Hidden bool `json:"hidden"`
			System bool `json:"system"`
		} `json:"data_streams"`
	}
	if err := c.call(ctx, http.MethodGet, "/_data_stream", nil, &res); err != nil {
		return nil, fmt.Errorf("list the data streams: %w", err)
	}
	var out []dataStream
	for _, st := range res.DataStreams {
		if d.Args.Selected(st.Name, nil, st.Hidden || st.System) {
			out = append(out, st.dataStream)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// backupStream adds the documents of a data stream, read through its name
// (every backing index), as <stream>.json.
func (d Driver) backupStream(ctx context.Context, c *client, name string, add addon.AddFile) error {
	start := time.Now()
	cw := &countingWriter{}
	err := add(FileName(name, TypeData), func(w io.Writer) error {
		cw.w = w
		return d.dumpDocuments(ctx, c, name, cw)
	})
	if err == nil {
		slog.Info("backed up data stream", "stream", name, "documents", cw.lines, "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// listIndices lists the indices the args select, in name order (none
// with --matchType=datastream).
func (d Driver) listIndices(ctx context.Context, c *client) ([]indexInfo, error) {
	if !d.Args.MatchTypes["alias"] {
		return nil, nil
	}
	var all map[string]struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}
	if err := c.call(ctx, http.MethodGet, "/_aliases?expand_wildcards=all", nil, &all); err != nil {
		return nil, fmt.Errorf("list the indices: %w", err)
	}
	var hidden map[string]struct {
		Settings struct {
			Index struct {
				Hidden string `json:"hidden"`
			} `json:"index"`
		} `json:"settings"`
	}
	if !d.Args.IncludeHidden && (c.server.OpenSearch || c.server.Major >= 7) {
		// index.hidden exists since Elasticsearch 7.7; older servers
		// answer this with the indices' settings, none hidden.
		if err := c.call(ctx, http.MethodGet, "/_all/_settings/index.hidden?expand_wildcards=all", nil, &hidden); err != nil && !is(err, 400, "") {
			return nil, fmt.Errorf("read which indices are hidden: %w", err)
		}
	}
	var out []indexInfo
	for name, v := range all {
		var aliases []string
		for a := range v.Aliases {
			aliases = append(aliases, a)
		}
		sort.Strings(aliases)
		if d.Args.Selected(name, aliases, hidden[name].Settings.Index.Hidden == "true") {
			out = append(out, indexInfo{Name: name, Aliases: aliases})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// backupIndex adds the files of one index: its metadata first (small),
// then its documents.
func (d Driver) backupIndex(ctx context.Context, c *client, ix indexInfo, meta indexMeta, add addon.AddFile) error {
	switch {
	case meta.err != nil:
		return meta.err
	case meta.gone:
		slog.Warn("index deleted during the backup: left out", "index", ix.Name)
		return nil
	}
	for _, t := range metaTypes {
		if line, ok := meta.lines[t]; ok {
			if err := add(FileName(ix.Name, t), func(w io.Writer) error { _, err := w.Write(line); return err }); err != nil {
				return err
			}
		}
	}
	if !d.Args.Types[TypeData] {
		return nil
	}
	start := time.Now()
	cw := &countingWriter{w: nil}
	err := add(FileName(ix.Name, TypeData), func(w io.Writer) error {
		cw.w = w
		return d.dumpDocuments(ctx, c, ix.Name, cw)
	})
	if err == nil {
		slog.Info("backed up index", "index", ix.Name, "documents", cw.lines, "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// indexMeta is an index's metadata files, each as its one line.
type indexMeta struct {
	lines map[string][]byte
	// gone: the index was deleted since the listing.
	gone bool
	err  error
}

// metaTypes are the metadata files of an index, in the order they are
// added to the backup.
var metaTypes = []string{TypeTemplate, TypeSettings, TypeMapping, TypeAlias}

// readIndexMeta reads the metadata files of ix the args select. Every one
// is read before any is added: an index deleted since the listing (a
// rolled-over log index) is left out whole.
func (d Driver) readIndexMeta(ctx context.Context, c *client, ix indexInfo, templates []byte) indexMeta {
	esc := "/" + url.PathEscape(ix.Name)
	paths := map[string]string{
		TypeSettings: esc + "/_settings",
		TypeMapping:  esc + "/_mapping",
		TypeAlias:    esc + "/_alias/*",
	}
	out := indexMeta{lines: map[string][]byte{}}
	for _, t := range metaTypes {
		if !d.Args.Types[t] {
			continue
		}
		body := templates
		if path := paths[t]; path != "" {
			var err error
			if body, err = c.do(ctx, http.MethodGet, path, nil, ""); err != nil {
				switch {
				case vanished(err):
					return indexMeta{gone: true}
				case t == TypeAlias && is(err, 404, ""):
					// An index without aliases answers 404 on some
					// versions.
					body = []byte(`{"` + ix.Name + `":{"aliases":{}}}`)
				default:
					return indexMeta{err: fmt.Errorf("read its %s: %w", t, err)}
				}
			}
		}
		if t == TypeSettings {
			var err error
			if body, err = dropReadOnly(ix.Name)(body); err != nil {
				return indexMeta{err: fmt.Errorf("its %s: %w", t, err)}
			}
		}
		line, err := fileLine(t, body)
		if err != nil {
			return indexMeta{err: fmt.Errorf("its %s: %w", t, err)}
		}
		out.lines[t] = line
	}
	return out
}

// fileLine is a metadata file's one line as elasticdump writes it: the
// mapping as a JSON object, the others (settings, aliases, templates) as
// a JSON string holding the server's answer, which is how elasticdump's
// file output stores an answer it passes on unparsed.
func fileLine(t string, body []byte) ([]byte, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, bytes.TrimSpace(body)); err != nil {
		return nil, fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	out := compact.Bytes()
	if t != TypeMapping {
		var err error
		if out, err = json.Marshal(compact.String()); err != nil {
			return nil, err
		}
	}
	return append(out, '\n'), nil
}

// countingWriter counts the bytes and lines (documents) of a data file.
type countingWriter struct {
	w        io.Writer
	n, lines int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
	return n, err
}

// vanished tells the answer about an index that no longer exists.
func vanished(err error) bool { return is(err, 404, "index_not_found_exception") }

// dropReadOnly removes settingsExclude from the settings of index name.
func dropReadOnly(name string) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		var all map[string]map[string]map[string]any
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, fmt.Errorf("the settings are not the JSON expected: %w", err)
		}
		if ix := all[name]["settings"]; ix != nil {
			if in, ok := ix["index"].(map[string]any); ok {
				for _, k := range settingsExclude {
					deletePath(in, k)
				}
			}
		}
		return json.Marshal(all)
	}
}

// deletePath deletes the setting path ("a.b.c") from m, nested or in its
// flat spelling, and tells whether it was there.
func deletePath(m map[string]any, path string) bool {
	_, found := m[path]
	delete(m, path) // the flat spelling
	head, rest, nested := cutDot(path)
	if !nested {
		return found
	}
	if sub, ok := m[head].(map[string]any); ok {
		if deletePath(sub, rest) {
			found = true
		}
		if len(sub) == 0 {
			delete(m, head)
		}
	}
	return found
}

func cutDot(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// hit is one document as a search returns it and a data file holds it.
type hit struct {
	Index, Type, ID, Routing string
	Source, Sort             []byte // JSON, as the server answered
}

// appendLine appends h to buf as a line of a data file, in elasticdump's
// shape: the source as the server stored it, compacted only when it
// spans lines (a document indexed pretty-printed), so that each document
// stays one line without being encoded again.
func appendLine(buf *bytes.Buffer, h *hit) error {
	buf.WriteString(`{"_index":`)
	writeString(buf, h.Index)
	if h.Type != "" {
		buf.WriteString(`,"_type":`)
		writeString(buf, h.Type)
	}
	buf.WriteString(`,"_id":`)
	writeString(buf, h.ID)
	buf.WriteString(`,"_score":1`)
	if h.Routing != "" {
		buf.WriteString(`,"_routing":`)
		writeString(buf, h.Routing)
	}
	buf.WriteString(`,"_source":`)
	if bytes.ContainsAny(h.Source, "\r\n") {
		if err := json.Compact(buf, h.Source); err != nil {
			return fmt.Errorf("document %q: its _source: %w", h.ID, err)
		}
	} else {
		buf.Write(h.Source)
	}
	buf.WriteString("}\n")
	return nil
}

// writeString writes s as a JSON string.
func writeString(buf *bytes.Buffer, s string) {
	buf.Write(appendString(buf.AvailableBuffer(), s))
}

// appendString appends s to dst as a JSON string.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// search posts a search or scroll request, reads its answer with
// parseSearch and hands its hits to emit while the answer's buffer holds
// them: copying each document out of it cost more than writing it.
func (c *client) search(ctx context.Context, path string, body any, emit func([]hit) error) (searchResult, error) {
	var r searchResult
	err := c.send(ctx, http.MethodPost, path, body, "", nil, func(b []byte) error {
		p, err := parseSearch(b)
		if err != nil {
			return fmt.Errorf("POST %s: the answer is not the JSON expected: %w", path, err)
		}
		r = searchResult{ScrollID: p.ScrollID, PITID: p.PITID, N: len(p.Hits)}
		if len(p.Hits) == 0 {
			return nil
		}
		r.LastSort = bytes.Clone(p.Hits[len(p.Hits)-1].Sort)
		return emit(p.Hits)
	})
	return r, err
}

type searchResult struct {
	ScrollID, PITID string
	Hits            []hit  // parseSearch's; search hands them to emit instead
	N               int    // how many hits the page held
	LastSort        []byte // the sort values of its last hit
}

// dumpDocuments writes every document of index to w, one JSON object per
// line, reading Slices slices at once: from a point in time where the
// server has one (a consistent view, search_after pages), else from a
// sliced scroll.
func (d Driver) dumpDocuments(ctx context.Context, c *client, index string, w io.Writer) error {
	// Pages go to one writer through a queue of a few pages, so that
	// the slices go on reading while the repository takes a page, and a
	// page's lines are built by the slice that read it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *bytes.Buffer, 2*d.Args.Slices)
	budget := memoryBudget()
	held := semaphore.NewWeighted(budget)
	written := make(chan error, 1)
	go func() {
		var err error
		for b := range queue {
			if err == nil {
				if _, err = w.Write(b.Bytes()); err != nil {
					cancel()
				}
			}
			held.Release(min(int64(b.Len()), budget))
			pages.Put(b)
		}
		written <- err
	}()
	emit := func(hits []hit) error {
		b := pages.Get().(*bytes.Buffer)
		b.Reset()
		for i := range hits {
			if err := appendLine(b, &hits[i]); err != nil {
				pages.Put(b)
				return err
			}
		}
		// Pages wait for the repository within the memory budget.
		if err := held.Acquire(ctx, min(int64(b.Len()), budget)); err != nil {
			pages.Put(b)
			return err
		}
		select {
		case queue <- b:
			return nil
		case <-ctx.Done():
			held.Release(min(int64(b.Len()), budget))
			pages.Put(b)
			return ctx.Err()
		}
	}
	slices := d.Args.Slices
	keep := strconv.Itoa(int(d.Args.KeepAlive.Seconds())) + "s"
	var err error
	switch c.server.pitKind() {
	case "es", "os":
		err = d.dumpPIT(ctx, c, index, slices, keep, emit)
	default:
		err = d.dumpScroll(ctx, c, index, slices, keep, emit)
	}
	close(queue)
	if werr := <-written; werr != nil {
		return werr
	}
	return err
}

// pages are the buffers a page of lines is built in.
var pages = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// gone is nil, with a warning, when err says the index was deleted before
// its documents were read (its data file stays empty), else err with what
// was being done.
func gone(index string, err error, doing string) error {
	if vanished(err) {
		slog.Warn("index deleted during the backup: its documents are left out", "index", index)
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func sliceBody(q map[string]any, id, max int) map[string]any {
	if max > 1 {
		q["slice"] = map[string]int{"id": id, "max": max}
	}
	return q
}

func (d Driver) dumpScroll(ctx context.Context, c *client, index string, slices int, keep string, emit func([]hit) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for s := range slices {
		g.Go(func() error {
			ids := []string{}
			defer func() {
				// A scroll left open holds the server's resources
				// until it times out: free it even when the dump
				// failed.
				if len(ids) > 0 {
					_ = c.call(context.WithoutCancel(ctx), http.MethodDelete, "/_search/scroll", map[string]any{"scroll_id": ids}, nil)
				}
			}()
			path := "/" + url.PathEscape(index) + "/_search?scroll=" + keep
			var body any = sliceBody(map[string]any{"size": d.Args.Limit, "sort": []string{"_doc"}}, s, slices)
			for first := true; ; first = false {
				var emitErr error
				r, err := c.search(gctx, path, body, func(h []hit) error {
					emitErr = emit(h)
					return emitErr
				})
				if r.ScrollID != "" && (len(ids) == 0 || ids[len(ids)-1] != r.ScrollID) {
					ids = append(ids, r.ScrollID)
				}
				switch {
				case emitErr != nil:
					return emitErr
				case err != nil && first:
					return gone(index, err, "open a scroll")
				case err != nil:
					return fmt.Errorf("read the scroll: %w", err)
				case r.N == 0:
					return nil
				case r.ScrollID == "":
					return errors.New("the server answered a scroll without a scroll id")
				}
				path, body = "/_search/scroll", map[string]any{"scroll": keep, "scroll_id": r.ScrollID}
			}
		})
	}
	return g.Wait()
}

func (d Driver) dumpPIT(ctx context.Context, c *client, index string, slices int, keep string, emit func([]hit) error) error {
	var pitID string
	esc := "/" + url.PathEscape(index)
	if c.server.pitKind() == "os" {
		var r struct {
			PITID string `json:"pit_id"`
		}
		if err := c.call(ctx, http.MethodPost, esc+"/_search/point_in_time?keep_alive="+keep, nil, &r); err != nil {
			return gone(index, err, "open a point in time")
		}
		pitID = r.PITID
		defer c.call(context.WithoutCancel(ctx), http.MethodDelete, "/_search/point_in_time", map[string]any{"pit_id": []string{pitID}}, nil) //nolint:errcheck
	} else {
		var r struct {
			ID string `json:"id"`
		}
		if err := c.call(ctx, http.MethodPost, esc+"/_pit?keep_alive="+keep, nil, &r); err != nil {
			return gone(index, err, "open a point in time")
		}
		pitID = r.ID
		defer c.call(context.WithoutCancel(ctx), http.MethodDelete, "/_pit", map[string]any{"id": pitID}, nil) //nolint:errcheck
	}
	if pitID == "" {
		return errors.New("the server opened a point in time without an id")
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for s := range slices {
		g.Go(func() error {
			var after json.RawMessage
			for {
				mu.Lock()
				id := pitID
				mu.Unlock()
				body := sliceBody(map[string]any{
					"size": d.Args.Limit, "pit": map[string]string{"id": id, "keep_alive": keep},
					"sort": []map[string]string{{"_shard_doc": "asc"}}, "track_total_hits": false,
				}, s, slices)
				if after != nil {
					body["search_after"] = after
				}
				var emitErr error
				r, err := c.search(gctx, "/_search", body, func(h []hit) error {
					emitErr = emit(h)
					return emitErr
				})
				if emitErr != nil {
					return emitErr
				}
				if err != nil {
					return fmt.Errorf("search the point in time: %w", err)
				}
				if r.PITID != "" {
					// The id may change between pages; the
					// latest is the one to use and to close.
					mu.Lock()
					pitID = r.PITID
					mu.Unlock()
				}
				if r.N == 0 {
					return nil
				}
				after = r.LastSort
				if len(after) == 0 {
					return errors.New("the server answered a point-in-time search without sort values")
				}
				if r.N < d.Args.Limit {
					return nil
				}
			}
		})
	}
	return g.Wait()
}
