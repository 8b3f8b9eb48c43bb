package repository

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/testserver"
)

// kopiaConnectArgs are the kopia CLI's arguments to connect to o, as
// stash's own maintenance identity so that kopia may run maintenance.
func kopiaConnectArgs(o Options) []string {
	args := []string{"repository", "connect"}
	switch o.Location.Kind {
	case location.KindLocal:
		args = append(args, "filesystem", "--path", o.Location.Filesystem.Path)
	case location.KindS3:
		s := o.Location.S3
		args = append(args, "s3", "--endpoint", s.Endpoint, "--disable-tls", "--bucket", s.BucketName,
			"--prefix", s.Prefix, "--access-key", s.AccessKeyID, "--secret-access-key", s.SecretAccessKey)
	}
	return append(args, "--override-username", clientUser, "--override-hostname", clientHost)
}

// TestKopiaCLIReadsAndMaintains: the kopia CLI v0.22.3, which Velero ships,
// lists the streams and trees this project writes, verifies every file
// and content, restores them identical, and runs full maintenance, with
// and without its safety margins, after which this project still restores
// every snapshot identical. That is the promise that a Stash repository is
// a kopia repository.
func TestKopiaCLIReadsAndMaintains(t *testing.T) {
	kopia := testserver.KopiaCLI(t)
	// The library must ignore the kopia CLI's environment, which a
	// user's shell or image may well set.
	t.Setenv("KOPIA_CACHE_DIRECTORY", t.TempDir())
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			o := be.opts(t)
			r := openNew(t, o)
			stream1, stream2 := testStream(6<<20, 1), testStream(6<<20, 2)
			for i, s := range [][]byte{stream1, stream2} {
				if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(s), BackupOptions{Host: "host-0", Tags: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			src := t.TempDir()
			files := map[string]string{
				"a/1.txt": "one", "a/b/2.txt": "two", "empty": "", "big.bin": string(testStream(3<<20, 3)),
			}
			for i := range 40 {
				files[fmt.Sprintf("many/f%02d", i)] = strings.Repeat(fmt.Sprint(i), 100*i)
			}
			writeTree(t, src, files)
			if err := os.Symlink("a/1.txt", filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
			if _, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-1"}); err != nil {
				t.Fatal(err)
			}

			kopia.Setenv("KOPIA_PASSWORD", o.Password)
			keyed, err := r.streamChunker(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kopia.Run(t, kopiaConnectArgs(o)...)
			defer kopia.Run(t, "repository", "disconnect")
			var listed []struct {
				ID     string `json:"id"`
				Source struct {
					Host string `json:"host"`
					Path string `json:"path"`
				} `json:"source"`
				RootEntry struct {
					ObjectID string `json:"obj"`
				} `json:"rootEntry"`
			}
			if err := json.Unmarshal([]byte(kopia.Run(t, "snapshot", "list", "--all", "--json")), &listed); err != nil {
				t.Fatal(err)
			}
			roots := map[string]string{}
			for _, s := range listed {
				roots[s.Source.Host+":"+s.Source.Path] = s.ID
			}
			if len(listed) != 3 || roots["host-0:dump.sql"] == "" || roots["host-1:"+src] == "" {
				t.Fatalf("kopia lists %+v, want two streams and one tree", listed)
			}
			kopia.Run(t, "snapshot", "verify", "--verify-files-percent=100", "--all-sources")
			kopia.Run(t, "content", "verify", "--download-percent=100")

			// kopia restores what stash wrote.
			out := t.TempDir()
			kopia.Run(t, "snapshot", "restore", roots["host-1:"+src], filepath.Join(out, "tree"))
			if got := readTree(t, filepath.Join(out, "tree")); fmt.Sprint(got) != fmt.Sprint(withLink(files)) {
				t.Errorf("kopia restored the tree as %v", keys(got))
			}
			if l, err := os.Readlink(filepath.Join(out, "tree", "link")); err != nil || l != "a/1.txt" {
				t.Errorf("kopia restored the symlink as %q, %v", l, err)
			}
			var restored []string
			for i, s := range listed {
				if s.Source.Path != "dump.sql" {
					continue
				}
				// A stream snapshot's root is the file itself.
				file := filepath.Join(out, fmt.Sprint("stream", i))
				kopia.Run(t, "snapshot", "restore", s.ID, file)
				got, err := os.ReadFile(file)
				switch {
				case err != nil:
					t.Errorf("kopia restored stream snapshot %s: %v", s.ID, err)
				case bytes.Equal(got, stream1):
					restored = append(restored, "1")
				case bytes.Equal(got, stream2):
					restored = append(restored, "2")
				default:
					t.Errorf("kopia restored stream snapshot %s as %d bytes equal to neither stream", s.ID, len(got))
				}
			}
			if slices.Sort(restored); fmt.Sprint(restored) != "[1 2]" {
				t.Errorf("kopia restored streams %v, want both", restored)
			}

			// stash forgets the first stream; kopia's maintenance frees it.
			if _, err := r.Forget(ctx, Policy{KeepLast: 1}, Filter{Path: "dump.sql"}, false); err != nil {
				t.Fatal(err)
			}
			// Contents written in the same second as kopia rewrites them
			// tie in the index; kopia's own clients never rewrite so soon.
			time.Sleep(1100 * time.Millisecond)
			kopia.Run(t, "maintenance", "run", "--full")
			kopia.Run(t, "maintenance", "run", "--full", "--safety=none")
			kopia.Run(t, "content", "verify", "--download-percent=100")

			r2 := openExisting(t, o)
			if after, err := r2.streamChunker(ctx); err != nil || fmt.Sprint(cutLengths(after, stream1)) != fmt.Sprint(cutLengths(keyed, stream1)) {
				t.Errorf("the chunker key did not survive kopia's maintenance: %v", err)
			}
			snaps, err := r2.Snapshots(ctx, Filter{})
			if err != nil || len(snaps) != 2 {
				t.Fatalf("after kopia's maintenance stash lists %d snapshots, %v; want 2", len(snaps), err)
			}
			for _, s := range snaps {
				if s.Path == "dump.sql" {
					var b bytes.Buffer
					if _, err := r2.RestoreStream(ctx, s, "", &b, nil); err != nil || !bytes.Equal(b.Bytes(), stream2) {
						t.Errorf("stream after kopia's maintenance: %d bytes, %v", b.Len(), err)
					}
					continue
				}
				dst := filepath.Join(t.TempDir(), "out")
				if _, err := r2.RestoreTree(ctx, s, dst, TreeRestoreOptions{}); err != nil {
					t.Fatal(err)
				}
				if got := readTree(t, dst); fmt.Sprint(got) != fmt.Sprint(withLink(files)) {
					t.Errorf("tree after kopia's maintenance: %v", keys(got))
				}
			}
			if c, err := r2.Check(ctx, true); err != nil || !c.OK {
				t.Errorf("stash check after kopia's maintenance: %+v %v", c, err)
			}
		})
	}
}

// withLink is files as readTree sees them with the symlink "link" to
// a/1.txt beside them.
func withLink(files map[string]string) map[string]string {
	out := map[string]string{"link": files["a/1.txt"]}
	for k, v := range files {
		out[k] = v
	}
	return out
}
