package restic

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

// TestRefuseWritingIntoRestic: a backup aimed at a prefix that holds
// Stash's restic repository is refused with the way on, on local disk and
// on S3; so is a wipe of a prefix where one of this project's
// repositories sits beside it; and not one of restic's objects changes.
func TestRefuseWritingIntoRestic(t *testing.T) {
	testserver.NeedIntegration(t)
	for _, p := range []place{localPlace(), s3Place()} {
		t.Run(p.name, func(t *testing.T) {
			ctx := context.Background()
			repo, env, loc := p.make(t)
			f := newFixture(t, versions[2], repo, env...)
			before := f.cli.Run(t, "", nil, "--no-lock", "list", "packs") + f.cli.Run(t, "", nil, "--no-lock", "list", "snapshots")
			opts := repository.Options{Location: loc, Password: f.password}

			_, err := repository.OpenOrInit(ctx, opts)
			if !errors.Is(err, repository.ErrForeignRepository) || !strings.Contains(err.Error(), "stash repo import") {
				t.Fatalf("backup into a restic prefix: %v, want ErrForeignRepository naming stash repo import", err)
			}
			if err := repository.Init(ctx, opts); !errors.Is(err, repository.ErrForeignRepository) {
				t.Fatalf("init in a restic prefix: %v", err)
			}
			if _, err := repository.Wipe(ctx, opts); err == nil {
				t.Fatal("wipe of a restic prefix succeeded")
			}
			r, err := repository.OpenOrInit(ctx, opts)
			if err == nil {
				r.Close(ctx)
			}
			if !errors.Is(err, repository.ErrForeignRepository) {
				t.Fatalf("second backup into a restic prefix: %v", err)
			}
			if p.name == "local" {
				// Nothing of this project's was left beside restic's.
				ents, _ := os.ReadDir(repo)
				for _, e := range ents {
					if !map[string]bool{"config": true, "data": true, "index": true, "keys": true, "locks": true, "snapshots": true}[e.Name()] {
						t.Errorf("%s left in the restic repository's directory", e.Name())
					}
				}
			}
			after := f.cli.Run(t, "", nil, "--no-lock", "list", "packs") + f.cli.Run(t, "", nil, "--no-lock", "list", "snapshots")
			if before != after {
				t.Fatalf("restic's objects changed:\nbefore %s\nafter %s", before, after)
			}
			f.cli.Run(t, "", nil, "check")
		})
	}
}

// TestWipeDeletesOnlyItsOwn: a wipe deletes this project's blobs and
// nothing else that shares the prefix.
func TestWipeDeletesOnlyItsOwn(t *testing.T) {
	testserver.NeedIntegration(t)
	ctx := context.Background()
	_, _, loc := localPlace().make(t)
	opts := repository.Options{Location: loc, Password: "pw"}
	r, err := repository.OpenOrInit(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader([]byte("data")), repository.BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	r.Close(ctx)
	dir := loc.Filesystem.Path
	strays := []string{"README.md", "notes/todo.txt", "pinned.f"}
	for _, s := range strays {
		p := filepath.Join(dir, s)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("not ours"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := repository.Wipe(ctx, opts); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.Walk(dir, func(p string, st os.FileInfo, err error) error {
		if err == nil && !st.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, rel)
		}
		return nil
	})
	sort.Strings(left)
	sort.Strings(strays)
	if strings.Join(left, ",") != strings.Join(strays, ",") {
		t.Fatalf("after wipe: %v left, want exactly %v", left, strays)
	}
}
