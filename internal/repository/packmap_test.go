//go:build unix

package repository

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/kopia/kopia/repo"
)

func TestWithMappedRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pack")
	data := testStream(3*os.Getpagesize()+123, 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	for _, r := range [][2]int{{0, len(data)}, {1, 10}, {page - 1, 2}, {page, page}, {page + 7, 2*page + 116}, {len(data) - 1, 1}} {
		var got []byte
		if err := withMappedRange(path, int64(r[0]), int64(r[1]), func(b []byte) error {
			got = append([]byte(nil), b...)
			return nil
		}); err != nil {
			t.Fatalf("%d+%d: %v", r[0], r[1], err)
		}
		if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("%d+%d: the mapped bytes differ from the file's", r[0], r[1])
		}
	}
	for _, r := range [][2]int64{{int64(len(data)), 1}, {int64(len(data)) - 1, 2}, {1 << 40, 1}} {
		err := withMappedRange(path, r[0], r[1], func([]byte) error { t.Error("called past the end"); return nil })
		if !errors.Is(err, errShortFile) {
			t.Errorf("%d+%d past the end: %v, want errShortFile", r[0], r[1], err)
		}
	}
	useErr := errors.New("decode failed")
	if err := withMappedRange(path, 0, 10, func([]byte) error { return useErr }); !errors.Is(err, useErr) {
		t.Errorf("use's error: %v", err)
	}
}

// TestMappedRangeCutShort: a pack file cut short while it is mapped makes
// reading past its new end fault; that is an error, not a crash, and the
// goroutine's fault setting is left as it was.
func TestMappedRangeCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pack")
	page := os.Getpagesize()
	if err := os.WriteFile(path, testStream(4*page, 2), 0o600); err != nil {
		t.Fatal(err)
	}
	before := debug.SetPanicOnFault(false)
	err := withMappedRange(path, 0, int64(4*page), func(b []byte) error {
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		var sum byte
		for _, c := range b {
			sum += c
		}
		t.Errorf("read %d bytes of a file cut to none (sum %d)", len(b), sum)
		return nil
	})
	if !errors.Is(err, errMappingFault) {
		t.Fatalf("reading a file cut short: %v, want errMappingFault", err)
	}
	if after := debug.SetPanicOnFault(before); after {
		t.Error("the goroutine was left panicking on faults")
	}
}

// TestStreamRestoreMapsLocalPacks: a local repository's stream restore
// decodes every chunk straight from its mapped pack file, and a pack cut
// shorter than the index says fails the restore with an error.
func TestStreamRestoreMapsLocalPacks(t *testing.T) {
	ctx := context.Background()
	rd, entries := localStreamRestore(t, 9, func(*Repository) {})
	dr := rd.rep.(repo.DirectRepository)
	if got := rd.mappedReads.Load(); got != int64(len(entries)) || rd.fallbacks.Load() != 0 {
		t.Fatalf("%d of %d chunks decoded from mapped packs, %d fallbacks", got, len(entries), rd.fallbacks.Load())
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
