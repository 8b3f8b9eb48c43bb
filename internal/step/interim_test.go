package step

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/repository"
)

// TestUploadDownload: what a user's dump step leaves in the interim
// directory is one snapshot recorded under InterimPath, whatever the
// directory's path on this machine; retention keeps the newest; download
// puts the newest back for the load step, a named one when asked, and a
// stream snapshot (Stash's Redis dumpfile.resp) as a file.
func TestUploadDownload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.opts.Retention = stashv1alpha1.RetentionPolicy{Name: "keep-2", KeepLast: 2}
	dir := filepath.Join(t.TempDir(), "interim", "data")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range []string{"one", "two", "three"} {
		write("dump.rdb", data)
		write("meta/version", "7.0."+string(rune('0'+i)))
		if err := Upload(ctx, e.opts, dir); err != nil {
			t.Fatal(err)
		}
		out, err := ReadOutput(e.opts.OutputDir)
		if err != nil {
			t.Fatal(err)
		}
		if hs := out.HostBackupStats; len(hs) != 1 || hs[0].Phase != "Succeeded" || len(hs[0].Snapshots) != 1 || hs[0].Snapshots[0].Path != InterimPath {
			t.Fatalf("upload %d: output %+v, want host-0 Succeeded with one snapshot of %s", i, hs, InterimPath)
		}
	}
	r := e.open(t)
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots after keep-last 2, want 2", len(snaps))
	}
	first := snaps[0]

	read := func(dir, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	o := e.opts
	dest := filepath.Join(t.TempDir(), "down")
	if err := Download(ctx, o, dest, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(dest, "dump.rdb"); got != "three" {
		t.Errorf("latest download: dump.rdb %q, want three", got)
	}
	if got := read(dest, "meta/version"); got != "7.0.2" {
		t.Errorf("latest download: meta/version %q", got)
	}
	o.Snapshot = first.ShortID()
	dest2 := filepath.Join(t.TempDir(), "down")
	if err := Download(ctx, o, dest2, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(dest2, "dump.rdb"); got != "two" {
		t.Errorf("--snapshot %s: dump.rdb %q, want two", first.ShortID(), got)
	}

	// A Stash-era stream snapshot, newer than the uploads, is what
	// latest picks when the step looks for it too.
	rw := e.open(t)
	if _, err := rw.BackupStream(ctx, "dumpfile.resp", strings.NewReader("*1\r\n$4\r\nPING\r\n"), repository.BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	o.Snapshot = ""
	dest3 := filepath.Join(t.TempDir(), "down")
	if err := Download(ctx, o, dest3, append([]string{"dumpfile.resp"}, DefaultDownloadPaths...)); err != nil {
		t.Fatal(err)
	}
	if got := read(dest3, "dumpfile.resp"); got != "*1\r\n$4\r\nPING\r\n" {
		t.Errorf("stream download: %q", got)
	}
	// An ID of a snapshot of another path is refused: it would hand the
	// load step another application's files.
	streams, err := rw.Snapshots(ctx, repository.Filter{Path: "dumpfile.resp"})
	if err != nil || len(streams) != 1 {
		t.Fatalf("stream snapshots %v, %v", streams, err)
	}
	o.OutputDir, o.Snapshot = "", streams[0].ShortID()
	if err := Download(ctx, o, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "not one of the paths") {
		t.Errorf("download of another path's snapshot: %v, want a refusal", err)
	}
}

// TestUploadRefusesNothing: an upload after a dump step that wrote
// nothing fails and commits no snapshot.
func TestUploadRefusesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.opts.OutputDir = ""
	var log bytes.Buffer
	e.opts.Log = &log
	empty := t.TempDir()
	for _, tc := range []struct{ dir, want string }{
		{"", "--interim-data-dir is empty"},
		{filepath.Join(empty, "missing"), "does not exist"},
		{empty, "is empty"},
	} {
		err := Upload(ctx, e.opts, tc.dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("upload of %q: %v, want %q", tc.dir, err, tc.want)
		}
	}
	snaps, err := e.open(t).Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 0 {
		t.Errorf("%d snapshots after failed uploads, want none", len(snaps))
	}
}
