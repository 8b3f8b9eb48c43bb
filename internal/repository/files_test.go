package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// TestBackupFiles: a file set (an application's per-index files) streams
// into one directory snapshot that comes back file for file through
// RestoreFiles and as a tree through RestoreTree; a second backup counts
// what changed; a producer that fails, a bad name or a name given twice
// commits nothing; and the kopia CLI verifies and restores the snapshot
// as any directory it wrote.
func TestBackupFiles(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	files := map[string]string{
		"orders.json":          string(testStream(5<<20, 7)),
		"orders.mapping.json":  `{"properties":{}}`,
		"orders.settings.json": "",
		"users.json":           strings.Repeat(`{"_id":"1"}`+"\n", 1000),
	}
	names := []string{"users.json", "orders.json", "orders.mapping.json", "orders.settings.json"}
	produce := func(files map[string]string) func(AddFile) error {
		return func(add AddFile) error {
			for _, n := range names {
				if err := add(n, strings.NewReader(files[n])); err != nil {
					return err
				}
			}
			return nil
		}
	}
	st, err := r.BackupFiles(ctx, "/stash-data/es", produce(files), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalBytes == 0 || *st.FileStats.TotalFiles != 4 || *st.FileStats.NewFiles != 4 {
		t.Errorf("stats %+v, want 4 new files", st)
	}
	s, err := r.Resolve(ctx, st.Name, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Stream || s.Path != "/stash-data/es" {
		t.Errorf("snapshot %+v: want a directory snapshot of /stash-data/es", s)
	}
	got := map[string]string{}
	var order []string
	if err := r.RestoreFiles(ctx, s, nil, func(name string, src io.Reader) error {
		b, err := io.ReadAll(src)
		got[name] = string(b)
		order = append(order, name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(files) {
		t.Errorf("RestoreFiles gave %v", keys(got))
	}
	if fmt.Sprint(order) != "[orders.json orders.mapping.json orders.settings.json users.json]" {
		t.Errorf("RestoreFiles order %v, want by name", order)
	}
	tree := filepath.Join(t.TempDir(), "es")
	if _, err := r.RestoreTree(ctx, s, tree, TreeRestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if fromTree := readTree(t, tree); fmt.Sprint(fromTree) != fmt.Sprint(files) {
		t.Errorf("RestoreTree gave %v", keys(fromTree))
	}

	changed := map[string]string{}
	for k, v := range files {
		changed[k] = v
	}
	changed["users.json"] += `{"_id":"2"}` + "\n"
	st2, err := r.BackupFiles(ctx, "/stash-data/es", produce(changed), BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if *st2.FileStats.NewFiles != 0 || *st2.FileStats.ModifiedFiles != 1 || *st2.FileStats.UnmodifiedFiles != 3 {
		t.Errorf("second backup counts %+v, want 1 modified and 3 unmodified", st2.FileStats)
	}

	boom := errors.New("the cluster went away")
	for name, p := range map[string]func(AddFile) error{
		"failing producer": func(add AddFile) error {
			if err := add("a.json", strings.NewReader("partial")); err != nil {
				return err
			}
			return boom
		},
		"failing reader": func(add AddFile) error {
			return add("a.json", io.MultiReader(strings.NewReader("partial"), errReader{boom}))
		},
		"name with a slash": func(add AddFile) error { return add("../a.json", strings.NewReader("x")) },
		"name twice": func(add AddFile) error {
			if err := add("a.json", strings.NewReader("x")); err != nil {
				return err
			}
			return add("a.json", strings.NewReader("y"))
		},
	} {
		if _, err := r.BackupFiles(ctx, "/stash-data/bad", p, BackupOptions{Host: "host-0"}); err == nil {
			t.Errorf("%s: committed", name)
		}
	}
	if snaps, err := r.Snapshots(ctx, Filter{Path: "/stash-data/bad"}); err != nil || len(snaps) != 0 {
		t.Errorf("failed file sets left %d snapshots (%v)", len(snaps), err)
	}

	t.Run("kopia CLI", func(t *testing.T) {
		kopia := testserver.KopiaCLI(t)
		kopia.Setenv("KOPIA_PASSWORD", o.Password)
		kopia.Run(t, kopiaConnectArgs(o)...)
		defer kopia.Run(t, "repository", "disconnect")
		kopia.Run(t, "snapshot", "verify", "--verify-files-percent=100", "--all-sources")
		out := filepath.Join(t.TempDir(), "es")
		kopia.Run(t, "snapshot", "restore", st.Name, out)
		if fromKopia := readTree(t, out); fmt.Sprint(fromKopia) != fmt.Sprint(files) {
			t.Errorf("kopia restored %v", keys(fromKopia))
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
