package repository

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	kfs "github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// crafted is an entry of a snapshot written through kopia's API directly,
// as someone holding the bucket (and the password) could write one.
type crafted struct {
	name     string
	typ      snapshot.EntryType
	content  string // a file's bytes or a symlink's target
	children []crafted
}

func file(name, content string) crafted {
	return crafted{name: name, typ: snapshot.EntryTypeFile, content: content}
}
func symlink(name, target string) crafted {
	return crafted{name: name, typ: snapshot.EntryTypeSymlink, content: target}
}
func dir(name string, children ...crafted) crafted {
	return crafted{name: name, typ: snapshot.EntryTypeDirectory, children: children}
}

// writeCrafted writes entries as a directory object and returns its entry.
func writeCrafted(ctx context.Context, t *testing.T, w repo.RepositoryWriter, name string, entries []crafted) *snapshot.DirEntry {
	t.Helper()
	now := kfs.UTCTimestampFromTime(time.Now())
	own := snapshot.DirEntry{UserID: uint32(os.Getuid()), GroupID: uint32(os.Getgid())}
	var des []*snapshot.DirEntry
	for _, c := range entries {
		switch c.typ {
		case snapshot.EntryTypeDirectory:
			des = append(des, writeCrafted(ctx, t, w, c.name, c.children))
		default:
			ow := w.NewObjectWriter(ctx, object.WriterOptions{})
			if _, err := ow.Write([]byte(c.content)); err != nil {
				t.Fatal(err)
			}
			oid, err := ow.Result()
			if err != nil {
				t.Fatal(err)
			}
			perm := snapshot.Permissions(0o644)
			if c.typ == snapshot.EntryTypeSymlink {
				perm = 0o777
			}
			des = append(des, &snapshot.DirEntry{Name: c.name, Type: c.typ, ObjectID: oid, FileSize: int64(len(c.content)),
				Permissions: perm, ModTime: now, UserID: own.UserID, GroupID: own.GroupID})
		}
	}
	summ := &kfs.DirectorySummary{TotalDirCount: 1, MaxModTime: now}
	oid, err := snapshotfs.WriteDirManifest(ctx, w, name, &snapshot.DirManifest{StreamType: "kopia:directory", Entries: des, Summary: summ}, "")
	if err != nil {
		t.Fatal(err)
	}
	return &snapshot.DirEntry{Name: name, Type: snapshot.EntryTypeDirectory, ObjectID: oid, Permissions: 0o755, ModTime: now,
		UserID: own.UserID, GroupID: own.GroupID, DirSummary: summ}
}

// craftSnapshot commits a directory snapshot of path holding entries.
func craftSnapshot(t *testing.T, r *Repository, path string, entries ...crafted) Snapshot {
	t.Helper()
	ctx := context.Background()
	var id string
	err := repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "crafted"}, func(ctx context.Context, w repo.RepositoryWriter) error {
		root := writeCrafted(ctx, t, w, "root", entries)
		now := kfs.UTCTimestampFromTime(time.Now())
		man := &snapshot.Manifest{
			Source:    snapshot.SourceInfo{Host: "host-0", UserName: clientUser, Path: path},
			StartTime: now, EndTime: now, RootEntry: root,
		}
		mid, err := snapshot.SaveSnapshot(ctx, w, man)
		id = string(mid)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, id, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listAll lists everything below dir (names with their types), so that a
// test can tell that nothing outside a restore's target changed.
func listAll(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+d.Type().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestHostileSnapshotStaysInTarget restores snapshots crafted to write
// outside their target and checks that the target's parent holds exactly
// what it held before, plus the target.
func TestHostileSnapshotStaysInTarget(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	tests := []struct {
		name    string
		entries []crafted
		// prepare readies the target (a symlink a user left there).
		prepare func(t *testing.T, target, outside string)
		unsafe  bool // refused by name, before anything is written
	}{
		{name: "dot-dot entry", unsafe: true, entries: []crafted{file("ok", "x"), file("../esc", "pwned")}},
		{name: "dot-dot in a name", unsafe: true, entries: []crafted{dir("a", file("../../esc2", "pwned"))}},
		{name: "slashes in a name", unsafe: true, entries: []crafted{file("a/../../esc2", "pwned")}},
		{name: "absolute name", unsafe: true, entries: []crafted{file("/tmp/esc3", "pwned")}},
		{name: "dot-dot directory", unsafe: true, entries: []crafted{dir("..", file("esc4", "pwned"))}},
		{name: "empty name", unsafe: true, entries: []crafted{file("", "pwned")}},
		{name: "NUL in a name", unsafe: true, entries: []crafted{file("a\x00b", "pwned")}},
		{name: "symlink out then an entry below it", unsafe: true, entries: []crafted{
			symlink("link", "OUTSIDE"), file("link/file", "pwned"),
		}},
		{name: "symlink up then an entry below it", unsafe: true, entries: []crafted{
			symlink("up", "../.."), dir("sub", file("../up/file", "pwned")),
		}},
		{
			// The snapshot is clean; the target already holds a symlink
			// where the snapshot has a directory.
			name:    "existing symlink in the target",
			entries: []crafted{dir("link", file("file", "pwned"))},
			prepare: func(t *testing.T, target, outside string) {
				if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(target, "link")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// A symlink in the target where the snapshot has a file: the
			// file replaces the link and is never written through it.
			name:    "existing symlink at a file's name",
			entries: []crafted{file("victim", "restored")},
			prepare: func(t *testing.T, target, outside string) {
				if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(target, "victim")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("original"), 0o644); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(parent, "deep", "target")
			entries := make([]crafted, len(tt.entries))
			for i, e := range tt.entries {
				if e.typ == snapshot.EntryTypeSymlink && e.content == "OUTSIDE" {
					e.content = outside
				}
				entries[i] = e
			}
			if tt.prepare != nil {
				tt.prepare(t, target, outside)
			}
			s := craftSnapshot(t, r, "/data", entries...)
			before := listAll(t, parent)
			_, err := r.RestoreTree(ctx, s, target, TreeRestoreOptions{})
			t.Logf("restore: %v", err)
			if tt.unsafe && !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("restore of an unsafe name: got %v, want ErrUnsafeEntry", err)
			}
			// Nothing outside the target appeared or changed.
			var after []string
			for _, e := range listAll(t, parent) {
				if e == "deep d---------" || strings.HasPrefix(e, filepath.Join("deep", "target")) {
					continue
				}
				after = append(after, e)
			}
			var beforeOut []string
			for _, e := range before {
				if e == "deep d---------" || strings.HasPrefix(e, filepath.Join("deep", "target")) {
					continue
				}
				beforeOut = append(beforeOut, e)
			}
			if strings.Join(after, "\n") != strings.Join(beforeOut, "\n") {
				t.Errorf("outside the target changed:\nbefore %q\nafter  %q", beforeOut, after)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "original" {
				t.Errorf("outside/victim now holds %q", b)
			}
			for _, p := range []string{filepath.Join(parent, "esc"), filepath.Join(parent, "deep", "esc"), filepath.Join(parent, "deep", "esc2"), "/tmp/esc3", filepath.Join(parent, "deep", "esc4")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created", p)
				}
			}
			if tt.unsafe {
				// Refused by name before its directory's entries were
				// written: no file of that directory (nor its sibling
				// "ok") is in the target.
				for _, e := range listAll(t, target) {
					if strings.HasSuffix(e, " ----------") {
						t.Errorf("target holds file %s after a refused restore", e)
					}
				}
			}
			if tt.name == "existing symlink at a file's name" {
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				st, lerr := os.Lstat(filepath.Join(target, "victim"))
				if lerr != nil || !st.Mode().IsRegular() {
					t.Errorf("target/victim is not the restored file: %v %v", st, lerr)
				}
			}
		})
	}
}

// TestSymlinksRestoredNotFollowed restores a snapshot holding symlinks out
// of the target: they come back as symlinks with their recorded targets,
// and nothing is written where they point.
func TestSymlinksRestoredNotFollowed(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	parent := t.TempDir()
	s := craftSnapshot(t, r, "/data",
		symlink("abs", "/etc/passwd"), symlink("up", "../../x"), dir("d", file("f", "data"), symlink("rel", "f")))
	target := filepath.Join(parent, "target")
	if _, err := r.RestoreTree(ctx, s, target, TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"abs": "/etc/passwd", "up": "../../x", "d/rel": "f"} {
		if got, err := os.Readlink(filepath.Join(target, name)); err != nil || got != want {
			t.Errorf("%s: link to %q (%v), want %q", name, got, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(target, "d", "f")); err != nil || string(b) != "data" {
		t.Errorf("d/f: %q %v", b, err)
	}
	// Restoring again over the same target replaces the links, still
	// without following them.
	if _, err := r.RestoreTree(ctx, s, target, TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckEntryName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "/abs", "../x", "a\x00"} {
		if checkEntryName(name) == nil {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"a", "..a", "a..", ".hidden", "with space", "new\nline", "\xff\xfe", "a\\b"} {
		if err := checkEntryName(name); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
}

// TestStreamRestoreTree restores a stream snapshot into a directory: the
// one file under its name, the target's own mode kept.
func TestStreamRestoreTree(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	st, err := r.BackupStream(ctx, "dumpfile.sql", strings.NewReader("SELECT 1;\n"), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, st.Name, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(target, 0o711); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RestoreTree(ctx, s, target, TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "dumpfile.sql")); err != nil || string(b) != "SELECT 1;\n" {
		t.Errorf("dumpfile.sql: %q %v", b, err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("target mode %v %v, want 0711", fi.Mode(), err)
	}
}
