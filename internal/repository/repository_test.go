package repository

import (
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/repository/lock"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"

	"github.com/stash-backup/stash/internal/testserver"
)

// backend is a repository location under test.
type backend struct {
	name string
	opts func(t *testing.T) Options
}

func localOptions(t *testing.T) Options { return localOptionsB(t) }

func localOptionsB(t testing.TB) Options {
	return Options{
		Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}},
		Password: "test-password",
	}
}

var (
	// shared holds the package's MinIO, stopped by TestMain.
	shared    testserver.Shared
	bucketSeq int
)

func s3Options(t *testing.T) Options {
	minioSrv := shared.MinIO(t)
	bucketSeq++
	bucket := fmt.Sprintf("repo-%d-%d", os.Getpid(), bucketSeq)
	minioSrv.MakeBucket(t, bucket)
	return Options{
		Location: &location.Location{Kind: location.KindS3, S3: &s3.Options{
			Endpoint: minioSrv.Endpoint, DoNotUseTLS: true, BucketName: bucket, Prefix: "stash/",
			AccessKeyID: minioSrv.AccessKey, SecretAccessKey: minioSrv.SecretKey,
		}},
		Password: "test-password",
	}
}

func backends() []backend {
	return []backend{{"local", localOptions}, {"s3", s3Options}}
}

func openNew(t testing.TB, o Options) *Repository {
	t.Helper()
	if err := Init(context.Background(), o); err != nil {
		t.Fatalf("init: %v", err)
	}
	return openExisting(t, o)
}

// openExisting opens the repository at o as another client would, closed
// when the test ends.
func openExisting(t testing.TB, o Options) *Repository {
	t.Helper()
	r, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// testStream returns n bytes, half SQL-like text and half random, in 64 KiB
// blocks, like a database dump with binary columns.
func testStream(n int, seed uint64) []byte {
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	line := 0
	for b.Len() < n {
		if (b.Len()/65536)%2 == 0 {
			fmt.Fprintf(&b, "INSERT INTO t VALUES (%d, 'name-%d', %d.%02d, '2026-01-%02d');\n", line, rng.IntN(1e6), rng.IntN(1e4), rng.IntN(100), 1+rng.IntN(28))
			line++
		} else {
			blk := make([]byte, 4096)
			for i := range blk {
				blk[i] = byte(rng.Uint32())
			}
			b.Write(blk)
		}
	}
	return b.Bytes()[:n]
}

func TestStreamRoundTrip(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			r := openNew(t, be.opts(t))
			data := testStream(6<<20, 1)
			st, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader(data), BackupOptions{
				Host: "host-0", Tags: map[string]string{"backup-session": "s-1", "invoker": "BackupConfiguration/pg"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.Path != "dumpfile.sql" || st.TotalBytes != int64(len(data)) || *st.FileStats.NewFiles != 1 {
				t.Errorf("stats %+v", st)
			}
			// Half the stream is text and compresses; the random half does not.
			if st.UploadedBytes <= int64(len(data))/3 || st.UploadedBytes >= int64(len(data)) {
				t.Errorf("uploaded %d bytes for %d bytes of half-compressible data", st.UploadedBytes, len(data))
			}
			snaps, err := r.Snapshots(ctx, Filter{Tags: map[string]string{"backup-session": "s-1"}})
			if err != nil || len(snaps) != 1 {
				t.Fatalf("snapshots %v %v", snaps, err)
			}
			if s := snaps[0]; s.ID != st.Name || s.Host != "host-0" || s.Path != "dumpfile.sql" || !s.Stream ||
				s.TotalSize != int64(len(data)) || s.Tags["invoker"] != "BackupConfiguration/pg" {
				t.Errorf("snapshot %+v", s)
			}
			var out bytes.Buffer
			n, err := r.RestoreStream(ctx, snaps[0], "", &out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("restored %d bytes, differ from the %d backed up", n, len(data))
			}
			// Every chunk was decoded by the content decoder, none by kopia.
			if r.contentDecoder() == nil || r.fallbacks.Load() != 0 {
				t.Errorf("decoder %v, %d chunks read by kopia after it failed", r.contentDecoder() != nil, r.fallbacks.Load())
			}
			// The same data again uploads next to nothing.
			st2, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
			if err != nil {
				t.Fatal(err)
			}
			if st2.UploadedBytes > 64<<10 || *st2.FileStats.UnmodifiedFiles != 1 {
				t.Errorf("unchanged re-backup uploaded %d bytes, stats %+v", st2.UploadedBytes, st2.FileStats)
			}
		})
	}
}

func TestSmallChangeUploadsLittle(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	const size = 64 << 20
	data := testStream(size, 2)
	if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	// Change 1 % of the 1 MiB blocks, spread over the stream.
	changed := append([]byte(nil), data...)
	for blk := 7; blk < size>>20; blk += 100 / 1 * 1 {
		if blk%100 != 7 {
			continue
		}
		off := blk<<20 + 12345
		copy(changed[off:], bytes.Repeat([]byte("CHANGED!"), 512))
	}
	copy(changed[40<<20:], bytes.Repeat([]byte("x"), 4096))
	st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(changed), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	// Two changed blocks of 64: each re-uploads the chunks it touches
	// (1 MiB average) plus metadata.
	if limit := int64(size) * 10 / 100; st.UploadedBytes > limit {
		t.Errorf("second backup uploaded %d bytes, want at most %d", st.UploadedBytes, limit)
	}
	if *st.FileStats.ModifiedFiles != 1 {
		t.Errorf("stats %+v", st.FileStats)
	}
	t.Logf("second backup uploaded %s of %s", FormatBytes(st.UploadedBytes), FormatBytes(size))
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDirectoryBackupRestore(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			r := openNew(t, be.opts(t))
			src := t.TempDir()
			writeTree(t, src, map[string]string{
				"a/1.txt": "one", "a/b/2.txt": "two", "logs/app.log": "log", "c/3.tmp": "tmp", "big.bin": strings.Repeat("z", 3<<20),
			})
			// A symlink is restored, but not counted as a file.
			if err := os.Symlink("a/1.txt", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
			stats, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-1", Exclude: []string{"*.log", "*.tmp"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(stats) != 1 || *stats[0].FileStats.TotalFiles != 3 || *stats[0].FileStats.NewFiles != 3 || stats[0].Path != src {
				t.Fatalf("stats %+v %+v", stats, stats[0].FileStats)
			}
			// Change one file, add one, leave the rest.
			writeTree(t, src, map[string]string{"a/1.txt": "one, changed", "new.txt": "new"})
			stats, err = r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-1", Exclude: []string{"*.log", "*.tmp"}})
			if err != nil {
				t.Fatal(err)
			}
			fsx := stats[0].FileStats
			if *fsx.TotalFiles != 4 || *fsx.NewFiles != 1 || *fsx.ModifiedFiles != 1 || *fsx.UnmodifiedFiles != 2 {
				t.Errorf("file stats total=%d new=%d modified=%d unmodified=%d", *fsx.TotalFiles, *fsx.NewFiles, *fsx.ModifiedFiles, *fsx.UnmodifiedFiles)
			}
			s, err := r.Resolve(ctx, Latest, Filter{Host: "host-1", Path: src})
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "out")
			if _, err := r.RestoreTree(ctx, s, dst, TreeRestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"a/1.txt": "one, changed", "a/b/2.txt": "two", "big.bin": strings.Repeat("z", 3<<20), "new.txt": "new", "link": "one, changed"}
			if got := readTree(t, dst); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("restored %v", keys(got))
			}
			dst2 := filepath.Join(t.TempDir(), "out2")
			if _, err := r.RestoreTree(ctx, s, dst2, TreeRestoreOptions{Include: []string{"a"}, Exclude: []string{"2.txt"}}); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, dst2); fmt.Sprint(got) != fmt.Sprint(map[string]string{"a/1.txt": "one, changed"}) {
				t.Errorf("filtered restore got %v", got)
			}
			var one bytes.Buffer
			if _, err := r.RestoreStream(ctx, s, "a/b/2.txt", &one, nil); err != nil || one.String() != "two" {
				t.Errorf("single file from directory snapshot: %q %v", one.String(), err)
			}
			if r.fallbacks.Load() != 0 {
				t.Errorf("%d contents read by kopia after the decoder failed", r.fallbacks.Load())
			}
			// A file whose time changed is read again and, as restic
			// counts it, modified though its content is the same.
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(src, "a", "b", "2.txt"), later, later); err != nil {
				t.Fatal(err)
			}
			stats, err = r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-1", Exclude: []string{"*.log", "*.tmp"}})
			if err != nil {
				t.Fatal(err)
			}
			if fsx := stats[0].FileStats; *fsx.NewFiles != 0 || *fsx.ModifiedFiles != 1 || *fsx.UnmodifiedFiles != 3 {
				t.Errorf("after a touch: new=%d modified=%d unmodified=%d, want 0, 1, 3", *fsx.NewFiles, *fsx.ModifiedFiles, *fsx.UnmodifiedFiles)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestLatestPerHostAndPrefixIDs(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	var ids []string
	for i, host := range []string{"host-0", "host-1", "host-0"} {
		st, err := r.BackupStream(ctx, "dump.sql", strings.NewReader(fmt.Sprintf("data %d", i)), BackupOptions{Host: host})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.Name)
		time.Sleep(10 * time.Millisecond)
	}
	got, err := r.Resolve(ctx, Latest, Filter{Host: "host-1"})
	if err != nil || got.ID != ids[1] {
		t.Errorf("latest host-1 = %v, %v; want %s", got.ID, err, ids[1])
	}
	got, err = r.Resolve(ctx, Latest, Filter{Host: "host-0"})
	if err != nil || got.ID != ids[2] {
		t.Errorf("latest host-0 = %v, %v; want %s", got.ID, err, ids[2])
	}
	got, err = r.Resolve(ctx, ids[0][:8], Filter{})
	if err != nil || got.ID != ids[0] {
		t.Errorf("prefix resolve = %v, %v", got.ID, err)
	}
	if _, err := r.Resolve(ctx, Latest, Filter{Host: "host-9"}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("unknown host: %v", err)
	}
	if _, err := r.Resolve(ctx, ids[0], Filter{Host: "host-1"}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("id of another host: %v", err)
	}
}

func TestFailedSourceLeavesNoSnapshot(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	boom := errors.New("pg_dump exited with status 1")
	_, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(testStream(3<<20, 3)), BackupOptions{
		Host: "host-0", BeforeCommit: func() error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	_, err = r.BackupStream(ctx, "dump.sql", io.MultiReader(strings.NewReader("partial"), &failingReader{}), BackupOptions{Host: "host-0"})
	if err == nil || !strings.Contains(err.Error(), "read stream dump.sql") {
		t.Fatalf("err = %v", err)
	}
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after failed backups: %v %v", snaps, err)
	}
}

type failingReader struct{}

func (*failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	if _, err := Open(ctx, o); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("open before init: %v", err)
	}
	openNew(t, o)
	if err := Init(ctx, o); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("second init: %v", err)
	}
	bad := o
	bad.Password = "wrong"
	if _, err := Open(ctx, bad); !errors.Is(err, ErrWrongPassword) || strings.Contains(err.Error(), "wrong\"") {
		t.Errorf("wrong password: %v", err)
	}
	bad.Password = ""
	if _, err := Open(ctx, bad); err == nil || !strings.Contains(err.Error(), "RESTIC_PASSWORD") {
		t.Errorf("empty password: %v", err)
	}
	bad = o
	bad.Compression = "lz77"
	if _, err := Open(ctx, bad); err == nil || !strings.Contains(err.Error(), `unknown compression "lz77"`) {
		t.Errorf("bad compression: %v", err)
	}
}

func TestUnreachableS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port := testserver.FreePort(t)
	o := Options{
		Location: &location.Location{Kind: location.KindS3, S3: &s3.Options{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), DoNotUseTLS: true, BucketName: "b", AccessKeyID: "a", SecretAccessKey: "VERYSECRET"}},
		Password: "pw",
	}
	_, err := Open(ctx, o)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), fmt.Sprint(port)) || strings.Contains(err.Error(), "VERYSECRET") {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentBackups(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			o := be.opts(t)
			openNew(t, o)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := Open(ctx, o) // two clients, as two processes would be
					if err != nil {
						errs[i] = err
						return
					}
					defer r.Close(ctx)
					_, errs[i] = r.BackupStream(ctx, "dump.sql", bytes.NewReader(testStream(8<<20, uint64(10+i))), BackupOptions{Host: fmt.Sprintf("host-%d", i)})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("backup %d: %v", i, err)
				}
			}
			r, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			snaps, _ := r.Snapshots(ctx, Filter{})
			if len(snaps) != 2 {
				t.Fatalf("want 2 snapshots, got %d", len(snaps))
			}
			for _, s := range snaps {
				var out bytes.Buffer
				if _, err := r.RestoreStream(ctx, s, "", &out, nil); err != nil {
					t.Fatal(err)
				}
				seed := uint64(10)
				if s.Host == "host-1" {
					seed = 11
				}
				if !bytes.Equal(out.Bytes(), testStream(8<<20, seed)) {
					t.Errorf("%s restored wrong data", s.Host)
				}
			}
			res, err := r.Check(ctx, true)
			if err != nil || !res.OK {
				t.Fatalf("check: %+v %v", res, err)
			}
		})
	}
}

func TestForgetAndPruneFreeSpace(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			r := openNew(t, be.opts(t))
			for i := range 4 {
				rnd := make([]byte, 4<<20)
				_, _ = rand.Read(rnd)
				if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(rnd), BackupOptions{Host: "host-0", Tags: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			dry, err := r.Forget(ctx, Policy{KeepLast: 1, KeepTags: []string{"n=0"}}, Filter{}, true)
			if err != nil || dry.Kept != 2 || dry.Removed != 2 {
				t.Fatalf("dry run %+v %v", dry, err)
			}
			if snaps, _ := r.Snapshots(ctx, Filter{}); len(snaps) != 4 {
				t.Fatalf("dry run removed snapshots: %d left", len(snaps))
			}
			res, err := r.Forget(ctx, Policy{KeepLast: 1, KeepTags: []string{"n=0"}}, Filter{}, false)
			if err != nil || res.Removed != 2 {
				t.Fatalf("forget %+v %v", res, err)
			}
			snaps, _ := r.Snapshots(ctx, Filter{})
			if len(snaps) != 2 || snaps[0].Tags["n"] != "0" || snaps[1].Tags["n"] != "3" {
				t.Fatalf("left %+v", snaps)
			}
			pr, err := r.Prune(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Mode != PruneImmediate || pr.FreedBytes < 7<<20 {
				t.Errorf("prune %+v: want about 8 MiB freed at once", pr)
			}
			for _, s := range snaps {
				if _, err := r.RestoreStream(ctx, s, "", io.Discard, nil); err != nil {
					t.Errorf("kept snapshot %s unreadable after prune: %v", s.ShortID(), err)
				}
			}
			if c, err := r.Check(ctx, true); err != nil || !c.OK {
				t.Errorf("check after prune: %+v %v", c, err)
			}
		})
	}
}

func TestPruneDefersWhileBackupRuns(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	if _, err := r.BackupStream(ctx, "dump.sql", strings.NewReader("x"), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	held, err := r.lockShared(ctx) // a backup in progress elsewhere
	if err != nil {
		t.Fatal(err)
	}
	pr, err := r.Prune(ctx)
	held.Release()
	if err != nil || pr.Mode != PruneDeferred || !strings.Contains(pr.Reason, "in use by host") {
		t.Fatalf("prune during backup: %+v %v", pr, err)
	}
	pr, err = r.Prune(ctx)
	if err != nil || pr.Mode != PruneImmediate {
		t.Fatalf("prune after backup: %+v %v", pr, err)
	}
}

func TestStaleLockDoesNotBlock(t *testing.T) {
	shortLocks(t, 50*time.Millisecond, 300*time.Millisecond)
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	// A lock whose holder was killed: written once, never refreshed.
	if err := lock.Write(ctx, r.st, lock.NewID(lock.Exclusive), lock.Exclusive); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := r.BackupStream(ctx, "dump.sql", strings.NewReader("x"), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatalf("backup blocked by a stale lock: %v", err)
	}
	pr, err := r.Prune(ctx)
	if err != nil || pr.Mode != PruneImmediate {
		t.Fatalf("prune with a stale lock: %+v %v", pr, err)
	}
}

func TestCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(testStream(4<<20, 5)), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Check(ctx, true); err != nil || !res.OK {
		t.Fatalf("clean check: %+v %v", res, err)
	}
	// Flip bytes in the middle of every data pack: only reading data finds it.
	var packs []string
	// The filesystem backend shards blob IDs into directories: data packs
	// (IDs starting with p) live under <repo>/p/.
	_ = filepath.WalkDir(filepath.Join(o.Location.Filesystem.Path, "p"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatal("no pack blobs found")
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 3; i < len(b)/3+64; i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r2, err := Open(ctx, Options{Location: o.Location, Password: o.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	res, err := r2.Check(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || len(res.Errors) == 0 {
		t.Fatalf("check --read-data missed corrupted packs: %+v", res)
	}
	// A missing pack is found without reading data.
	if err := os.Remove(packs[0]); err != nil {
		t.Fatal(err)
	}
	res, err = r2.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK {
		t.Fatalf("metadata check missed a missing pack: %+v", res)
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	for _, h := range []string{"host-0", "host-1"} {
		if _, err := r.BackupStream(ctx, "d.sql", strings.NewReader(strings.Repeat("abc", 1000)), BackupOptions{Host: h}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SnapshotCount != 2 || st.Hosts != 2 || st.TotalBytes <= 0 || st.LogicalBytes != 6000 {
		t.Errorf("stats %+v", st)
	}
}

// TestTreeHasAfterMiss: a path whose directory is not in the snapshot
// must not make later lookups fail (file stats call it for every hashed
// file, new directories included).
func TestTreeHasAfterMiss(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a", "sub/b.txt": "b"})
	stats, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, stats[0].Name, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	has := treeHas(ctx, r.rep, s.man, []string{"no-such-dir/x.txt", "a.txt", "sub/b.txt"}, 2)
	if has("no-such-dir/x.txt") {
		t.Error("found a file in a missing directory")
	}
	for _, p := range []string{"a.txt", "sub/b.txt"} {
		if !has(p) {
			t.Errorf("%s not found after a miss", p)
		}
	}
}

// TestOpenLeavesNoCredentialsOnDisk: kopia's connection config names the
// storage this process opened instead of holding its credentials, so a
// backup killed at any point leaves none behind; maintenance, which keeps
// its lock file beside the config, still runs; Close removes the config.
func TestOpenLeavesNoCredentialsOnDisk(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			o := be.opts(t)
			r := openNew(t, o)
			secrets := []string{o.Password}
			if o.Location.S3 != nil {
				secrets = append(secrets, o.Location.S3.AccessKeyID, o.Location.S3.SecretAccessKey)
			}
			var configs int
			err := filepath.WalkDir(r.configDir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s holds a secret:\n%s", p, b)
					}
				}
				var lc struct {
					Storage struct{ Type string } `json:"storage"`
				}
				if filepath.Base(p) == "repository.config" {
					configs++
					if err := json.Unmarshal(b, &lc); err != nil || lc.Storage.Type != handleStorageType {
						t.Errorf("config %s: storage type %q (%v), want %q:\n%s", p, lc.Storage.Type, err, handleStorageType, b)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if configs != 1 {
				t.Errorf("%d connection configs in %s, want 1", configs, r.configDir)
			}
			if _, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader(testStream(1<<20, 3)), BackupOptions{Host: "h"}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Forget(ctx, Policy{KeepLast: 1}, Filter{}, false); err != nil {
				t.Fatalf("forget: %v", err)
			}
			if _, err := r.Prune(ctx); err != nil {
				t.Fatalf("prune: %v", err)
			}
			dir := r.configDir
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("config directory %s still there after Close (%v)", dir, err)
			}
			if n := len(openStorages.m); n != 0 {
				t.Errorf("%d storage handles left after open", n)
			}
		})
	}
}

// TestBackupAfterOthersPrune: a client that opened the repository before
// another client forgot and pruned some data must not deduplicate its next
// backup against that data: the backup would commit a snapshot whose
// contents are gone. The backup refreshes its index once it holds its
// lock, after which no prune can run.
func TestBackupAfterOthersPrune(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	first := openNew(t, o)
	data := make([]byte, 6<<20)
	_, _ = rand.Read(data)
	if _, err := first.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	// The stale client: its index holds data's contents.
	stale := openExisting(t, o)
	// Another client replaces the snapshot and prunes data away.
	other := make([]byte, 1<<20)
	_, _ = rand.Read(other)
	if _, err := first.BackupStream(ctx, "dump.sql", bytes.NewReader(other), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	if res, err := first.Forget(ctx, Policy{KeepLast: 1}, Filter{}, false); err != nil || res.Removed != 1 {
		t.Fatalf("forget: %+v %v", res, err)
	}
	if pr, err := first.Prune(ctx); err != nil || pr.Mode != PruneImmediate {
		t.Fatalf("prune: %+v %v", pr, err)
	}
	st, err := stale.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	fresh := openExisting(t, o)
	if got, err := restoreByName(t, fresh, st.Name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restore of the stale client's backup: %v (%d of %d bytes): it referenced pruned contents", err, len(got), len(data))
	}
}

// TestUnreadableFileFailsBackup: a file the backup cannot read fails the
// backup, and no snapshot is committed without it. The backup runs as an
// unprivileged user (root reads everything), in a helper process.
func TestUnreadableFileFailsBackup(t *testing.T) {
	if dir := os.Getenv("STASH_TEST_UNREADABLE_HELPER"); dir != "" {
		r, err := Open(context.Background(), Options{
			Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: filepath.Join(dir, "repo")}},
			Password: "test-password",
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		_, err = r.BackupPaths(context.Background(), []string{filepath.Join(dir, "data")}, BackupOptions{Host: "host-0"})
		fmt.Printf("backup error: %v\n", err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make a file that the unprivileged helper cannot read")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	dir, err := os.MkdirTemp("", "stash-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeTree(t, filepath.Join(dir, "data"), map[string]string{"readable.txt": "yes", "secret.txt": "no"})
	if err := os.Chmod(filepath.Join(dir, "data", "secret.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: filepath.Join(dir, "repo")}}, Password: "test-password"}
	if err := Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	// The helper may write the repository and its temporary directories,
	// and read everything but secret.txt.
	for _, p := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "data", "readable.txt")} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.Command("chown", "-R", "65534:65534", filepath.Join(dir, "repo")).Run(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0], "-test.run=^TestUnreadableFileFailsBackup$")
	cmd.Env = append(os.Environ(), "STASH_TEST_UNREADABLE_HELPER="+dir, "TMPDIR="+tmp, "HOME="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "backup error: back up") || !strings.Contains(string(out), "could not be read, first secret.txt") {
		t.Fatalf("helper output %s: want the backup to fail naming secret.txt", out)
	}
	r := openExisting(t, o)
	if snaps, _ := r.Snapshots(context.Background(), Filter{}); len(snaps) != 0 {
		t.Fatalf("%d snapshots committed without the unreadable file", len(snaps))
	}
}

// TestKopiaRetentionKeepsEverything: kopia applies its own retention
// policy at every checkpoint of a long directory backup; with its defaults
// it would delete some of these 14 snapshots (it keeps the latest 10 and
// one per hour, day, …). After a backup, the repository's policy keeps
// them all, so only Stash's retention (Forget) removes snapshots.
func TestKopiaRetentionKeepsEverything(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})
	for i := range 14 {
		writeTree(t, src, map[string]string{"a.txt": fmt.Sprint(i)})
		if _, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-0"}); err != nil {
			t.Fatal(err)
		}
	}
	source := snapshot.SourceInfo{Host: "host-0", UserName: clientUser, Path: src}
	var expired []manifest.ID
	err := repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "test"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		var err error
		expired, err = policy.ApplyRetentionPolicy(ctx, w, source, false)
		return err
	})
	if err != nil || len(expired) != 0 {
		t.Fatalf("kopia's retention would delete %d of 14 snapshots (%v)", len(expired), err)
	}
}

// blockingWriter holds a restore in progress until release is closed.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return len(p), nil
}

// TestPruneDefersWhileRestoreRuns: a restore holds the shared lock, so a
// prune meanwhile is deferred instead of deleting packs the restore reads.
func TestPruneDefersWhileRestoreRuns(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, st.Name, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	w := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := r.RestoreStream(ctx, s, "", w, nil)
		done <- err
	}()
	<-w.started
	pr, err := r.Prune(ctx)
	close(w.release)
	if err != nil || pr.Mode != PruneDeferred {
		t.Fatalf("prune during a restore: %+v %v, want deferred", pr, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRestoreFromReadOnlyStorage: a restore needs no write access; the
// lock it cannot write is skipped.
func TestRestoreFromReadOnlyStorage(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	data := []byte("SELECT 1;\n")
	st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	ro := openExisting(t, o)
	ro.st = readOnly{ro.st}
	if got, err := restoreByName(t, ro, st.Name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restore from read-only storage: %q %v", got, err)
	}
}

// readOnly refuses writes, as a bucket given read-only credentials does (a
// wrapper over the real local storage: MinIO with a read-only user would
// test the same path at far more cost).
type readOnly struct{ blob.Storage }

func (readOnly) PutBlob(context.Context, blob.ID, blob.Bytes, blob.PutOptions) error {
	return errors.New("403 Forbidden: read-only credentials")
}

// lockRecorder records the lock blobs written through it.
type lockRecorder struct {
	blob.Storage
	mu    sync.Mutex
	kinds []string
}

func (l *lockRecorder) PutBlob(ctx context.Context, id blob.ID, b blob.Bytes, o blob.PutOptions) error {
	if rest, ok := strings.CutPrefix(string(id), lock.BlobPrefix); ok {
		l.mu.Lock()
		l.kinds = append(l.kinds, rest[:1])
		l.mu.Unlock()
	}
	return l.Storage.PutBlob(ctx, id, b, o)
}

// TestDeferredPruneHoldsSharedLock: a deferred prune (kopia's safe
// maintenance, which writes packs of its own) registers as a writer, so
// that no other client's immediate prune deletes what it writes.
func TestDeferredPruneHoldsSharedLock(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	if _, err := r.BackupStream(ctx, "dump.sql", strings.NewReader("x"), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	held, err := r.lockShared(ctx) // a backup in progress elsewhere
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	rec := &lockRecorder{Storage: r.st}
	r.st = rec
	pr, err := r.Prune(ctx)
	if err != nil || pr.Mode != PruneDeferred {
		t.Fatalf("prune: %+v %v, want deferred", pr, err)
	}
	if !slices.Contains(rec.kinds, lock.Shared) {
		t.Fatalf("the deferred prune wrote locks %q, want a shared one", rec.kinds)
	}
}

// TestConcurrentFirstInit: two clients finding no repository at the same
// time both initialise it; the later format blob wins, and the other
// client must write nothing under its own key (an index or manifest the
// winner's key cannot decrypt would break every later open). Both then
// back up into the one repository, and it checks clean.
func TestConcurrentFirstInit(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := OpenOrInit(ctx, o)
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close(ctx)
			_, errs[i] = r.BackupStream(ctx, "dump.sql", strings.NewReader(fmt.Sprintf("client %d\n", i)), BackupOptions{Host: fmt.Sprintf("host-%d", i)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	r := openExisting(t, o) // fails the test if the repository cannot be opened
	if snaps, err := r.Snapshots(ctx, Filter{}); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %d, %v; want both clients'", len(snaps), err)
	}
	if c, err := r.Check(ctx, true); err != nil || !c.OK {
		t.Fatalf("check: %+v %v", c, err)
	}
}

// lockWritesFail refuses to write lock blobs after the first, as a storage
// outage would refreshes (a wrapper over the real local storage).
type lockWritesFail struct {
	blob.Storage
	mu     sync.Mutex
	writes int
}

func (l *lockWritesFail) PutBlob(ctx context.Context, id blob.ID, b blob.Bytes, o blob.PutOptions) error {
	if strings.HasPrefix(string(id), lock.BlobPrefix) {
		l.mu.Lock()
		l.writes++
		n := l.writes
		l.mu.Unlock()
		if n > 1 {
			return errors.New("503 Service Unavailable")
		}
	}
	return l.Storage.PutBlob(ctx, id, b, o)
}

// pausedReader yields its data only after a pause, as a long dump would.
type pausedReader struct {
	pause time.Duration
	data  io.Reader
	once  sync.Once
}

func (p *pausedReader) Read(b []byte) (int, error) {
	p.once.Do(func() { time.Sleep(p.pause) })
	return p.data.Read(b)
}

// TestLostLockBlocksCommit: a backup whose lock could not be refreshed for
// longer than others wait before calling it stale commits nothing: a prune
// may have run meanwhile.
func TestLostLockBlocksCommit(t *testing.T) {
	shortLocks(t, 50*time.Millisecond, 300*time.Millisecond)
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	r.st = &lockWritesFail{Storage: r.st}
	_, err := r.BackupStream(ctx, "dump.sql", &pausedReader{pause: 500 * time.Millisecond, data: strings.NewReader("x")}, BackupOptions{Host: "host-0"})
	if err == nil || !strings.Contains(err.Error(), "could not be refreshed") {
		t.Fatalf("backup with a lost lock: %v, want it refused", err)
	}
	if snaps, _ := r.Snapshots(ctx, Filter{}); len(snaps) != 0 {
		t.Fatalf("%d snapshots committed under a lost lock", len(snaps))
	}
}

// skewedClock reports blob timestamps shifted, as a storage server whose
// clock is behind the clients' (a wrapper over the real local storage).
type skewedClock struct {
	blob.Storage
	by time.Duration
}

func (s skewedClock) ListBlobs(ctx context.Context, prefix blob.ID, cb func(blob.Metadata) error) error {
	return s.Storage.ListBlobs(ctx, prefix, func(md blob.Metadata) error {
		md.Timestamp = md.Timestamp.Add(s.by)
		return cb(md)
	})
}

// TestLockAgeOnStorageClock: with the storage's clock five minutes behind
// the clients', a backup's fresh lock still defers a prune, and is not
// removed as stale.
func TestLockAgeOnStorageClock(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	if _, err := r.BackupStream(ctx, "dump.sql", strings.NewReader("x"), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	r.st = skewedClock{Storage: r.st, by: -5 * time.Minute}
	held, err := r.lockShared(ctx) // a backup in progress
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	pr, err := r.Prune(ctx)
	if err != nil || pr.Mode != PruneDeferred {
		t.Fatalf("prune during a backup, storage clock behind: %+v %v, want deferred", pr, err)
	}
	locks, _ := blob.ListAllBlobs(ctx, r.st, blob.ID(lock.BlobPrefix+lock.Shared))
	if len(locks) != 1 {
		t.Fatalf("%d shared locks left, want the backup's", len(locks))
	}
}

// TestRestoreWrapsReadAhead: a stream of many more chunks than the
// restore reads ahead (8 with one core) comes back whole and in order, its
// result slots reused round the ring.
func TestRestoreWrapsReadAhead(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	o.Parallelism = 1
	r := openNew(t, o)
	data := testStream(40<<20, 11)
	st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := restoreByName(t, r, st.Name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restore: %v, %d of %d bytes", err, len(got), len(data))
	}
}

// restoreByName restores the stream snapshot named name (an ID) from r.
func restoreByName(t *testing.T, r *Repository, name string) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	s, err := r.Resolve(ctx, name, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, err = r.RestoreStream(ctx, s, "", &got, nil)
	return got.Bytes(), err
}
