package repository

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
)

// backupReusing backs up src as BackupPaths does, with walk (or a walk of
// its own), and returns what the backup took whole and listed.
func backupReusing(t *testing.T, r *Repository, src string, walk *TreeWalk, o BackupOptions) (*SnapshotStats, *treeReuse) {
	t.Helper()
	ctx := context.Background()
	if walk == nil {
		walk = StartTreeWalk(ctx, src)
		defer walk.Stop()
	}
	if o.Host == "" {
		o.Host = "host-0"
	}
	reuse := newTreeReuse(walk, o.Exclude)
	entry, err := localfs.NewEntry(src)
	if err == nil {
		entry, err = plainRoot(entry)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.backupEntry(ctx, entry, src, o, reuse)
	if err != nil {
		t.Fatal(err)
	}
	return s, reuse
}

func taken(reuse *treeReuse) []string {
	var out []string
	for rel := range reuse.reused {
		out = append(out, rel)
	}
	slices.Sort(out)
	return out
}

// restoreLatest restores the latest snapshot of src and returns its files.
func restoreLatest(t *testing.T, r *Repository, src string) map[string]string {
	t.Helper()
	ctx := context.Background()
	s, err := r.Resolve(ctx, Latest, Filter{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := r.RestoreTree(ctx, s, dst, TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	return readTree(t, dst)
}

func treePrintRecords(t *testing.T, r *Repository) []*manifest.EntryMetadata {
	t.Helper()
	mds, err := r.rep.FindManifests(context.Background(), map[string]string{manifest.TypeLabelKey: treePrintsType})
	if err != nil {
		t.Fatal(err)
	}
	return mds
}

var reuseFiles = map[string]string{
	"a/1.txt": "one", "a/b/2.txt": "two", "c/3.txt": "three", "c/d/4.txt": "four", "5.txt": "five",
}

// TestUnchangedTreeIsTakenWhole: a backup of a tree that did not change
// takes its root from the previous snapshot and lists nothing; one file
// changed lists only the directories above it.
func TestUnchangedTreeIsTakenWhole(t *testing.T) {
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, reuseFiles)

	if _, reuse := backupReusing(t, r, src, nil, BackupOptions{}); len(reuse.reused) != 0 {
		t.Errorf("first backup took %v", taken(reuse))
	}
	s, reuse := backupReusing(t, r, src, nil, BackupOptions{})
	if got := taken(reuse); !slices.Equal(got, []string{""}) || len(reuse.listed) != 0 {
		t.Errorf("unchanged tree: took %v, listed %v; want the root only, nothing listed", got, reuse.listed)
	}
	if *s.FileStats.TotalFiles != 5 || *s.FileStats.UnmodifiedFiles != 5 || s.TotalBytes == 0 {
		t.Errorf("stats of a backup taken whole: %+v, %d bytes", s.FileStats, s.TotalBytes)
	}
	if got := restoreLatest(t, r, src); fmt.Sprint(got) != fmt.Sprint(reuseFiles) {
		t.Errorf("restored %v", got)
	}

	writeTree(t, src, map[string]string{"a/b/2.txt": "two, changed"})
	_, reuse = backupReusing(t, r, src, nil, BackupOptions{})
	if got := taken(reuse); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after a change in a/b: took %v, want [c]", got)
	}
	want := merged(reuseFiles, map[string]string{"a/b/2.txt": "two, changed"})
	if got := restoreLatest(t, r, src); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored %v", got)
	}
	// That backup read a, a/b and the root as the walk saw them, so the
	// next one takes the root again.
	if _, reuse = backupReusing(t, r, src, nil, BackupOptions{}); !slices.Equal(taken(reuse), []string{""}) {
		t.Errorf("unchanged again: took %v", taken(reuse))
	}
	// One record is kept: the latest snapshot's.
	if n := len(treePrintRecords(t, r)); n != 1 {
		t.Errorf("%d records of prints, want 1", n)
	}
}

// TestChangeDuringBackupIsNotRecorded: a directory that changed between
// the walk and the upload is stored as the upload read it, and its print
// (from the walk) is not recorded, nor any above it. Otherwise a later
// backup that found the walk's state again (a file put back with its old
// time, as a restore does) would take the directory as the upload stored
// it.
func TestChangeDuringBackupIsNotRecorded(t *testing.T) {
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, reuseFiles)
	backupReusing(t, r, src, nil, BackupOptions{})

	file := filepath.Join(src, "a/b/2.txt")
	writeTree(t, src, map[string]string{"a/b/2.txt": "seen"})
	seenAt := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(file, seenAt, seenAt); err != nil {
		t.Fatal(err)
	}
	walk := StartTreeWalk(context.Background(), src)
	defer walk.Stop()
	if _, err := walk.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeTree(t, src, map[string]string{"a/b/2.txt": "read"})
	_, reuse := backupReusing(t, r, src, walk, BackupOptions{})
	if got := restoreLatest(t, r, src)["a/b/2.txt"]; got != "read" {
		t.Errorf("stored %q, want what the upload read", got)
	}
	if rec := reuse.recorded(context.Background()); rec[""] != "" || rec["a"] != "" || rec["a/b"] != "" || rec["c"] == "" {
		t.Errorf("recorded %v: want c and below only", rec)
	}

	// The walk's state comes back, time and all.
	writeTree(t, src, map[string]string{"a/b/2.txt": "seen"})
	if err := os.Chtimes(file, seenAt, seenAt); err != nil {
		t.Fatal(err)
	}
	backupReusing(t, r, src, nil, BackupOptions{})
	if got := restoreLatest(t, r, src)["a/b/2.txt"]; got != "seen" {
		t.Errorf("stored %q after the file came back, want %q", got, "seen")
	}
}

// TestTakenWholeUnderExcludes: directories a rule excludes do not stop
// the rest being taken whole, and a backup under other rules takes
// nothing.
func TestTakenWholeUnderExcludes(t *testing.T) {
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, merged(reuseFiles, map[string]string{"logs/app.log": "log", "c/x.log": "x"}))
	excl := BackupOptions{Exclude: []string{"logs/", "*.log"}}
	backupReusing(t, r, src, nil, excl)
	if _, reuse := backupReusing(t, r, src, nil, excl); !slices.Equal(taken(reuse), []string{""}) {
		t.Errorf("unchanged under excludes: took %v", taken(reuse))
	}
	if got := restoreLatest(t, r, src); fmt.Sprint(got) != fmt.Sprint(reuseFiles) {
		t.Errorf("restored %v", got)
	}
	_, reuse := backupReusing(t, r, src, nil, BackupOptions{})
	if len(reuse.reused) != 0 {
		t.Errorf("other rules took %v", taken(reuse))
	}
	want := merged(reuseFiles, map[string]string{"logs/app.log": "log", "c/x.log": "x"})
	if got := restoreLatest(t, r, src); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored %v without excludes", got)
	}
}

// TestForgetDropsTreePrints: forgetting a snapshot drops its record.
func TestForgetDropsTreePrints(t *testing.T) {
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	writeTree(t, src, reuseFiles)
	s, _ := backupReusing(t, r, src, nil, BackupOptions{})
	recs := treePrintRecords(t, r)
	if len(recs) != 1 || recs[0].Labels["snapshot"] != s.Name {
		t.Fatalf("records %v after a backup of %s", recs, s.Name)
	}
	err := repo.WriteSession(context.Background(), r.rep, repo.WriteSessionOptions{},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			return dropTreePrints(ctx, w, []manifest.ID{manifest.ID(s.Name)})
		})
	if err != nil {
		t.Fatal(err)
	}
	if recs := treePrintRecords(t, r); len(recs) != 0 {
		t.Errorf("records %v after dropping", recs)
	}
}

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestPlaceholderNamesAreFiles: entries named *.kopia-entry (which
// kopia's local filesystem takes for the placeholders of a shallow
// restore) are backed up as what they are. One whose content describes
// another object of the repository does not put that object into the
// snapshot.
func TestPlaceholderNamesAreFiles(t *testing.T) {
	r := openNew(t, localOptions(t))
	ctx := context.Background()
	secretDir := t.TempDir()
	writeTree(t, secretDir, map[string]string{"secret.txt": "someone else's"})
	if _, err := r.BackupPaths(ctx, []string{secretDir}, BackupOptions{Host: "other"}); err != nil {
		t.Fatal(err)
	}
	man := r.latestManifest(ctx, snapshot.SourceInfo{Host: "other", UserName: clientUser, Path: secretDir})
	if man == nil {
		t.Fatal("no snapshot of the other host")
	}
	// A placeholder naming the other snapshot's root: kopia would store
	// that tree as "stolen".
	forged := fmt.Sprintf(`{"name":"stolen","type":"d","mode":"0755","mtime":"2026-01-01T00:00:00Z","obj":%q}`, man.RootEntry.ObjectID.String())

	files := map[string]string{
		"notes.kopia-entry":          "just notes",
		"stolen.kopia-entry":         forged,
		"d.kopia-entry/in.txt":       "inside",
		"d.kopia-entry/.kopia-entry": forged,
		"plain.txt":                  "plain",
	}
	// The directory backed up may bear such a name too.
	for _, root := range []string{"tree", "tree.kopia-entry"} {
		src := filepath.Join(t.TempDir(), root)
		writeTree(t, src, files)
		for _, withReuse := range []bool{false, true} {
			if withReuse {
				backupReusing(t, r, src, nil, BackupOptions{Host: "host-0"})
			} else if _, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "host-0"}); err != nil {
				t.Fatal(err)
			}
			if got := restoreLatest(t, r, src); fmt.Sprint(got) != fmt.Sprint(files) {
				t.Errorf("%s: restored %v, want %v", root, got, files)
			}
		}
	}
}
