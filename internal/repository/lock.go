package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
)

// Backups and prune coordinate through lock blobs in the storage, because
// prune frees space at once only when no backup is writing. kopia itself
// needs no locks (its safe maintenance waits 24 h instead); these locks only
// decide whether the fast, exclusive prune may run. A lock is fresh while
// its holder rewrites it; a killed holder's lock goes stale on its own, so
// no crash ever leaves the repository locked (Stash's #838, #1332).
const (
	lockBlobPrefix = "_stashlock_"
	lockShared     = "s"
	lockExclusive  = "x"
)

// Lock timing; variables so tests can shorten them.
var (
	lockRefresh = 20 * time.Second
	lockStale   = 90 * time.Second
	lockWait    = 10 * time.Minute
	lockPoll    = 2 * time.Second
)

type lockInfo struct {
	Kind     string    `json:"kind"`
	Hostname string    `json:"hostname"`
	PID      int       `json:"pid"`
	Time     time.Time `json:"time"`
}

type heldLock struct {
	id   blob.ID
	st   blob.Storage
	stop chan struct{}
	done sync.WaitGroup
	// lastWritten is when the lock blob was last written (UnixNano).
	lastWritten atomic.Int64
	// lostFor is, once nonzero, how long the lock went unrefreshed: it may
	// have looked stale to others meanwhile, and a later refresh does not
	// undo what they did then.
	lostFor atomic.Int64
}

// lockLapse is how long a lock may go unrefreshed before its holder must
// assume others took it for stale: lockStale, less a refresh that may be
// in flight.
func lockLapse() time.Duration { return lockStale - min(lockRefresh, lockStale/2) }

// held reports an error when the lock may have gone stale in the eyes of
// other clients, now or at any moment since it was taken, because
// refreshing it failed for too long (a storage outage, a paused process, a
// stalled node): a prune may have run meanwhile, and what this client
// wrote may reference data it deleted. A lock lost once stays lost.
func (l *heldLock) held() error {
	lost := time.Duration(l.lostFor.Load())
	if since := time.Since(time.Unix(0, l.lastWritten.Load())); since > lockLapse() {
		lost = max(lost, since)
	}
	if lost > 0 {
		l.lostFor.CompareAndSwap(0, int64(lost))
		return fmt.Errorf("%w: it could not be refreshed for %s, so another client may have pruned meanwhile: nothing committed, retry", ErrLockLost, lost.Round(time.Second))
	}
	return nil
}

// ErrLockLost means a repository lock lapsed while it was held; the work
// done under it was not committed.
var ErrLockLost = errors.New("the repository lock was lost")

func newLockID(kind string) blob.ID {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return blob.ID(fmt.Sprintf("%s%s_%d_%s", lockBlobPrefix, kind, time.Now().UnixNano(), hex.EncodeToString(b[:])))
}

func writeLock(ctx context.Context, st blob.Storage, id blob.ID, kind string) error {
	host, _ := os.Hostname()
	data, _ := json.Marshal(lockInfo{Kind: kind, Hostname: host, PID: os.Getpid(), Time: time.Now().UTC()})
	return st.PutBlob(ctx, id, gatherBytes(data), blob.PutOptions{})
}

// acquire writes a lock blob and keeps it fresh until release.
func acquire(ctx context.Context, st blob.Storage, kind string) (*heldLock, error) {
	l := &heldLock{id: newLockID(kind), st: st, stop: make(chan struct{})}
	start := time.Now()
	if err := writeLock(ctx, st, l.id, kind); err != nil {
		return nil, fmt.Errorf("write repository lock: %w", err)
	}
	l.lastWritten.Store(start.UnixNano())
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		t := time.NewTicker(lockRefresh)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				// A lapse is noticed before rewriting the blob, which
				// would make it look as if it had never lapsed; a lost
				// lock is not refreshed again. A failed refresh is
				// seen by held, before a commit.
				if l.held() != nil {
					return
				}
				// The time before the write: the blob is at least
				// that fresh, whatever the write's latency.
				start := time.Now()
				if writeLock(context.WithoutCancel(ctx), st, l.id, kind) == nil {
					l.lastWritten.Store(start.UnixNano())
				}
			}
		}
	}()
	return l, nil
}

func (l *heldLock) release() {
	close(l.stop)
	l.done.Wait()
	_ = l.st.DeleteBlob(context.Background(), l.id)
}

// freshLocks lists the locks of a kind ("" for all) other than own that
// were refreshed recently. Their age is measured on the storage's clock,
// against own's timestamp, which this client has just written: a client
// whose clock is ahead of the storage's would otherwise take every lock
// for stale, and prune while others write. Without own in the listing it
// falls back to this client's clock.
func freshLocks(ctx context.Context, st blob.Storage, kind string, own blob.ID) ([]blob.Metadata, error) {
	mds, err := blob.ListAllBlobs(ctx, st, blob.ID(lockBlobPrefix))
	if err != nil {
		return nil, fmt.Errorf("list repository locks: %w", err)
	}
	now := storageNow(mds, own)
	var out []blob.Metadata
	for _, md := range mds {
		if md.BlobID == own || !strings.HasPrefix(string(md.BlobID), lockBlobPrefix+kind) {
			continue
		}
		if now.Sub(md.Timestamp) > lockStale {
			continue
		}
		out = append(out, md)
	}
	return out, nil
}

// storageNow is the storage's time: the timestamp of own, a lock written
// just now, if listed; else this client's clock.
func storageNow(mds []blob.Metadata, own blob.ID) time.Time {
	for _, md := range mds {
		if own != "" && md.BlobID == own {
			return md.Timestamp
		}
	}
	return time.Now()
}

func describeLock(ctx context.Context, st blob.Storage, md blob.Metadata) string {
	var buf gatherWriter
	if err := st.GetBlob(ctx, md.BlobID, 0, -1, &buf); err == nil {
		var li lockInfo
		if json.Unmarshal(buf.Bytes(), &li) == nil {
			return fmt.Sprintf("host %s (pid %d) since %s", li.Hostname, li.PID, li.Time.Format(time.RFC3339))
		}
	}
	return string(md.BlobID)
}

// lockShared registers a running backup. It waits while an exclusive prune
// holds the repository, up to lockWait. A backup asks the lock whether it
// is still held before it commits.
func (r *Reader) lockShared(ctx context.Context) (*heldLock, error) {
	deadline := time.Now().Add(lockWait)
	for {
		l, err := acquire(ctx, r.st, lockShared)
		if err != nil {
			return nil, &lockWriteError{err}
		}
		excl, err := freshLocks(ctx, r.st, lockExclusive, l.id)
		if err != nil {
			l.release()
			return nil, err
		}
		if len(excl) == 0 {
			// The index was read when the repository opened; a prune
			// may have deleted contents since. A backup deduplicating
			// against them would commit a snapshot of missing data.
			// From here no prune can start until the lock is released.
			if err := r.refresh(ctx); err != nil {
				l.release()
				return nil, err
			}
			return l, nil
		}
		l.release()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("repository is being pruned by %s: retry later", describeLock(ctx, r.st, excl[0]))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// lockWriteError is a lock that could not be written, as with read-only
// credentials.
type lockWriteError struct{ err error }

func (e *lockWriteError) Error() string { return e.err.Error() }
func (e *lockWriteError) Unwrap() error { return e.err }

// lockForRead takes the shared lock for a restore or a check, so that no
// prune deletes or rewrites packs while they are read (kopia does not
// retry a pack that vanished), and reloads the index. Storage this client
// may not write (read-only credentials, as restores are sometimes given)
// gets no lock, and the read goes ahead as it would have: reading must not
// need write access.
func (r *Reader) lockForRead(ctx context.Context) (func(), error) {
	l, err := r.lockShared(ctx)
	var lw *lockWriteError
	switch {
	case errors.As(err, &lw):
		return func() {}, nil
	case err != nil:
		return nil, err
	}
	return l.release, nil
}

// refresh reloads the repository's index from storage.
func (r *Reader) refresh(ctx context.Context) error {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return nil
	}
	if err := dr.Refresh(ctx); err != nil {
		return fmt.Errorf("reload the repository's index: %w", err)
	}
	return nil
}

// errBusy means another client holds a lock.
var errBusy = errors.New("repository in use")

// lockExclusiveNow takes the exclusive lock if no other client holds any
// fresh lock, and removes the stale ones; otherwise it returns errBusy and
// who holds one.
func (r *Reader) lockExclusiveNow(ctx context.Context) (*heldLock, string, error) {
	l, err := acquire(ctx, r.st, lockExclusive)
	if err != nil {
		return nil, "", err
	}
	others, err := freshLocks(ctx, r.st, "", l.id)
	if err != nil {
		l.release()
		return nil, "", err
	}
	if len(others) > 0 {
		who := describeLock(ctx, r.st, others[0])
		l.release()
		return nil, who, errBusy
	}
	r.removeStaleLocks(ctx, l.id)
	return l, "", nil
}

// stillExclusive re-checks an exclusive lock before a destructive phase of
// a prune: it has never lapsed, its blob is still there (a client that took
// it for stale would have removed it), and no other client holds a fresh
// lock (one that took it for stale may have started a backup).
func (r *Reader) stillExclusive(ctx context.Context, l *heldLock) error {
	if err := l.held(); err != nil {
		return err
	}
	if _, err := r.st.GetMetadata(ctx, l.id); err != nil {
		return fmt.Errorf("%w: its lock blob is gone (%v): another client took it for stale", ErrLockLost, err)
	}
	others, err := freshLocks(ctx, r.st, "", l.id)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return fmt.Errorf("%w: %s started meanwhile", ErrLockLost, describeLock(ctx, r.st, others[0]))
	}
	return l.held()
}

// removeStaleLocks deletes lock blobs left behind by killed clients, aged
// on the storage's clock against own, a lock this client holds.
func (r *Reader) removeStaleLocks(ctx context.Context, own blob.ID) {
	mds, err := blob.ListAllBlobs(ctx, r.st, blob.ID(lockBlobPrefix))
	if err != nil {
		return
	}
	now := storageNow(mds, own)
	for _, md := range mds {
		if md.BlobID != own && now.Sub(md.Timestamp) > lockStale {
			_ = r.st.DeleteBlob(ctx, md.BlobID)
		}
	}
}
