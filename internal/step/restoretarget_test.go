package step

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckRestoreDestination(t *testing.T) {
	tmp := t.TempDir()
	scratch := filepath.Join(tmp, "scratch")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	// A directory of the volume that is a symlink to the scratch volume.
	vol := filepath.Join(tmp, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(scratch, filepath.Join(vol, "sneaky")); err != nil {
		t.Fatal(err)
	}
	reserved := []reservedDir{
		{"the scratch volume", "/stash-tmp"},
		{"the scratch directory (--scratch-dir)", scratch},
		{"the output directory (--output-dir)", "/stash-tmp/output"},
		{"the local backend (--bucket)", "/backup"},
		{"unset", ""},
	}
	tests := []struct {
		dest    string
		allowed []string
		want    string // "" accepts; else a part of the error
	}{
		{dest: "/stash-data", want: ""},
		{dest: "/stash-data/sub", allowed: []string{"/stash-data"}, want: ""},
		{dest: filepath.Join(vol, "data"), want: ""},
		{dest: "/stash-tmp", want: "the scratch volume"},
		{dest: "/stash-tmp/output", want: "the scratch volume"},
		{dest: "/stash-tmp/x/y", want: "the scratch volume"},
		{dest: "/", want: `"/"`},
		{dest: "/backup/repo", want: "the local backend"},
		{dest: scratch, want: "--scratch-dir"},
		{dest: tmp, want: "--scratch-dir"}, // above it
		{dest: filepath.Join(vol, "sneaky"), want: "--scratch-dir"},
		{dest: filepath.Join(vol, "sneaky", "new"), want: "--scratch-dir"},
		{dest: "relative/dir", want: "not a clean absolute path"},
		{dest: "/data/../stash-tmp", want: "not a clean absolute path"},
		{dest: "/data/", want: "not a clean absolute path"},
		{dest: "/data\x00", want: "not a clean absolute path"},
		{dest: "/other", allowed: []string{"/stash-data"}, want: "not under --restore-paths"},
		{dest: "/stash-data2", allowed: []string{"/stash-data"}, want: "not under --restore-paths"},
	}
	for _, tt := range tests {
		err := checkRestoreDestination(tt.dest, tt.allowed, reserved)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: refused: %v", tt.dest, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want an error naming %s", tt.dest, err, tt.want)
		}
	}
}
