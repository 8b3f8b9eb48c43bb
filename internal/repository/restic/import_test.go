package restic

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

// TestImport copies a restic repository into one of this project's and
// restores from the copy: the same hosts, paths, times and tags, the tree
// and the dump identical, and a second import copies only what restic
// backed up since.
func TestImport(t *testing.T) {
	testserver.NeedIntegration(t)
	ctx := context.Background()
	f := newFixture(t, versions[1], filepath.Join(t.TempDir(), "restic"))
	src, err := OpenReader(ctx, localOpts(f.repo, f.password))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	dstOpts := localOpts(filepath.Join(t.TempDir(), "kopia"), "new-password")
	dst, err := repository.OpenOrInit(ctx, dstOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)

	var events []ImportEvent
	res, err := src.Import(ctx, dst, ImportOptions{Progress: func(e ImportEvent) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 2 || res.Skipped != 0 || len(events) != 4 {
		t.Fatalf("first import: %d imported, %d skipped, %d events; want 2, 0, 4", len(res.Imported), res.Skipped, len(events))
	}
	from, _ := src.Snapshots(ctx, repository.Filter{})
	to, err := dst.Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(to) != 2 {
		t.Fatalf("%d snapshots after import, want 2", len(to))
	}
	for i := range to {
		a, b := from[i], to[i]
		if a.Host != b.Host || a.Path != b.Path || !a.Time.Equal(b.Time) || a.Stream != b.Stream || b.Tags[ImportTag] != a.ID {
			t.Errorf("imported %+v\nfrom %+v", b, a)
		}
	}
	if to[0].Tags["app"] != "demo" {
		t.Errorf("restic's tag app=demo not kept: %v", to[0].Tags)
	}

	// Restore from the copy: the tree, hard links included (the import
	// records restic's links in the snapshot), and the dump. Names that
	// are not UTF-8 are kept (stored escaped).
	target := filepath.Join(t.TempDir(), "restored")
	if _, err := dst.RestoreTree(ctx, to[0], target, repository.TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := res.Imported[0].Warnings; len(w) != 0 {
		t.Errorf("import warnings: %q", w)
	}
	if d := diffLines(describeTree(t, f.src), describeTree(t, target)); d != "" {
		t.Fatalf("tree restored from the import differs:\n%s", d)
	}
	if !strings.Contains(strings.Join(describeTree(t, target), "\n"), "linked-to=") {
		t.Fatal("the fixture's hard link is not in the restored tree's description: this check cannot fail")
	}
	// A restore that leaves one file of a link out does not link the
	// target's own file of that name: many/hardlink is plain.txt's link.
	part := filepath.Join(t.TempDir(), "part")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, "plain.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.RestoreTree(ctx, to[0], part, repository.TreeRestoreOptions{Include: []string{"many/*"}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "plain.txt")); err != nil || string(b) != "mine\n" {
		t.Errorf("the target's plain.txt was replaced by a restore that left it out: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(part, "many", "hardlink")); err != nil || string(b) == "mine\n" {
		t.Errorf("many/hardlink was linked to a file the restore did not write: %q %v", b, err)
	}
	var buf bytes.Buffer
	if _, err := dst.RestoreStream(ctx, to[1], "", &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), f.dump) {
		t.Fatalf("dump restored from the import differs (%d bytes, want %d): %v", buf.Len(), len(f.dump), err)
	}

	// restic backs up again; a second import copies that one alone.
	f.cli.Run(t, "", bytes.NewReader([]byte("select 2;\n")), "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "host-1")
	src2, err := OpenReader(ctx, localOpts(f.repo, f.password))
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close(ctx)
	res, err = src2.Import(ctx, dst, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 1 || res.Skipped != 2 || res.Imported[0].Host != "host-1" {
		t.Fatalf("second import: %+v, want host-1's one snapshot and 2 skipped", res)
	}
	// A filter chooses among what is left: nothing of host-0 is new.
	res, err = src2.Import(ctx, dst, ImportOptions{Filter: repository.Filter{Host: "host-0"}})
	if err != nil || len(res.Imported) != 0 || res.Skipped != 2 {
		t.Fatalf("import of host-0 again: %+v %v", res, err)
	}
}
