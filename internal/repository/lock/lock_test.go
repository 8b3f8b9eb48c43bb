package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
)

func storage(t *testing.T) blob.Storage {
	t.Helper()
	st, err := filesystem.New(context.Background(), &filesystem.Options{Path: t.TempDir()}, true)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func shorten(t *testing.T, refresh, stale time.Duration) {
	oldRefresh, oldStale := Refresh, Stale
	Refresh, Stale = refresh, stale
	t.Cleanup(func() { Refresh, Stale = oldRefresh, oldStale })
}

// TestAcquireFreshRelease: a held lock is fresh to every other client,
// of its kind and of all kinds, and gone once released.
func TestAcquireFreshRelease(t *testing.T) {
	ctx := context.Background()
	st := storage(t)
	shared, err := Acquire(ctx, st, Shared)
	if err != nil {
		t.Fatal(err)
	}
	excl, err := Acquire(ctx, st, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind string
		own  blob.ID
		want int
	}{
		{Shared, excl.ID(), 1}, {Exclusive, excl.ID(), 0}, {"", excl.ID(), 1}, {"", "", 2}, {Exclusive, shared.ID(), 1},
	} {
		got, err := Fresh(ctx, st, tc.kind, tc.own)
		if err != nil || len(got) != tc.want {
			t.Errorf("Fresh(%q, own %s): %d locks (%v), want %d", tc.kind, tc.own, len(got), err, tc.want)
		}
	}
	if err := shared.Check(); err != nil {
		t.Errorf("a fresh lock: %v", err)
	}
	shared.Release()
	excl.Release()
	if got, _ := Fresh(ctx, st, "", ""); len(got) != 0 {
		t.Errorf("%d locks after release", len(got))
	}
}

// TestStaleLocks: a lock no one refreshes (its holder was killed) stops
// counting once stale and RemoveStale deletes it, measured on the
// storage's clock against the remover's own fresh lock.
func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	shorten(t, time.Hour, 50*time.Millisecond)
	st := storage(t)
	killed := NewID(Shared)
	if err := Write(ctx, st, killed, Shared); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	own, err := Acquire(ctx, st, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Release()
	if got, _ := Fresh(ctx, st, "", own.ID()); len(got) != 0 {
		t.Errorf("a stale lock counts as held: %v", got)
	}
	RemoveStale(ctx, st, own.ID())
	if _, err := st.GetMetadata(ctx, killed); !errors.Is(err, blob.ErrBlobNotFound) {
		t.Errorf("the stale lock was not removed: %v", err)
	}
	if _, err := st.GetMetadata(ctx, own.ID()); err != nil {
		t.Errorf("RemoveStale removed its caller's own lock: %v", err)
	}
}
