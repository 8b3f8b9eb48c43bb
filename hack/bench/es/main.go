// Command es measures the Elasticsearch addon against the server's own
// floor, and against elasticdump: a backup (backup-es's driver into a
// local repository) against a sliced point-in-time scan of every index
// into nothing, with the same slices and page size; a restore
// (restore-es's driver from that repository) against _bulk of the same
// documents, held in memory, with the same requests in flight. The server
// is internal/testserver/elastic imitating Elasticsearch 7.17: no
// Elasticsearch can be had here, so the floor is that server's, and the
// ratio is what the addon adds to it. With -elasticdump, multielasticdump
// (bin/elasticdump, hack/install-servers.sh) dumps and loads the same
// indices once, for comparison.
//
//	go run ./hack/bench/es -docs 200000 -rounds 3 -elasticdump
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/hack/bench/benchprof"
	"github.com/stash-backup/stash/hack/bench/benchtb"
	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/addon/elasticsearch"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver/elastic"
)

const (
	limit   = 1000
	nSlices = 4
)

func main() {
	docs := flag.Int("docs", 200000, "documents, spread over -indices")
	nix := flag.Int("indices", 4, "indices")
	rounds := flag.Int("rounds", 3, "rounds; medians are reported")
	ed := flag.Bool("elasticdump", false, "time multielasticdump's dump and load once")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the backups and restores (and the server) to this file")
	flag.Parse()
	stop, err := benchprof.Start(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := run(*docs, *nix, *rounds, *ed); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	srv     *elastic.Server
	indices []string
	bulk    [][]byte // NDJSON bulk bodies of limit documents each
}

func (b *bench) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("%s %s: HTTP %d: %.300s", method, path, resp.StatusCode, out)
	}
	return out, err
}

// load bulk-loads every index from memory, slices requests at once.
func (b *bench) load(ctx context.Context) (time.Duration, error) {
	for _, ix := range b.indices {
		_, _ = b.call(ctx, "DELETE", "/"+ix, nil)
		if _, err := b.call(ctx, "PUT", "/"+ix, []byte(`{"settings":{"number_of_shards":1},"mappings":{"properties":{"name":{"type":"keyword"},"at":{"type":"date"}}}}`)); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(nSlices)
	for _, body := range b.bulk {
		g.Go(func() error {
			out, err := b.call(gctx, "POST", "/_bulk", body)
			if err == nil && bytes.Contains(out[:min(len(out), 64)], []byte(`"errors":true`)) {
				err = fmt.Errorf("bulk errors: %.300s", out)
			}
			return err
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// scan reads every index through a point in time in slices, as backup-es
// does, and keeps nothing but each page's last sort value.
func (b *bench) scan(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for _, ix := range b.indices {
		var p struct{ ID string }
		out, err := b.call(ctx, "POST", "/"+ix+"/_pit?keep_alive=5m", nil)
		if err != nil {
			return 0, err
		}
		if err := json.Unmarshal(out, &p); err != nil {
			return 0, err
		}
		g, gctx := errgroup.WithContext(ctx)
		for s := range nSlices {
			g.Go(func() error {
				var after json.RawMessage
				for {
					q := map[string]any{"size": limit, "pit": map[string]string{"id": p.ID, "keep_alive": "5m"},
						"sort": []map[string]string{{"_shard_doc": "asc"}}, "slice": map[string]int{"id": s, "max": nSlices}, "track_total_hits": false}
					if after != nil {
						q["search_after"] = after
					}
					body, _ := json.Marshal(q)
					out, err := b.call(gctx, "POST", "/_search", body)
					if err != nil {
						return err
					}
					var r struct {
						Hits struct {
							Hits []struct {
								Sort json.RawMessage `json:"sort"`
							} `json:"hits"`
						} `json:"hits"`
					}
					if err := json.Unmarshal(out, &r); err != nil {
						return err
					}
					h := r.Hits.Hits
					if len(h) == 0 {
						return nil
					}
					after = h[len(h)-1].Sort
					if len(h) < limit {
						return nil
					}
				}
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		_, _ = b.call(ctx, "DELETE", "/_pit", []byte(`{"id":"`+p.ID+`"}`))
	}
	return time.Since(start), nil
}

func run(n, nix, rounds int, ed bool) error {
	ctx := context.Background()
	t := benchtb.New("esbench")
	defer t.Stop()
	srv := elastic.Start(t, elastic.ES7)
	b := &bench{srv: srv}
	var total int
	for i := range nix {
		b.indices = append(b.indices, fmt.Sprintf("bench-%d", i))
	}
	// One bulk body per request of limit documents, index by index.
	cur := make([][]byte, nix)
	for i := range n {
		ix := i % nix
		doc, _ := json.Marshal(map[string]any{
			"name": fmt.Sprintf("customer %d", i), "email": fmt.Sprintf("c%d@example.com", i),
			"balance": float64(i%100000) / 7, "at": time.Unix(1700000000+int64(i), 0).UTC().Format(time.RFC3339),
			"tags": []any{"a", "b", i % 50}, "note": strings.Repeat(strconv.FormatInt(int64(i)*2654435761, 16), 12),
		})
		total += len(doc)
		cur[ix] = fmt.Appendf(cur[ix], "{\"index\":{\"_index\":%q,\"_id\":\"%d\"}}\n%s\n", b.indices[ix], i, doc)
		if (i/nix+1)%limit == 0 {
			b.bulk = append(b.bulk, cur[ix])
			cur[ix] = nil
		}
	}
	for ix := range nix {
		if len(cur[ix]) > 0 {
			b.bulk = append(b.bulk, cur[ix])
		}
	}
	if _, err := b.load(ctx); err != nil {
		return err
	}
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	args, err := elasticsearch.ParseArgs([]string{"--limit=" + strconv.Itoa(limit), "--parallel=" + strconv.Itoa(nSlices), "--match=^bench-"})
	if err != nil {
		return err
	}
	d := elasticsearch.Driver{Options: elasticsearch.Options{Conn: &appbinding.Connection{Scheme: "http", Host: u.Hostname(), Port: port},
		Path: elasticsearch.DefaultPath, Args: args}}
	var tScan, tBackup, tBulk, tRestore []time.Duration
	var cScan, cBackup, cBulk, cRestore []time.Duration // CPU of the process: server and client
	for r := range rounds {
		c0 := cpu()
		dt, err := b.scan(ctx)
		if err != nil {
			return err
		}
		tScan = append(tScan, dt)
		cScan = append(cScan, cpu()-c0)
		dir := filepath.Join(t.TempDir(), fmt.Sprint("repo", r))
		repo, err := repository.OpenOrInit(ctx, repository.Options{Location: &location.Location{Kind: location.KindLocal,
			Filesystem: &filesystem.Options{Path: dir}}, Password: "bench"})
		if err != nil {
			return err
		}
		start, c0 := time.Now(), cpu()
		var st *repository.SnapshotStats
		// Labels mark the client's goroutines (the server's are not its
		// children) in a profile: go tool pprof -tagfocus=phase=backup.
		pprof.Do(ctx, pprof.Labels("phase", "backup"), func(ctx context.Context) {
			st, err = addontest.Backup(ctx, repo, d, repository.BackupOptions{Host: "host-0"})
		})
		if err != nil {
			return err
		}
		tBackup = append(tBackup, time.Since(start))
		cBackup = append(cBackup, cpu()-c0)
		snap, err := repo.Resolve(ctx, st.Name, repository.Filter{})
		if err != nil {
			return err
		}
		c0 = cpu()
		if dt, err = b.load(ctx); err != nil {
			return err
		}
		tBulk = append(tBulk, dt)
		cBulk = append(cBulk, cpu()-c0)
		for _, ix := range b.indices {
			if _, err := b.call(ctx, "DELETE", "/"+ix, nil); err != nil {
				return err
			}
		}
		start, c0 = time.Now(), cpu()
		pprof.Do(ctx, pprof.Labels("phase", "restore"), func(ctx context.Context) {
			err = addontest.Restore(ctx, repo.Reader, snap, d)
		})
		if err != nil {
			return err
		}
		tRestore = append(tRestore, time.Since(start))
		cRestore = append(cRestore, cpu()-c0)
		for _, ix := range b.indices {
			if got := len(srv.Docs(ix)); got != n/nix && got != n/nix+1 {
				return fmt.Errorf("index %s restored with %d documents", ix, got)
			}
		}
		repo.Close(ctx)
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "round %d: scan %s backup %s bulk %s restore %s\n", r+1, tScan[r], tBackup[r], tBulk[r], tRestore[r])
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("internal/testserver/elastic as Elasticsearch 7.17, %d documents in %d indices, %.1f MiB of JSON, %d slices of %d, medians of %d rounds\n",
		n, nix, float64(total)/(1<<20), nSlices, limit, rounds)
	fmt.Printf("| | floor | stash | ratio | CPU-s floor | CPU-s stash |\n| --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| backup vs sliced point-in-time scan | %.2f s | %.2f s | %.2fx | %.2f | %.2f |\n", med(tScan).Seconds(), med(tBackup).Seconds(), med(tBackup).Seconds()/med(tScan).Seconds(), med(cScan).Seconds(), med(cBackup).Seconds())
	fmt.Printf("| restore vs parallel _bulk | %.2f s | %.2f s | %.2fx | %.2f | %.2f |\n", med(tBulk).Seconds(), med(tRestore).Seconds(), med(tRestore).Seconds()/med(tBulk).Seconds(), med(cBulk).Seconds(), med(cRestore).Seconds())
	if ed {
		return elasticdump(ctx, t, b, med(tBackup), med(tRestore))
	}
	return nil
}

// cpu is the CPU time the process (the server and the client in it) has
// used so far.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// elasticdump times multielasticdump's dump and load of the same indices.
func elasticdump(ctx context.Context, t *benchtb.TB, b *bench, backup, restore time.Duration) error {
	bin, err := filepath.Abs("bin/elasticdump/node_modules/.bin/multielasticdump")
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("elasticdump: %w (run hack/install-servers.sh)", err)
	}
	dir := filepath.Join(t.TempDir(), "elasticdump")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	common := []string{"--match=^bench-", "--limit=" + strconv.Itoa(limit), "--parallel=" + strconv.Itoa(nSlices), "--quiet"}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, bin, append([]string{"--direction=dump", "--input=" + b.srv.URL, "--output=" + dir}, common...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("multielasticdump dump: %w: %s", err, out)
	}
	dump := time.Since(start)
	for _, ix := range b.indices {
		if _, err := b.call(ctx, "DELETE", "/"+ix, nil); err != nil {
			return err
		}
	}
	start = time.Now()
	if out, err := exec.CommandContext(ctx, bin, append([]string{"--direction=load", "--input=" + dir, "--output=" + b.srv.URL}, common...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("multielasticdump load: %w: %s", err, out)
	}
	load := time.Since(start)
	fmt.Printf("| multielasticdump dump (to local files) vs backup-es (into a repository) | %.2f s | %.2f s | %.2fx faster |\n", dump.Seconds(), backup.Seconds(), dump.Seconds()/backup.Seconds())
	fmt.Printf("| multielasticdump load vs restore-es | %.2f s | %.2f s | %.2fx faster |\n", load.Seconds(), restore.Seconds(), load.Seconds()/restore.Seconds())
	return nil
}
