package treeprint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"golang.org/x/sys/unix"
)

// base is the tree every case starts from:
//
//	f (10 bytes), l -> f, s/g, s/t/h, u/k
func base(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"s/t", "u"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"f": "0123456789", "s/g": "g", "s/t/h": "h", "u/k": "k"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	// Every time is set, so that a case's change is the only one.
	past := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, p := range []string{"f", "s/g", "s/t/h", "u/k", "s/t", "s", "u", "."} {
		if err := os.Chtimes(filepath.Join(root, p), past, past); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func walk(t *testing.T, root string, workers int) *Tree {
	t.Helper()
	tree, err := Walk(context.Background(), root, Options{Workers: workers, MaxDirs: 100})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func dir(t *testing.T, tree *Tree, rel string) Dir {
	t.Helper()
	d, ok := tree.Dir(rel)
	if !ok {
		t.Fatalf("no directory %q in the walk", rel)
	}
	return d
}

// TestChangesChangePrints: each change to what a backup records changes
// the prints of the directory holding it and of every directory above,
// and no other.
func TestChangesChangePrints(t *testing.T) {
	later := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, tc := range []struct {
		name   string
		change func(root string) error
		// changed are the directories whose subtree print changes; local
		// those whose own level's print does.
		changed, local []string
	}{
		{"nothing", func(string) error { return nil }, nil, nil},
		{"content, same size and time", func(root string) error {
			fi, err := os.Stat(filepath.Join(root, "f"))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(root, "f"), []byte("9876543210"), 0o644); err != nil {
				return err
			}
			// Trusted as kopia and restic trust it: same size and time.
			return os.Chtimes(filepath.Join(root, "f"), fi.ModTime(), fi.ModTime())
		}, nil, nil},
		{"file time", func(root string) error { return os.Chtimes(filepath.Join(root, "f"), later, later) }, []string{""}, []string{""}},
		{"file mode", func(root string) error { return os.Chmod(filepath.Join(root, "f"), 0o600) }, []string{""}, []string{""}},
		{"file size", func(root string) error {
			fi, err := os.Stat(filepath.Join(root, "f"))
			if err != nil {
				return err
			}
			if err := os.Truncate(filepath.Join(root, "f"), 3); err != nil {
				return err
			}
			return os.Chtimes(filepath.Join(root, "f"), fi.ModTime(), fi.ModTime())
		}, []string{""}, []string{""}},
		{"deep file time", func(root string) error { return os.Chtimes(filepath.Join(root, "s/t/h"), later, later) }, []string{"", "s", "s/t"}, []string{"s/t"}},
		{"directory time", func(root string) error { return os.Chtimes(filepath.Join(root, "u"), later, later) }, []string{"", "u"}, []string{"", "u"}},
		{"symlink target, same length", func(root string) error {
			l := filepath.Join(root, "l")
			if err := os.Remove(l); err != nil {
				return err
			}
			return os.Symlink("g", l)
		}, []string{""}, []string{""}},
		{"rename", func(root string) error {
			return os.Rename(filepath.Join(root, "u/k"), filepath.Join(root, "u/j"))
		}, []string{"", "u"}, []string{"u"}},
		{"owner", func(root string) error {
			if os.Geteuid() != 0 {
				return errSkip
			}
			return os.Lchown(filepath.Join(root, "s/g"), 1234, 1234)
		}, []string{"", "s"}, []string{"s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := base(t)
			before := walk(t, root, 1)
			if err := tc.change(root); errors.Is(err, errSkip) {
				t.Skip("needs root")
			} else if err != nil {
				t.Fatal(err)
			}
			// A parent's time changes with its entries: set it back, so
			// that only what the case changes differs.
			for _, d := range []string{".", "s", "s/t", "u"} {
				fi, err := os.Stat(filepath.Join(root, d))
				if err != nil {
					t.Fatal(err)
				}
				if d == "u" && tc.name == "directory time" {
					continue
				}
				if !fi.ModTime().Equal(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)) {
					past := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
					if err := os.Chtimes(filepath.Join(root, d), past, past); err != nil {
						t.Fatal(err)
					}
				}
			}
			after := walk(t, root, 4)
			for _, rel := range []string{"", "s", "s/t", "u"} {
				b, a := dir(t, before, rel), dir(t, after, rel)
				if !b.Complete || !a.Complete {
					t.Fatalf("%q not complete", rel)
				}
				if want := contains(tc.changed, rel); (a.Tree != b.Tree) != want {
					t.Errorf("%q: subtree print changed %v, want %v", rel, a.Tree != b.Tree, want)
				}
				if want := contains(tc.local, rel); (a.Local != b.Local) != want {
					t.Errorf("%q: local print changed %v, want %v", rel, a.Local != b.Local, want)
				}
			}
		})
	}
}

var errSkip = errors.New("skip")

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestUnvouchedEntries: a directory holding an entry a print does not
// vouch for (a FIFO, a kopia placeholder) is not complete, nor is any
// directory above it; its siblings are.
func TestUnvouchedEntries(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(dir string) error
	}{
		{"fifo", func(dir string) error { return unix.Mkfifo(filepath.Join(dir, "pipe"), 0o600) }},
		{"placeholder", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "x"+localfs.ShallowEntrySuffix), []byte("{}"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := base(t)
			if err := tc.make(filepath.Join(root, "s/t")); err != nil {
				t.Fatal(err)
			}
			tree := walk(t, root, 2)
			for rel, want := range map[string]bool{"": false, "s": false, "s/t": false, "u": true} {
				if got := dir(t, tree, rel).Complete; got != want {
					t.Errorf("%q complete %v, want %v", rel, got, want)
				}
			}
		})
	}
}

func TestWalkBounds(t *testing.T) {
	root := base(t)
	if _, err := Walk(context.Background(), root, Options{Workers: 2, MaxDirs: 3}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("four directories with MaxDirs 3: %v, want ErrTooLarge", err)
	}
	tree, err := Walk(context.Background(), root, Options{Workers: 2, MaxDirs: 4})
	if err != nil || tree.Len() != 4 {
		t.Errorf("four directories with MaxDirs 4: %d, %v", tree.Len(), err)
	}
	// Listings are kept while they fit, and taken once.
	tree, err = Walk(context.Background(), root, Options{Workers: 1, MaxDirs: 10, KeepEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, rel := range []string{"", "s", "s/t", "u"} {
		if e, ok := tree.TakeEntries(rel); ok {
			kept += len(e)
			if _, again := tree.TakeEntries(rel); again {
				t.Errorf("%q taken twice", rel)
			}
		}
	}
	if kept == 0 || kept > 4 {
		t.Errorf("kept %d entries, want 1 to 4", kept)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Walk(ctx, root, Options{Workers: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: %v", err)
	}
}

// TestWalkAgreesWithKopia: the walk reads each level as kopia's local
// filesystem lists it, modes with special bits, symbolic links and a
// directory's size included, so that a backup can check the uploader's
// listings against it.
func TestWalkAgreesWithKopia(t *testing.T) {
	root := base(t)
	if err := os.Chmod(filepath.Join(root, "s"), 0o755|os.ModeSetgid|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "f"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	tree := walk(t, root, 2)
	ctx := context.Background()
	var check func(rel string, d fs.Directory)
	check = func(rel string, d fs.Directory) {
		var entries []fs.Entry
		if err := fs.IterateEntries(ctx, d, func(_ context.Context, e fs.Entry) error {
			entries = append(entries, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		local, ok := LocalOf(d, entries)
		if !ok || local != dir(t, tree, rel).Local {
			t.Errorf("%q: kopia's listing prints %x (%v), the walk %x", rel, local, ok, dir(t, tree, rel).Local)
		}
		for _, e := range entries {
			if sd, ok := e.(fs.Directory); ok {
				check(filepath.ToSlash(filepath.Join(rel, sd.Name())), sd)
			}
		}
	}
	e, err := localfs.NewEntry(root)
	if err != nil {
		t.Fatal(err)
	}
	check("", e.(fs.Directory))
	if tree.Len() != 4 {
		t.Errorf("walked %d directories, want 4", tree.Len())
	}
}
