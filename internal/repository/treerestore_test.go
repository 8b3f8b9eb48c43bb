package repository

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/virtualfs"
)

// writeMixedTree writes a tree with what a pack-ordered restore must get
// right: many small files over several directories, identical files (one
// content, several places), an empty file and an empty directory, files
// of several contents, modes, times and a symlink.
func writeMixedTree(t *testing.T, root string) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(7, 11))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	files := map[string]string{}
	for i := range 240 {
		files[fmt.Sprintf("d%02d/f%03d.bin", i%12, i)] = random(1 + rng.IntN(48<<10))
	}
	same := random(20 << 10)
	files["dup/a"], files["dup/b"], files["d03/dup-c"] = same, same, same
	files["empty"] = ""
	files["big/one.bin"] = random(9 << 20)
	files["big/two.txt"] = strings.Repeat("a line of text, compressible\n", 300000)
	writeTree(t, root, files)
	if err := os.MkdirAll(filepath.Join(root, "nothing", "here"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "d01", "f001.bin"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "big", "two.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d01/f001.bin", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"d02/f002.bin", "big/one.bin", "d05"} {
		if err := os.Chtimes(filepath.Join(root, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// backUpMixedTree writes a mixed tree (writeMixedTree), backs it up to r
// and returns the tree's path and its snapshot.
func backUpMixedTree(t *testing.T, r *Repository) (string, Snapshot) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	writeMixedTree(t, src)
	if _, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, Latest, Filter{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	return src, s
}

// describeTree lists every entry below root with its type, mode, size,
// modification time (a directory's only if dirTimes) and content (or link
// target).
func describeTree(t *testing.T, root string, dirTimes bool) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, st os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		d := fmt.Sprintf("%s %v %d", rel, st.Mode(), st.Size())
		if !st.IsDir() || dirTimes {
			d += fmt.Sprintf(" %d", st.ModTime().UnixNano())
		}
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			d += " -> " + l
		case st.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			d += fmt.Sprintf(" %x", b[:min(len(b), 64)])
			if string(b) == "" {
				d += " empty"
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

// treeDiff lists the lines only one of want and got has.
func treeDiff(want, got []string) string {
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
			fmt.Fprintf(&b, "- %.160s\n", x)
		}
	}
	for _, x := range got {
		if !w[x] {
			fmt.Fprintf(&b, "+ %.160s\n", x)
		}
	}
	return b.String()
}

// TestPackOrderedRestore restores one snapshot through the pack-ordered
// restore, in one batch and in many, keeping descriptors open and closing
// them after every write, and through kopia's restore; each must equal the
// source entry for entry (content, mode, times), and the pack-ordered ones
// must have read the contents from the ranges they held.
func TestPackOrderedRestore(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			r := openNew(t, be.opts(t))
			src, s := backUpMixedTree(t, r)
			// Directories' times as recorded are compared between the two
			// restores, not with the source: kopia's snapshot records a
			// directory's time as its uploader saw it.
			want := describeTree(t, src, false)
			var kopiaTree []string
			cases := []struct {
				name     string
				batch    int
				maxOpen  int64
				byFile   bool
				fromHeld bool
			}{
				{name: "kopia's restore", batch: 16384, maxOpen: 256, byFile: true},
				{name: "one batch", batch: 16384, maxOpen: 256, fromHeld: true},
				{name: "batches of 7, reopening", batch: 7, maxOpen: 0, fromHeld: true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					defer func(b int, m int64) { restoreBatchFiles, maxOpenRestoreFiles = b, m }(restoreBatchFiles, maxOpenRestoreFiles)
					restoreBatchFiles, maxOpenRestoreFiles = c.batch, c.maxOpen
					r.byFile = c.byFile
					defer func() { r.byFile = false }()
					served, decoded := r.held.served.Load(), r.contentDecoder().decoded.Load()
					dst := filepath.Join(t.TempDir(), "out")
					res, err := r.RestoreTree(ctx, s, dst, TreeRestoreOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if d := treeDiff(want, describeTree(t, dst, false)); d != "" {
						t.Errorf("restored tree differs from the source:\n%s", d)
					}
					if c.byFile {
						kopiaTree = describeTree(t, dst, true)
					} else if d := treeDiff(kopiaTree, describeTree(t, dst, true)); d != "" {
						t.Errorf("restored tree differs from kopia's restore:\n%s", d)
					}
					// 246 files (the symlink is not one), 9 MiB and more.
					if res.Files != 246 || res.Bytes < 9<<20 {
						t.Errorf("result: %d files, %d bytes", res.Files, res.Bytes)
					}
					// The pack-ordered restore decodes contents from the
					// ranges it read; kopia reads what the decoder does not
					// know from the ranges held.
					n := r.held.served.Load() - served + r.contentDecoder().decoded.Load() - decoded
					if c.fromHeld && (n < 240 || r.fallbacks.Load() != 0) {
						t.Errorf("%d contents read from the pack ranges, want one per file at least; %d left to kopia", n, r.fallbacks.Load())
					}
					if !c.fromHeld && r.held.served.Load() != served {
						t.Errorf("kopia's restore read %d contents from held ranges", r.held.served.Load()-served)
					}
				})
			}
		})
	}
}

// TestPackOrderedRestoreDamage restores from a repository whose packs
// were damaged: the restore fails naming a file, and leaves no temporary
// file behind.
func TestPackOrderedRestoreDamage(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	_, s := backUpMixedTree(t, r)
	// Flip a byte in the middle of every data pack ("p" blobs, sharded
	// into p/).
	var packs int
	packDir := filepath.Join(o.Location.Filesystem.Path, "p")
	err := filepath.Walk(packDir, func(p string, st os.FileInfo, err error) error {
		if err != nil || !st.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[len(b)/2] ^= 0xff
		packs++
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil || packs == 0 {
		t.Fatalf("damage packs: %v (%d packs)", err, packs)
	}
	dst := filepath.Join(t.TempDir(), "out")
	_, err = r.RestoreTree(ctx, s, dst, TreeRestoreOptions{})
	t.Logf("restore: %v", err)
	if err == nil {
		t.Fatal("restore from damaged packs succeeded")
	}
	if !strings.Contains(err.Error(), "content") || errors.Is(err, context.Canceled) {
		t.Errorf("error does not name the damaged content: %v", err)
	}
	for _, e := range listAll(t, dst) {
		if strings.Contains(e, ".stash-restore-") {
			t.Errorf("temporary file left behind: %s", e)
		}
	}
}

// countedDir counts how often it is listed.
type countedDir struct {
	fs.Directory
	lists *atomic.Int64
}

func (d countedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	d.lists.Add(1)
	return d.Directory.Iterate(ctx)
}

// TestWalkListsEachDirectoryOnce: the walk lists subdirectories ahead of
// itself, and each directory exactly once, however many siblings it has.
func TestWalkListsEachDirectoryOnce(t *testing.T) {
	ctx := context.Background()
	var lists atomic.Int64
	var subs []fs.Entry
	for i := range 3 * dirLookahead {
		subs = append(subs, countedDir{Directory: virtualfs.NewStaticDirectory(fmt.Sprintf("d%02d", i), nil), lists: &lists})
	}
	out, err := newConfinedOutput(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close(ctx)
	tr := &treeRestorer{out: out, lists: make(chan struct{}, dirLookahead)}
	root := countedDir{Directory: virtualfs.NewStaticDirectory("", subs), lists: &lists}
	if err := tr.walk(ctx, root, "", nil, func(*restoreFile) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n, want := lists.Load(), int64(len(subs)+1); n != want {
		t.Errorf("%d listings of %d directories", n, want)
	}
	if len(tr.dirs) != len(subs)+1 {
		t.Errorf("walked %d directories, want %d", len(tr.dirs), len(subs)+1)
	}
}

// TestTreeRestoreFromPackCutShort: pack files cut shorter than the index
// says fail the restore with an error.
func TestTreeRestoreFromPackCutShort(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	_, s := backUpMixedTree(t, r)
	packDir := filepath.Join(o.Location.Filesystem.Path, "p")
	var packs []string
	if err := filepath.Walk(packDir, func(p string, st os.FileInfo, err error) error {
		if err == nil && st.Mode().IsRegular() {
			packs = append(packs, p)
		}
		return err
	}); err != nil || len(packs) == 0 {
		t.Fatalf("packs: %v %v", packs, err)
	}
	for _, p := range packs {
		if err := os.Truncate(p, 100); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := r.RestoreTree(ctx, s, dst, TreeRestoreOptions{}); err == nil {
		t.Fatal("a tree restored from packs cut short")
	} else {
		t.Logf("restore: %v", err)
	}
}
