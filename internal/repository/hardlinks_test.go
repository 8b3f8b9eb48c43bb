package repository

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLinksTag(t *testing.T) {
	groups := [][]string{{"a", "d/b"}, {"single"}, {"x y/\n", "z"}}
	v, err := encodeLinks(groups)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeLinks(v)
	if err != nil {
		t.Fatal(err)
	}
	// A group of one is no link and is not recorded.
	if want := [][]string{{"a", "d/b"}, {"x y/\n", "z"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %q, want %q", got, want)
	}
	if v, err := encodeLinks([][]string{{"only"}}); v != "" || err != nil {
		t.Fatalf("no links: %q %v, want no tag", v, err)
	}
	huge := make([]string, 0, maxLinksBytes/100)
	for range cap(huge) {
		huge = append(huge, strings.Repeat("p", 120))
	}
	if _, err := encodeLinks([][]string{huge}); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized links: %v", err)
	}

	for _, tc := range []struct{ name, tag, want string }{
		{"absolute", `[["a","/etc/passwd"]]`, "not a path inside"},
		{"parent", `[["a","../b"]]`, "not a path inside"},
		{"inner parent", `[["a","d/../../b"]]`, "not a path inside"},
		{"empty", `[["a",""]]`, "not a path inside"},
		{"NUL", `[["a","b\u0000c"]]`, "not a path inside"},
		{"not JSON", `{`, "hard links"},
		{"too long", "[" + strings.Repeat(" ", maxLinksBytes) + "]", "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeLinks(tc.tag); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestRelinkConfined(t *testing.T) {
	target := t.TempDir()
	outside := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(target, "a"), "same")
	write(filepath.Join(target, "d", "b"), "same")
	write(filepath.Join(outside, "secret"), "theirs")
	// A directory of the target that is a symlink leading out: a link
	// through it would replace a file outside.
	if err := os.Symlink(outside, filepath.Join(target, "out")); err != nil {
		t.Fatal(err)
	}
	w := &writtenFiles{m: map[string]bool{"a": true, "d/b": true, "out/secret": true}}
	if err := Relink(target, w.only([][]string{{"a", "d/b", "out/secret"}, {"a", "missing"}})); err != nil {
		t.Fatal(err)
	}
	var sa, sb os.FileInfo
	sa, _ = os.Stat(filepath.Join(target, "a"))
	sb, _ = os.Stat(filepath.Join(target, "d", "b"))
	if !os.SameFile(sa, sb) {
		t.Error("a and d/b were not linked")
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "theirs" {
		t.Fatalf("a file outside the target was replaced: %q %v", b, err)
	}
	if st, _ := os.Stat(filepath.Join(outside, "secret")); os.SameFile(sa, st) {
		t.Fatal("a file outside the target was linked")
	}
}

// TestRelinkRaceStaysInTarget: a process writing in the target swaps a
// directory for a symlink leading out after the restore checked it; the
// link is still made in the directory that was checked, never outside.
func TestRelinkRaceStaysInTarget(t *testing.T) {
	target, outside := t.TempDir(), t.TempDir()
	for p, s := range map[string]string{filepath.Join(target, "a"): "same", filepath.Join(target, "d", "b"): "same", filepath.Join(outside, "b"): "theirs"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	relinkResolved = func(rel string) {
		if rel != "d/b" {
			return
		}
		if err := os.Rename(filepath.Join(target, "d"), filepath.Join(target, "d-moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(target, "d")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { relinkResolved = nil })
	if err := Relink(target, [][]string{{"a", "d/b"}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "b")); err != nil || string(b) != "theirs" {
		t.Fatalf("a file outside the target was replaced: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the relink wrote outside the target: %v", entries)
	}
	sa, _ := os.Stat(filepath.Join(target, "a"))
	if sb, _ := os.Stat(filepath.Join(target, "d-moved", "b")); !os.SameFile(sa, sb) {
		t.Error("the file in the directory that was checked was not linked")
	}
}
