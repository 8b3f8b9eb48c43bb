package restic

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/repository/location"
)

// allocatedBy reports the bytes fn allocated, and its error.
func allocatedBy(fn func() error) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// sparse makes a file of size bytes that takes no disk space.
func sparse(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func testRepo(t *testing.T, dir string) *Repository {
	t.Helper()
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := newMasterKey(key[:32], key[32:48], key[48:])
	if err != nil {
		t.Fatal(err)
	}
	return &Repository{be: NewLocalBackend(dir), key: k}
}

// TestOversizedLockRefused: whoever can write to the bucket drops a huge
// object into locks/, which a restore reads before any MAC check. It
// fails with the file named, not with the step killed for its memory.
func TestOversizedLockRefused(t *testing.T) {
	dir := t.TempDir()
	r := testRepo(t, dir)
	writeLock(t, r, dir, false)
	if err := r.CheckLocks(t.Context()); err != nil {
		t.Fatalf("a shared lock: %v", err)
	}
	name := strings.Repeat("ab", 32)
	sparse(t, filepath.Join(dir, "locks", name), 256<<20)
	n, err := allocatedBy(func() error { return r.CheckLocks(t.Context()) })
	if err == nil || !strings.Contains(err.Error(), "locks abababab is 268435456 bytes, more than restic writes") {
		t.Fatalf("err = %v, want the oversized lock named", err)
	}
	if n > 16<<20 {
		t.Errorf("%d bytes allocated to refuse it", n)
	}
}

// TestOversizedObjectsRefused: each kind read whole has its bound, at
// which a read still succeeds (tried for the small ones).
func TestOversizedObjectsRefused(t *testing.T) {
	dir := t.TempDir()
	be := NewLocalBackend(dir)
	name := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		t    FileType
		name string
	}{
		{ConfigFile, ""}, {KeyFile, name}, {LockFile, name}, {SnapshotFile, name}, {IndexFile, name}, {PackFile, name},
	} {
		t.Run(tc.t.String(), func(t *testing.T) {
			p := filepath.Join(dir, filepath.FromSlash(defaultPath(tc.t, tc.name)))
			if maxWhole(tc.t) <= 1<<20 {
				sparse(t, p, maxWhole(tc.t))
				if _, err := be.Get(t.Context(), tc.t, tc.name, 0, -1); err != nil {
					t.Fatalf("at the bound: %v", err)
				}
			}
			sparse(t, p, maxWhole(tc.t)+1)
			n, err := allocatedBy(func() error { _, err := be.Get(t.Context(), tc.t, tc.name, 0, -1); return err })
			if err == nil || !strings.Contains(err.Error(), "more than restic writes") || !strings.Contains(err.Error(), tc.t.String()) {
				t.Fatalf("one byte over: %v", err)
			}
			if n > 1<<20 {
				t.Errorf("%d bytes allocated to refuse it", n)
			}
		})
	}
}

// TestRESTOversizedObject: a REST server's answer is read no further than
// the bound, whether it announces its length or not.
func TestRESTOversizedObject(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasPrefix(req.URL.Path, "/r/locks/"):
			// No Content-Length: a chunked body, larger than a lock.
			w.WriteHeader(http.StatusOK)
			chunk := make([]byte, 64<<10)
			for i := 0; i < 64; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		case req.URL.Path == "/r/config":
			w.Header().Set("Content-Length", "4294967296")
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, req)
		}
	}))
	defer srv.Close()
	be, err := NewRESTBackend(&location.RestOptions{URL: srv.URL + "/r"})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("ef", 32)
	if _, err := be.Get(t.Context(), LockFile, name, 0, -1); err == nil || !strings.Contains(err.Error(), "locks efefefef is more than 1048576 bytes") {
		t.Errorf("chunked lock: %v", err)
	}
	if _, err := be.Get(t.Context(), ConfigFile, "", 0, -1); err == nil || !strings.Contains(err.Error(), "config is 4294967296 bytes") {
		t.Errorf("announced config: %v", err)
	}
}

// TestCapReader: exactly the bound reads, one byte more fails.
func TestCapReader(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{{0, true}, {1000, true}, {1001, false}, {5000, false}} {
		c := &capReader{r: strings.NewReader(strings.Repeat("x", tc.size)), n: 1000, err: io.ErrShortBuffer}
		b, err := io.ReadAll(c)
		if (err == nil) != tc.ok || (tc.ok && len(b) != tc.size) || len(b) > 1000 {
			t.Errorf("%d bytes: read %d, %v", tc.size, len(b), err)
		}
	}
	for _, tc := range []struct {
		limit, size int
		ok          bool
	}{{-1, 5000, true}, {1000, 1000, true}, {1000, 1001, false}} {
		w := byteBuffer{limit: tc.limit}
		_, err := w.Write(make([]byte, tc.size))
		if (err == nil) != tc.ok {
			t.Errorf("byteBuffer limit %d, %d bytes: %v", tc.limit, tc.size, err)
		}
	}
}

// TestLoadBlobChecksSizeFirst: an index entry larger than a restic blob is
// refused before LoadBlob reads its range into memory.
func TestLoadBlobChecksSizeFirst(t *testing.T) {
	dir := t.TempDir()
	r := testRepo(t, dir)
	pack, id := ID{7}, ID{8}
	sparse(t, filepath.Join(dir, filepath.FromSlash(defaultPath(PackFile, pack.String()))), 1<<20)
	r.index = map[blobKey]blobLoc{{id, TreeBlob}: {pack: pack, length: maxBlobSize + 1}}
	r.indexOnce.Do(func() {})
	n, err := allocatedBy(func() error { _, err := r.LoadBlob(t.Context(), TreeBlob, id); return err })
	if err == nil || !strings.Contains(err.Error(), "more than a restic blob can be") {
		t.Fatalf("err = %v, want the index's size refused", err)
	}
	if n > 1<<20 {
		t.Errorf("%d bytes allocated to refuse it", n)
	}
}
