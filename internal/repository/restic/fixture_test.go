package restic

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/testserver"
)

// fixture is a restic repository written by a real restic CLI, holding a
// directory snapshot of an awkward tree and a stream snapshot of a dump
// taken Stash's way (restic backup --stdin --stdin-filename dumpfile.sql
// --host host-0).
type fixture struct {
	name     string
	repo     string // the restic repository (RESTIC_REPOSITORY)
	password string
	src      string // the tree backed up
	dump     []byte // the dump backed up from stdin
	// ids are restic's own snapshot IDs, by restic's listing.
	ids []resticSnapshot
	cli *testserver.Restic
}

type resticSnapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
}

// version is a restic CLI and the repository format it writes.
type version struct {
	cli    string
	format int
}

func (v version) String() string { return fmt.Sprintf("restic-%s-v%d", v.cli, v.format) }

// versions are the writers tests read from: the restic Stash shipped, in
// both formats, and today's.
var versions = []version{
	{testserver.ResticDebian, 1},
	{testserver.ResticDebian, 2},
	{testserver.ResticNewest, 2},
}

// newFixture has restic v write a repository at repo (a local directory,
// or any restic repository string with env giving its credentials).
func newFixture(t *testing.T, v version, repo string, env ...string) *fixture {
	t.Helper()
	cli := testserver.ResticCLI(t, v.cli)
	f := &fixture{name: v.String(), repo: repo, password: "stash-pw", cli: cli}
	cli.Setenv("RESTIC_REPOSITORY", repo)
	cli.Setenv("RESTIC_PASSWORD", f.password)
	for _, e := range env {
		k, val, _ := strings.Cut(e, "=")
		cli.Setenv(k, val)
	}
	cli.Run(t, "", nil, "init", "--repository-version", fmt.Sprint(v.format))
	f.src = filepath.Join(t.TempDir(), "data")
	writeOddTree(t, f.src)
	cli.Run(t, filepath.Dir(f.src), nil, "backup", "--host", "host-0", "--tag", "app=demo", f.src)
	f.dump = sqlDump(3 << 20)
	cli.Run(t, "", bytes.NewReader(f.dump), "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "host-0")
	out := cli.Run(t, "", nil, "snapshots", "--json")
	if err := json.Unmarshal([]byte(out), &f.ids); err != nil {
		t.Fatalf("restic snapshots --json: %v\n%s", err, out)
	}
	if len(f.ids) != 2 {
		t.Fatalf("restic lists %d snapshots, want 2", len(f.ids))
	}
	return f
}

// sqlDump is a dump-like text of about n bytes.
func sqlDump(n int) []byte {
	var b bytes.Buffer
	b.WriteString("CREATE TABLE t (id int, v text);\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "INSERT INTO t VALUES (%d, 'row %d %x');\n", i, i*7, sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
	}
	return b.Bytes()
}

// writeOddTree writes what a restore must keep: names with spaces,
// newlines and bytes that are not UTF-8, empty and large files, a sparse
// file, symlinks (one dangling), hard links, modes and old times.
func writeOddTree(t *testing.T, root string) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(3, 5))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("plain.txt", []byte("hello\n"), 0o644)
	write("with space/and more.txt", []byte("spaced\n"), 0o600)
	write("new\nline", []byte("newline in the name\n"), 0o644)
	write("bad\xffname\xfe", []byte("not UTF-8\n"), 0o640)
	write("empty", nil, 0o644)
	write("big/random.bin", random(12<<20), 0o755)
	write("big/text.txt", bytes.Repeat([]byte("compressible line of text\n"), 200000), 0o644)
	for i := range 40 {
		write(fmt.Sprintf("many/f%02d", i), random(1+rng.IntN(8<<10)), 0o644)
	}
	// A sparse file: data at both ends of 64 MiB of hole.
	sp := filepath.Join(root, "sparse.img")
	fh, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(random(4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(random(4096), 64<<20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if err := os.Symlink("plain.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../nowhere/at all", filepath.Join(root, "big", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "plain.txt"), filepath.Join(root, "many", "hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2019, 3, 4, 5, 6, 7, 890000000, time.UTC)
	for _, p := range []string{"plain.txt", "big/random.bin", "many", "private"} {
		if err := os.Chtimes(filepath.Join(root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// describeTree lists every entry below root: type, mode, size,
// modification time, owner, content hash or link target, and for files
// with several links which of them share an inode.
func describeTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.Walk(root, func(p string, st os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		sys := st.Sys().(*syscall.Stat_t)
		d := fmt.Sprintf("%q %v %d uid=%d gid=%d", rel, st.Mode(), st.Size(), sys.Uid, sys.Gid)
		if !st.IsDir() {
			d += fmt.Sprintf(" mtime=%d", st.ModTime().UnixNano())
		}
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			d += fmt.Sprintf(" -> %q", l)
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			d += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
			if sys.Nlink > 1 {
				if first, ok := inodes[sys.Ino]; ok {
					d += " linked-to=" + first
				} else {
					inodes[sys.Ino] = rel
				}
			}
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diffLines(want, got []string) string {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, x := range want {
		if !g[x] {
			fmt.Fprintf(&b, "- %s\n", x)
		}
	}
	for _, x := range got {
		if !w[x] {
			fmt.Fprintf(&b, "+ %s\n", x)
		}
	}
	return b.String()
}

// allocated is the disk space a file takes.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}
