package restic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/ncw/swift/v2/swifttest"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver"
)

func localOpts(dir, password string) repository.Options {
	return repository.Options{
		Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: dir}},
		Password: password,
	}
}

// place is where a fixture's repository lives: the restic repository
// string the CLI writes to (with its environment) and the Location this
// project reads it from.
type place struct {
	name string
	make func(t *testing.T) (repo string, env []string, loc *location.Location)
}

var (
	// shared holds the package's MinIO, stopped by TestMain.
	shared    testserver.Shared
	bucketSeq int
)

func localPlace() place {
	return place{"local", func(t *testing.T) (string, []string, *location.Location) {
		dir := filepath.Join(t.TempDir(), "repo")
		return dir, nil, &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: dir}}
	}}
}

func s3Place() place {
	return place{"s3", func(t *testing.T) (string, []string, *location.Location) {
		m := shared.MinIO(t)
		bucketSeq++
		bucket := fmt.Sprintf("restic-%d-%d", os.Getpid(), bucketSeq)
		m.MakeBucket(t, bucket)
		return "s3:http://" + m.Endpoint + "/" + bucket + "/stash/app",
			[]string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey},
			&location.Location{Kind: location.KindS3, S3: &s3.Options{
				Endpoint: m.Endpoint, DoNotUseTLS: true, BucketName: bucket, Prefix: "stash/app/",
				AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey,
			}}
	}}
}

func swiftPlace() place {
	return place{"swift", func(t *testing.T) (string, []string, *location.Location) {
		srv, err := swifttest.NewSwiftServer("localhost")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		return "swift:stash-backups:/demo/app",
			[]string{"ST_AUTH=" + srv.AuthURL, "ST_USER=" + swiftAccount, "ST_KEY=" + swiftAccount},
			&location.Location{Kind: location.KindSwift, Swift: &location.SwiftOptions{
				Container: "stash-backups", Prefix: "demo/app", AuthURL: srv.AuthURL, UserName: swiftAccount, APIKey: swiftAccount,
			}}
	}}
}

func restPlace() place {
	return place{"rest", func(t *testing.T) (string, []string, *location.Location) {
		addr := startRestServer(t, t.TempDir(), "--no-auth")
		return "rest:http://" + addr + "/stash-demo/", nil,
			&location.Location{Kind: location.KindRest, Rest: &location.RestOptions{URL: "http://" + addr + "/stash-demo"}}
	}}
}

// TestReadResticRepositories reads what real restic CLIs wrote, in both
// formats, on every backend with a server here: snapshots as restic
// lists them, the tree restored identical (odd names, modes, times,
// symlinks, hard links, a sparse file kept sparse), the dump streamed
// back byte for byte, a clean check, and the tree and dump identical
// again after an import.
func TestReadResticRepositories(t *testing.T) {
	testserver.NeedIntegration(t)
	cases := []struct {
		v version
		p place
	}{
		{versions[0], localPlace()},
		{versions[1], localPlace()},
		{versions[2], localPlace()},
		{versions[0], s3Place()},
		{versions[2], s3Place()},
		{versions[1], swiftPlace()},
		{versions[2], swiftPlace()},
		{versions[1], restPlace()},
		{versions[2], restPlace()},
	}
	for _, c := range cases {
		t.Run(c.v.String()+"/"+c.p.name, func(t *testing.T) {
			repo, env, loc := c.p.make(t)
			f := newFixture(t, c.v, repo, env...)
			checkFixture(t, f, repository.Options{Location: loc, Password: f.password}, c.v.format)
		})
	}
}

// checkFixture reads fixture f through opts and checks everything it
// holds comes back as restic wrote it.
func checkFixture(t *testing.T, f *fixture, opts repository.Options, format int) {
	t.Helper()
	ctx := context.Background()
	r, err := OpenReader(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if got := r.Repository().Config().Version; got != format {
		t.Errorf("format version %d, want %d", got, format)
	}
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	for i, s := range snaps {
		want := f.ids[i]
		if s.ID != want.ID || s.ShortID() != want.ShortID || s.Host != want.Hostname || !s.Time.Equal(want.Time) {
			t.Errorf("snapshot %d = %s %s %s %s, restic lists %s %s %s %s", i, s.ID, s.ShortID(), s.Host, s.Time, want.ID, want.ShortID, want.Hostname, want.Time)
		}
	}
	dir, stream := snaps[0], snaps[1]
	if dir.Path != f.src || dir.Stream || dir.Tags["app"] != "demo" {
		t.Errorf("directory snapshot: path %q stream %v tags %v, want %q, false, app=demo", dir.Path, dir.Stream, dir.Tags, f.src)
	}
	if stream.Path != "dumpfile.sql" || !stream.Stream || stream.TotalSize != int64(len(f.dump)) {
		t.Errorf("stream snapshot: path %q stream %v size %d, want dumpfile.sql, true, %d", stream.Path, stream.Stream, stream.TotalSize, len(f.dump))
	}

	// Stash's restore of a dump: the latest dumpfile.sql of host-0.
	s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Host: "host-0", Path: "dumpfile.sql"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.RestoreStream(ctx, s, "dumpfile.sql", &buf, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), f.dump) {
		t.Fatalf("restored dump differs: %d bytes, want %d", buf.Len(), len(f.dump))
	}
	// A short ID as restic prints it names the same snapshot.
	if got, err := r.Resolve(ctx, f.ids[0].ShortID, repository.Filter{}); err != nil || got.ID != f.ids[0].ID {
		t.Fatalf("resolve short ID %s: %v %v", f.ids[0].ShortID, got.ID, err)
	}

	target := filepath.Join(t.TempDir(), "restored")
	res, err := r.RestoreTree(ctx, dir, target, repository.TreeRestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffLines(describeTree(t, f.src), describeTree(t, target)); d != "" {
		t.Fatalf("restored tree differs from the source:\n%s", d)
	}
	if res.Files == 0 || res.Bytes == 0 {
		t.Errorf("restore result counts nothing: %+v", res)
	}
	if a := allocated(t, filepath.Join(target, "sparse.img")); a > 1<<20 {
		t.Errorf("sparse file restored with %d bytes allocated of 64 MiB: holes not kept", a)
	}
	// A file of the directory snapshot to standard output.
	buf.Reset()
	if _, err := r.RestoreStream(ctx, dir, "with space/and more.txt", &buf, nil); err != nil || buf.String() != "spaced\n" {
		t.Fatalf("restore one file: %q %v", buf.String(), err)
	}
	// Include and exclude as for this project's snapshots. The target
	// holds a file of its own where the snapshot has plain.txt, which is
	// a hard link of many/hardlink: the restore leaves plain.txt out, so
	// it is not the restore's to link or replace.
	part := filepath.Join(t.TempDir(), "part")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "plain.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RestoreTree(ctx, dir, part, repository.TreeRestoreOptions{Include: []string{"many/*"}, Exclude: []string{"many/f1*"}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "plain.txt")); err != nil || string(b) != "mine\n" {
		t.Errorf("a file the restore left out was changed: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "many", "hardlink")); err != nil || string(b) == "mine\n" {
		t.Errorf("many/hardlink was linked to a file the restore did not write: %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(part, "many"))
	if len(ents) != 31 { // f00-f09, f20-f39, hardlink
		t.Errorf("include many/* exclude many/f1*: %d files, want 31", len(ents))
	}
	for _, readData := range []bool{false, true} {
		c, err := r.Check(ctx, readData)
		if err != nil || !c.OK {
			t.Fatalf("check (read data %v): %v %+v", readData, err, c)
		}
	}

	// The same after an import into a repository of this project's: the
	// tree (hard links too) and the dump come back identical.
	dst, err := repository.OpenOrInit(ctx, localOpts(filepath.Join(t.TempDir(), "kopia"), "imported"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	if res, err := r.Import(ctx, dst, ImportOptions{}); err != nil || len(res.Imported) != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
	imported, err := dst.Snapshots(ctx, repository.Filter{})
	if err != nil || len(imported) != 2 || imported[0].Stream {
		t.Fatalf("imported snapshots %+v %v, want the tree then the dump", imported, err)
	}
	target = filepath.Join(t.TempDir(), "imported")
	if _, err := dst.RestoreTree(ctx, imported[0], target, repository.TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffLines(describeTree(t, f.src), describeTree(t, target)); d != "" {
		t.Fatalf("tree restored after an import differs from the source:\n%s", d)
	}
	buf.Reset()
	if _, err := dst.RestoreStream(ctx, imported[1], "", &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), f.dump) {
		t.Fatalf("dump restored after an import differs (%d bytes, want %d): %v", buf.Len(), len(f.dump), err)
	}
}

// TestResticFailures: a wrong password, a damaged pack, a missing index
// and a running prune's exclusive lock each fail with a message that says
// what is wrong.
func TestResticFailures(t *testing.T) {
	testserver.NeedIntegration(t)
	ctx := context.Background()
	f := newFixture(t, versions[2], filepath.Join(t.TempDir(), "repo"))

	_, err := OpenReader(ctx, localOpts(f.repo, "not-the-password"))
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "RESTIC_PASSWORD") {
		t.Errorf("wrong password: %v", err)
	}
	_, err = OpenReader(ctx, localOpts(t.TempDir(), f.password))
	if !errors.Is(err, ErrNotRestic) {
		t.Errorf("empty directory: %v, want ErrNotRestic", err)
	}

	t.Run("lock", func(t *testing.T) {
		r, err := OpenReader(ctx, localOpts(f.repo, f.password))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		lock := writeLock(t, r.Repository(), f.repo, true)
		s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Path: "dumpfile.sql"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.RestoreStream(ctx, s, "", &bytes.Buffer{}, nil)
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "prune") {
			t.Fatalf("restore under an exclusive lock: %v", err)
		}
		os.Remove(lock)
		writeLock(t, r.Repository(), f.repo, false) // a backup's shared lock does not block
		if _, err := r.RestoreStream(ctx, s, "", &bytes.Buffer{}, nil); err != nil {
			t.Fatalf("restore beside a shared lock: %v", err)
		}
	})

	t.Run("damaged pack", func(t *testing.T) {
		dir := copyDir(t, f.repo)
		packs, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*"))
		for _, p := range packs {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/3] ^= 0x55
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r, err := OpenReader(ctx, localOpts(dir, f.password))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		c, err := r.Check(ctx, true)
		if err != nil || c.OK || len(c.Errors) == 0 || !strings.Contains(strings.Join(c.Errors, "\n"), "damaged") {
			t.Fatalf("check --read-data of damaged packs: %v %+v", err, c)
		}
	})

	t.Run("damaged snapshot", func(t *testing.T) {
		// One damaged snapshot object: the other snapshot still lists and
		// restores; check reports the damaged one.
		dir := copyDir(t, f.repo)
		objs, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
		sort.Strings(objs)
		b, _ := os.ReadFile(objs[0])
		b[len(b)/2] ^= 1
		os.WriteFile(objs[0], b, 0o600)
		r, err := OpenReader(ctx, localOpts(dir, f.password))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		snaps, err := r.Snapshots(ctx, repository.Filter{})
		if err != nil || len(snaps) != 1 || len(r.Repository().Skipped()) != 1 {
			t.Fatalf("listing with a damaged snapshot: %d snapshots, skipped %q, %v", len(snaps), r.Repository().Skipped(), err)
		}
		if _, err := r.RestoreTree(ctx, snaps[0], t.TempDir(), repository.TreeRestoreOptions{}); err != nil {
			t.Fatalf("restore of the intact snapshot: %v", err)
		}
		c, err := r.Check(ctx, false)
		if err != nil || c.OK || !strings.Contains(strings.Join(c.Errors, "\n"), "damaged") {
			t.Fatalf("check with a damaged snapshot: %v %+v", err, c)
		}
	})

	t.Run("missing index", func(t *testing.T) {
		dir := copyDir(t, f.repo)
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(ctx, localOpts(dir, f.password))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		_, err = r.Snapshots(ctx, repository.Filter{})
		if !errors.Is(err, ErrNoIndex) || !strings.Contains(err.Error(), "repair index") {
			t.Fatalf("missing index: %v", err)
		}
	})
}

// copyDir copies a repository directory so a test can damage the copy.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
