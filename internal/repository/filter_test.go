package repository

import "testing"

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
