package repository

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestStoredNameRoundTrip(t *testing.T) {
	for _, raw := range []string{"plain", "with space", "new\nline", "bad\xffname\xfe", "\xff", nameMarker + "looks escaped", nameMarker, `back\slash "quoted"`, "ünïcödé"} {
		stored := storedName(raw)
		if !utf8Valid(stored) {
			t.Errorf("storedName(%q) = %q is not UTF-8", raw, stored)
		}
		got, err := rawName(stored)
		if err != nil || got != raw {
			t.Errorf("rawName(storedName(%q)) = %q, %v", raw, got, err)
		}
	}
	// What an altered snapshot could hold: escapes that unquote to a path
	// separator, "..", or NUL are refused, not written.
	for _, stored := range []string{nameMarker + `\x2f`, nameMarker + `..`, nameMarker + `\x00`, nameMarker + `a\x2f..\x2fb`, nameMarker + `"`} {
		if raw, err := rawPath("dir/" + stored); err == nil {
			t.Errorf("rawPath of %q = %q, want an error", stored, raw)
		}
	}
}

func utf8Valid(s string) bool { return string([]rune(s)) == s }

// TestNonUTF8NamesRoundTrip backs up names kopia's JSON cannot hold as
// they are and restores them byte for byte, through both restore paths,
// and one file of them to stdout and by RestoreFiles.
func TestNonUTF8NamesRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	src := t.TempDir()
	names := []string{"bad\xffname", nameMarker + "marked", "ok.txt"}
	for i, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte{byte('a' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "dir\xfe", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "dir\xfe", "sub", "f\x80"), []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bad\xffname", filepath.Join(src, "link\xff")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BackupPaths(ctx, []string{src}, BackupOptions{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, Latest, Filter{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	list := func(root string) []string {
		var out []string
		filepath.Walk(root, func(p string, st os.FileInfo, err error) error {
			if err == nil && p != root {
				rel, _ := filepath.Rel(root, p)
				out = append(out, rel)
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	want := list(src)
	for _, byFile := range []bool{false, true} {
		r.byFile = byFile
		out := filepath.Join(t.TempDir(), "out")
		if _, err := r.RestoreTree(ctx, s, out, TreeRestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := list(out); !equalStrings(got, want) {
			t.Fatalf("restored names (by file %v) %q, want %q", byFile, got, want)
		}
		if l, err := os.Readlink(filepath.Join(out, "link\xff")); err != nil || l != "bad\xffname" {
			t.Errorf("symlink: %q %v", l, err)
		}
	}
	var buf bytes.Buffer
	if _, err := r.RestoreStream(ctx, s, "dir\xfe/sub/f\x80", &buf, nil); err != nil || buf.String() != "deep" {
		t.Errorf("restore one file by its raw name: %q %v", buf.String(), err)
	}
	var got []string
	if err := r.RestoreFiles(ctx, s, nil, func(name string, _ io.Reader) error { got = append(got, name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !equalStrings(got, []string{"bad\xffname", "ok.txt", nameMarker + "marked"}) {
		t.Errorf("RestoreFiles names %q", got)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
