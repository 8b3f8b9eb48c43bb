package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"

	"github.com/stash-backup/stash/internal/chunker"
)

// chunkLengths are the lengths of the chunks a stream snapshot was cut
// into, read from its kopia object index.
func chunkLengths(t *testing.T, r *Repository, s Snapshot) []int64 {
	t.Helper()
	iid, ok := s.man.RootEntry.ObjectID.IndexObjectID()
	if !ok {
		t.Fatalf("snapshot %s is one chunk", s.ShortID())
	}
	rd, err := r.rep.OpenObject(context.Background(), iid)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var ix struct {
		Entries []object.IndirectObjectEntry `json:"entries"`
	}
	if err := json.NewDecoder(rd).Decode(&ix); err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range ix.Entries {
		out = append(out, e.Length)
	}
	return out
}

func cutLengths(c *chunker.Chunker, data []byte) []int64 {
	var out []int64
	for len(data) > 0 {
		n := c.Cut(data)
		out = append(out, int64(n))
		data = data[n:]
	}
	return out
}

// TestChunkerKeyedPerRepository: two repositories cut the same stream at
// different points, each by its own secret key; a repository created
// before keys (no key manifest) keeps cutting with the fixed table, so
// its streams go on deduplicating.
func TestChunkerKeyedPerRepository(t *testing.T) {
	ctx := context.Background()
	data := testStream(12<<20, 7)
	backup := func(r *Repository) Snapshot {
		t.Helper()
		st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "host-0"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Resolve(ctx, st.Name, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r1, r2 := openNew(t, localOptions(t)), openNew(t, localOptions(t))
	l1, l2 := chunkLengths(t, r1, backup(r1)), chunkLengths(t, r2, backup(r2))
	if fmt.Sprint(l1) == fmt.Sprint(l2) {
		t.Fatalf("two repositories cut the same stream alike: %v", l1)
	}
	if unk := cutLengths(chunker.Unkeyed(), data); fmt.Sprint(l1) == fmt.Sprint(unk) {
		t.Fatalf("a new repository cuts with the public table")
	}
	// The same repository, opened again, cuts alike.
	if again := chunkLengths(t, r1, backup(openExisting(t, r1.opts))); fmt.Sprint(again) != fmt.Sprint(l1) {
		t.Fatalf("one repository cut the same stream as %v, then %v", l1, again)
	}

	// A repository from before keys: its key manifest removed.
	o := localOptions(t)
	old := openNew(t, o)
	err := repo.WriteSession(ctx, old.rep, repo.WriteSessionOptions{}, func(ctx context.Context, w repo.RepositoryWriter) error {
		mds, err := w.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: chunkerKeyType})
		if err != nil || len(mds) != 1 {
			return fmt.Errorf("key manifests %d: %v", len(mds), err)
		}
		return w.DeleteManifest(ctx, mds[0].ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	reopened := openExisting(t, o)
	if got, want := chunkLengths(t, reopened, backup(reopened)), cutLengths(chunker.Unkeyed(), data); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a repository without a key cut %v, want the fixed table's %v", got, want)
	}
}
