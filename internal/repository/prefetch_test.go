package repository

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/object"
)

// fakePaths names each pack's file after the pack.
type fakePaths struct{}

func (fakePaths) GetShardedPathAndFilePath(_ context.Context, id blob.ID) (string, string, error) {
	return "", "/packs/" + string(id), nil
}

// hint is one call of a prefetcher's advice.
type hint struct {
	path    string
	off, n  int64
	written int64 // chunks written when it was given
}

func TestPrefetcherStaysInWindow(t *testing.T) {
	// 300 chunks of 1 MiB in three packs, a few out of order in their
	// pack as parallel writers store them.
	const mib = 1 << 20
	var layout []packRange
	for i := range 300 {
		pack := blob.ID(fmt.Sprintf("p%d", i/100))
		slot := int64(i % 100)
		if i%10 == 3 {
			slot++
		} else if i%10 == 4 {
			slot--
		}
		layout = append(layout, packRange{pack: pack, off: 32 + slot*mib, n: mib})
	}
	var mu sync.Mutex
	var hints []hint
	p := &prefetcher{paths: fakePaths{}, kick: make(chan struct{}, 1)}
	p.advise = func(path string, off, n int64) {
		mu.Lock()
		hints = append(hints, hint{path, off, n, p.done.Load()})
		mu.Unlock()
	}
	ctx := context.Background()
	stop := make(chan struct{})
	go func() {
		// The writer: a chunk at a time, slower than the hints.
		defer close(stop)
		for i := range layout {
			time.Sleep(50 * time.Microsecond)
			p.wrote(i + 1)
		}
	}()
	p.run(ctx, len(layout), func(i int) (packRange, bool) { return layout[i], true })
	<-stop

	// Every chunk's range was hinted, by hints of at most prefetchRun in
	// its own pack; and when a hint was given, no chunk in it lay more
	// than prefetchWindow beyond the chunks written.
	covered := make([]bool, len(layout))
	for _, h := range hints {
		if h.n > prefetchRun || h.n <= 0 {
			t.Fatalf("a hint of %d bytes", h.n)
		}
		for i, r := range layout {
			if "/packs/"+string(r.pack) != h.path || r.off < h.off || r.off+r.n > h.off+h.n {
				continue
			}
			covered[i] = true
			if ahead := int64(i+1)*mib - h.written*mib; ahead > prefetchWindow {
				t.Fatalf("chunk %d hinted %d bytes ahead of the %d chunks written", i, ahead, h.written)
			}
		}
	}
	for i, c := range covered {
		if !c {
			t.Fatalf("chunk %d (%+v) never hinted", i, layout[i])
		}
	}
	if len(hints) > len(layout)/2 {
		t.Errorf("%d hints for %d chunks: neighbours were not merged", len(hints), len(layout))
	}
}

func TestPrefetcherStopsWithTheRestore(t *testing.T) {
	p := &prefetcher{paths: fakePaths{}, kick: make(chan struct{}, 1), advise: func(string, int64, int64) {}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// Nothing is ever written: the prefetcher waits at the window
		// until the restore's context ends.
		p.run(ctx, 1000, func(i int) (packRange, bool) { return packRange{pack: "p", off: int64(i) << 20, n: 1 << 20}, true })
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the prefetcher outlived its restore")
	}
}

func TestStreamRestoreHintsLocalPacks(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var hints []hint
	rd, entries := localStreamRestore(t, 7, func(rd *Repository) {
		rd.advise = func(path string, off, n int64) {
			mu.Lock()
			hints = append(hints, hint{path: path, off: off, n: n})
			mu.Unlock()
		}
	})
	// Every chunk's stored range lies in a hint on its pack's file.
	dr := rd.rep.(repo.DirectRepository)
	locate := contentRanges(ctx, dr.ContentReader(), entries)
	mu.Lock()
	defer mu.Unlock()
	for i := range entries {
		pr, ok := locate(i)
		if !ok {
			t.Fatalf("chunk %d is not one content", i)
		}
		_, file, err := rd.st.(filePaths).GetShardedPathAndFilePath(ctx, pr.pack)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range hints {
			if h.path == file && h.off <= pr.off && pr.off+pr.n <= h.off+h.n {
				if _, err := os.Stat(h.path); err != nil {
					t.Fatalf("a hint on %s: %v", h.path, err)
				}
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("chunk %d (%+v) was read without a hint (hints %v)", i, pr, hints)
		}
	}
}

// localStreamRestore backs up a 24 MiB stream into a new local repository
// and restores it, checked, through a second client that prepare sets up
// first. It returns that client and the stream's chunks.
func localStreamRestore(t *testing.T, seed uint64, prepare func(*Repository)) (*Repository, []object.IndirectObjectEntry) {
	t.Helper()
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	data := testStream(24<<20, seed)
	if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(data), BackupOptions{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	rd := openExisting(t, o)
	prepare(rd)
	snaps, err := rd.Snapshots(ctx, Filter{})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	var out bytes.Buffer
	if _, err := rd.RestoreStream(ctx, snaps[0], "", &out, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the restored stream differs")
	}
	idx, ok := snaps[0].man.RootEntry.ObjectID.IndexObjectID()
	if !ok {
		t.Fatal("a 24 MiB stream of one chunk")
	}
	dr := rd.rep.(repo.DirectRepository)
	entries, err := object.LoadIndexObject(ctx, indexReader{Reader: dr.ContentReader(), rep: rd.rep}, idx)
	if err != nil {
		t.Fatal(err)
	}
	return rd, entries
}

// TestStreamRestoreDecodesLocalPacks: a local repository's stream restore
// decodes every chunk from its pack's stored bytes itself, none through
// kopia, and a pack cut shorter than the index says fails the restore
// with an error.
func TestStreamRestoreDecodesLocalPacks(t *testing.T) {
	ctx := context.Background()
	rd, entries := localStreamRestore(t, 9, func(*Repository) {})
	dr := rd.rep.(repo.DirectRepository)
	if got := rd.contentDecoder().decoded.Load(); got != int64(len(entries)) || rd.fallbacks.Load() != 0 {
		t.Fatalf("%d of %d chunks decoded, %d fallbacks", got, len(entries), rd.fallbacks.Load())
	}
	// Cut the last chunk's pack short of it.
	pr, ok := contentRanges(ctx, dr.ContentReader(), entries)(len(entries) - 1)
	if !ok {
		t.Fatal("the last chunk is not one content")
	}
	_, file, err := rd.st.(filePaths).GetShardedPathAndFilePath(ctx, pr.pack)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, pr.off+pr.n/2); err != nil {
		t.Fatal(err)
	}
	snaps, err := rd.Snapshots(ctx, Filter{})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v %v", snaps, err)
	}
	if _, err := rd.RestoreStream(ctx, snaps[0], "", io.Discard, nil); err == nil {
		t.Fatal("a stream restored from a pack cut short")
	}
}
