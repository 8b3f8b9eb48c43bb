package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/stash-backup/stash/internal/repository/lock"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
)

// shortLocks makes locks refresh every refresh and go stale after stale,
// for one test.
func shortLocks(t *testing.T, refresh, stale time.Duration) {
	oldRefresh, oldStale := lock.Refresh, lock.Stale
	lock.Refresh, lock.Stale = refresh, stale
	t.Cleanup(func() { lock.Refresh, lock.Stale = oldRefresh, oldStale })
}

// flakyLockWrites fails lock writes while down is set, as a storage outage
// or a stalled node would (a wrapper over the real local storage).
type flakyLockWrites struct {
	blob.Storage
	down atomic.Bool
}

func (f *flakyLockWrites) PutBlob(ctx context.Context, id blob.ID, b blob.Bytes, o blob.PutOptions) error {
	if f.down.Load() && bytes.HasPrefix([]byte(id), []byte(lock.BlobPrefix)) {
		return errors.New("503 Service Unavailable")
	}
	return f.Storage.PutBlob(ctx, id, b, o)
}

// TestLapsedLockStaysLost: a lock that went unrefreshed for longer than
// others wait is lost for good, even once the storage answers again: a
// prune may have run in between.
func TestLapsedLockStaysLost(t *testing.T) {
	shortLocks(t, 20*time.Millisecond, 120*time.Millisecond)
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	st := &flakyLockWrites{Storage: r.st}
	r.st = st
	l, err := r.lockShared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Check(); err != nil {
		t.Fatalf("fresh lock: %v", err)
	}
	st.down.Store(true)
	time.Sleep(250 * time.Millisecond)
	st.down.Store(false)
	time.Sleep(100 * time.Millisecond) // refreshes would succeed now
	if err := l.Check(); !errors.Is(err, ErrLockLost) {
		t.Fatalf("lock after a lapse and a recovered storage: %v, want ErrLockLost", err)
	}
	md, err := r.st.GetMetadata(ctx, l.ID())
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(md.Timestamp); age < 250*time.Millisecond {
		t.Errorf("a lost lock was refreshed %s ago; it must not look held to others", age)
	}
}

// TestStillExclusive: a prune's exclusive lock counts as lost when another
// client removed it as stale or holds a fresh lock of its own.
func TestStillExclusive(t *testing.T) {
	ctx := context.Background()
	o := localOptions(t)
	r := openNew(t, o)
	other := openExisting(t, o)
	for _, tc := range []struct {
		name    string
		meddle  func(t *testing.T, l *lock.Held)
		wantErr bool
	}{
		{"untouched", func(*testing.T, *lock.Held) {}, false},
		{"blob removed", func(t *testing.T, l *lock.Held) {
			if err := other.st.DeleteBlob(ctx, l.ID()); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"backup started", func(t *testing.T, _ *lock.Held) {
			s, err := lock.Acquire(ctx, other.st, lock.Shared)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Release)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _, err := r.lockExclusiveNow(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			tc.meddle(t, l)
			err = r.stillExclusive(ctx, l)
			if got := err != nil; got != tc.wantErr || (got && !errors.Is(err, ErrLockLost)) {
				t.Fatalf("stillExclusive: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestPruneStopsWhenLockLapses: a prune whose exclusive lock lapses (its
// refreshes fail) deletes nothing further and fails; every snapshot stays
// readable, and a later prune frees the space.
func TestPruneStopsWhenLockLapses(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	var data [][]byte
	for i := range 3 {
		b := make([]byte, 2<<20)
		_, _ = rand.Read(b)
		data = append(data, b)
		if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(b), BackupOptions{Host: "host-0", Tags: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Forget(ctx, Policy{KeepLast: 2}, Filter{}, false); err != nil {
		t.Fatal(err)
	}
	packs := func() int {
		n := 0
		_ = r.st.ListBlobs(ctx, "p", func(blob.Metadata) error { n++; return nil })
		return n
	}
	before := packs()

	// The lock refreshes every 5 ms and lapses after 20 ms without one;
	// every refresh fails.
	shortLocks(t, 5*time.Millisecond, 25*time.Millisecond)
	plain := r.st
	r.st = &lockWritesFail{Storage: plain}
	_, err := r.Prune(ctx)
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("prune with a lapsed lock: %v, want ErrLockLost", err)
	}
	if after := packs(); after != before {
		t.Errorf("prune with a lapsed lock deleted %d packs", before-after)
	}
	r.st = plain
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after the failed prune: %d %v", len(snaps), err)
	}
	for _, s := range snaps {
		var got bytes.Buffer
		if _, err := r.RestoreStream(ctx, s, "", &got, nil); err != nil || !bytes.Equal(got.Bytes(), data[s.Tags["n"][0]-'0']) {
			t.Errorf("snapshot %s after the failed prune: %v", s.Tags["n"], err)
		}
	}

	lock.Refresh, lock.Stale = 20*time.Second, 90*time.Second
	pr, err := r.Prune(ctx)
	if err != nil || pr.Mode != PruneImmediate || pr.FreedBytes < 1<<20 {
		t.Fatalf("prune after the storage recovered: %+v %v", pr, err)
	}
	if _, err := r.RestoreStream(ctx, snaps[0], "", io.Discard, nil); err != nil {
		t.Fatal(err)
	}
}

// TestMaintainWhenDue: safe maintenance runs when the schedule says it is
// due (a new repository's first), records its run, and is not due again
// right after; it leaves every snapshot readable.
func TestMaintainWhenDue(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	if _, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(b), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	ran, err := r.Maintain(ctx)
	if err != nil || !ran {
		t.Fatalf("first maintenance: ran %v, %v; want it run", ran, err)
	}
	ran, err = r.Maintain(ctx)
	if err != nil || ran {
		t.Fatalf("maintenance right after: ran %v, %v; want not due", ran, err)
	}
	snaps, _ := r.Snapshots(ctx, Filter{})
	var got bytes.Buffer
	if _, err := r.RestoreStream(ctx, snaps[0], "", &got, nil); err != nil || !bytes.Equal(got.Bytes(), b) {
		t.Fatalf("restore after maintenance: %v", err)
	}
}
