package repository

import (
	"path"
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		rel              string
		dir              bool
		want             bool
	}{
		{name: "no patterns keep files", rel: "a/b.txt", want: true},
		{name: "name pattern at depth", exclude: []string{"*.log"}, rel: "x/y/app.log", want: false},
		{name: "name pattern spares others", exclude: []string{"*.log"}, rel: "x/y/app.txt", want: true},
		{name: "excluded dir hides subtree", exclude: []string{"cache"}, rel: "home/cache/f", want: false},
		{name: "excluded dir not walked", exclude: []string{"cache"}, rel: "home/cache", dir: true, want: false},
		{name: "anchored exclude", exclude: []string{"/data/tmp"}, rel: "data/tmp/x", want: false},
		{name: "anchored exclude elsewhere", exclude: []string{"/data/tmp"}, rel: "other/data/tmp/x", want: true},
		{name: "include anchored file", include: []string{"data/keep.txt"}, rel: "data/keep.txt", want: true},
		{name: "include anchored rejects sibling", include: []string{"data/keep.txt"}, rel: "data/drop.txt", want: false},
		{name: "include walks parent", include: []string{"data/sub/*.sql"}, rel: "data", dir: true, want: true},
		{name: "include walks deeper parent", include: []string{"data/sub/*.sql"}, rel: "data/sub", dir: true, want: true},
		{name: "include skips other dir", include: []string{"data/sub/*.sql"}, rel: "logs", dir: true, want: false},
		{name: "include dir takes subtree", include: []string{"data"}, rel: "data/a/b/c", want: true},
		{name: "include name pattern", include: []string{"*.sql"}, rel: "deep/x/dump.sql", want: true},
		{name: "include name pattern rejects", include: []string{"*.sql"}, rel: "deep/x/dump.txt", want: false},
		{name: "exclude beats include", include: []string{"data"}, exclude: []string{"*.tmp"}, rel: "data/x.tmp", want: false},
		{name: "leading slash include", include: []string{"/etc/conf"}, rel: "etc/conf", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := matcher{include: tt.include, exclude: tt.exclude}
			var got bool
			if tt.dir {
				got = m.dirWanted(tt.rel)
			} else {
				got = m.fileWanted(tt.rel)
			}
			if got != tt.want {
				t.Errorf("rel %q dir=%v: got %v, want %v", tt.rel, tt.dir, got, tt.want)
			}
		})
	}
}

// FuzzMatcher checks the include/exclude matcher on any patterns and path:
// it never panics, an excluded path is never restored, and a file it
// restores is reachable, every directory above it being walked (otherwise
// the restore would silently leave out a file the user asked for).
func FuzzMatcher(f *testing.F) {
	seeds := [][3]string{
		{"", "", "a/b.txt"},
		{"data/sub/*.sql", "", "data/sub/x.sql"},
		{"*.sql", "*.tmp", "deep/x/dump.sql"},
		{"/etc/conf", "", "etc/conf/x"},
		{"data", "data/tmp", "data/tmp/x"},
		{"a/*/c", "", "a/b/c/d"},
		{"a/b/", "", "a/b/c"},
		{"a//b", "", "a/b/c"},
		{"[a-c]/x", "b", "b/x"},
		{"a/b/c/d/e", "", "a/b/c/d/e"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, include, exclude, rel string) {
		// RestoreTree refuses malformed patterns up front.
		for _, p := range []string{include, exclude} {
			if _, err := path.Match(p, ""); err != nil {
				return
			}
		}
		// Snapshot paths are clean and relative, made of checked names.
		if rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "/") || rel == "." {
			return
		}
		for _, c := range strings.Split(rel, "/") {
			if checkEntryName(c) != nil {
				return
			}
		}
		m := matcher{}
		if include != "" {
			m.include = []string{include}
		}
		if exclude != "" {
			m.exclude = []string{exclude}
		}
		if !m.fileWanted(rel) {
			return
		}
		if m.excluded(rel) {
			t.Fatalf("include %q exclude %q: %q is excluded yet restored", include, exclude, rel)
		}
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			if !m.dirWanted(dir) {
				t.Fatalf("include %q exclude %q: %q is restored but its directory %q is not walked", include, exclude, rel, dir)
			}
		}
	})
}
