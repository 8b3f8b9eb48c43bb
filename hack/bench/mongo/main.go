// Command mongo measures the MongoDB addon against the server's own
// floor: a backup (backup-mongo's driver into a local repository) against
// reading every document with driver cursors into nothing, with the same
// number of collections read at once; a restore (restore-mongo's driver
// from that repository) against inserting the same documents, held in
// memory, with parallel unordered bulk writes. The server is FerretDB
// (bin/ferretdb, over SQLite): no MongoDB server can be had here, so the
// floor is FerretDB's, and the ratio is what the addon adds to it.
//
//	go run ./hack/bench/mongo -docs 200000 -rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/hack/bench/benchtb"
	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/addon/mongodb"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver"
)

const db = "bench"

func main() {
	docs := flag.Int("docs", 200000, "documents, spread over -collections")
	colls := flag.Int("collections", 4, "collections")
	rounds := flag.Int("rounds", 3, "rounds; medians are reported")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := run(*docs, *colls, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, ncoll, rounds int) error {
	ctx := context.Background()
	t := benchtb.New("mongobench")
	defer t.Stop()
	os.Setenv(testserver.IntegrationEnv, "1")
	srv := testserver.StartFerretDB(t)
	cli, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		return err
	}
	defer cli.Disconnect(ctx)

	data := make([][]any, ncoll)
	bytesTotal := 0
	for i := range n {
		d := bson.D{{Key: "_id", Value: int64(i)}, {Key: "name", Value: fmt.Sprintf("customer %d", i)},
			{Key: "email", Value: fmt.Sprintf("c%d@example.com", i)}, {Key: "balance", Value: float64(i%100000) / 7},
			{Key: "at", Value: bson.DateTime(1700000000000 + int64(i)*1000)}, {Key: "tags", Value: bson.A{"a", "b", int32(i % 50)}},
			{Key: "note", Value: strings.Repeat(fmt.Sprintf("%x", i*2654435761), 12)}}
		raw, err := bson.Marshal(d)
		if err != nil {
			return err
		}
		bytesTotal += len(raw)
		data[i%ncoll] = append(data[i%ncoll], bson.Raw(raw))
	}
	load := func() (time.Duration, error) {
		if err := cli.Database(db).Drop(ctx); err != nil {
			return 0, err
		}
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for c := range ncoll {
			coll := cli.Database(db).Collection(fmt.Sprint("c", c))
			g.Go(func() error {
				for i := 0; i < len(data[c]); i += 1000 {
					if _, err := coll.InsertMany(gctx, data[c][i:min(i+1000, len(data[c]))], options.InsertMany().SetOrdered(false)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err := g.Wait()
		return time.Since(start), err
	}
	readFloor := func() (time.Duration, error) {
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for c := range ncoll {
			coll := cli.Database(db).Collection(fmt.Sprint("c", c))
			g.Go(func() error {
				cur, err := coll.Find(gctx, bson.D{})
				if err != nil {
					return err
				}
				defer cur.Close(gctx)
				for cur.Next(gctx) {
					_ = cur.Current
				}
				return cur.Err()
			})
		}
		err := g.Wait()
		return time.Since(start), err
	}
	if _, err := load(); err != nil {
		return err
	}
	o := mongodb.Options{Conn: &appbinding.Connection{Scheme: "mongodb", Host: srv.Host, Port: srv.Port},
		DumpArgs:    mongodb.DumpArgs{Parallel: ncoll, Select: mongodb.Selection{DB: db}},
		RestoreArgs: mongodb.RestoreArgs{Parallel: ncoll, Workers: 1}}
	var tRead, tBackup, tInsert, tRestore []time.Duration
	for r := range rounds {
		d, err := readFloor()
		if err != nil {
			return err
		}
		tRead = append(tRead, d)

		dir := filepath.Join(t.TempDir(), fmt.Sprint("repo", r))
		repo, err := repository.OpenOrInit(ctx, repository.Options{Location: &location.Location{Kind: location.KindLocal,
			Filesystem: &filesystem.Options{Path: dir}}, Password: "bench"})
		if err != nil {
			return err
		}
		start := time.Now()
		st, err := addontest.Backup(ctx, repo, mongodb.Driver{Options: o}, repository.BackupOptions{Host: "host-0"})
		if err != nil {
			return err
		}
		tBackup = append(tBackup, time.Since(start))
		snap, err := repo.Resolve(ctx, st.Name, repository.Filter{})
		if err != nil {
			return err
		}

		d, err = load()
		if err != nil {
			return err
		}
		tInsert = append(tInsert, d)

		if err := cli.Database(db).Drop(ctx); err != nil {
			return err
		}
		start = time.Now()
		if err := addontest.Restore(ctx, repo.Reader, snap, mongodb.Driver{Options: o}); err != nil {
			return err
		}
		tRestore = append(tRestore, time.Since(start))
		repo.Close(ctx)
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "round %d: read %s backup %s insert %s restore %s\n", r+1, tRead[r], tBackup[r], tInsert[r], tRestore[r])
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("FerretDB v1.24.2 (SQLite), %d documents in %d collections, %.1f MiB of BSON, medians of %d rounds\n",
		n, ncoll, float64(bytesTotal)/(1<<20), rounds)
	fmt.Printf("| | floor | stash | ratio |\n| --- | --- | --- | --- |\n")
	fmt.Printf("| backup vs cursor read | %.2f s | %.2f s | %.2fx |\n", med(tRead).Seconds(), med(tBackup).Seconds(), med(tBackup).Seconds()/med(tRead).Seconds())
	fmt.Printf("| restore vs bulk insert | %.2f s | %.2f s | %.2fx |\n", med(tInsert).Seconds(), med(tRestore).Seconds(), med(tRestore).Seconds()/med(tInsert).Seconds())
	return nil
}
