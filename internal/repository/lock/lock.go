// Package lock is how Stash clients coordinate through the storage: lock
// blobs that their holders keep fresh, so that a prune frees space at
// once only when no backup or reader is at work, and a killed holder's
// lock goes stale on its own.
package lock

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

	"github.com/kopia/kopia/repo/blob"

	"github.com/stash-backup/stash/internal/repository/blobmem"
)

// Backups and prune coordinate through lock blobs in the storage, because
// prune frees space at once only when no backup is writing. kopia itself
// needs no locks (its safe maintenance waits 24 h instead); these locks only
// decide whether the fast, exclusive prune may run. A lock is fresh while
// its holder rewrites it; a killed holder's lock goes stale on its own, so
// no crash ever leaves the repository locked (Stash's #838, #1332).
const (
	// BlobPrefix starts the name of every lock blob.
	BlobPrefix = "_stashlock_"
	// Shared is a backup's or a reader's lock.
	Shared = "s"
	// Exclusive is an immediate prune's lock.
	Exclusive = "x"
)

// Lock timing; variables so tests can shorten them.
var (
	// Refresh is how often a held lock is rewritten.
	Refresh = 20 * time.Second
	// Stale is how long an unrefreshed lock counts as held.
	Stale = 90 * time.Second
)

type lockInfo struct {
	Kind     string    `json:"kind"`
	Hostname string    `json:"hostname"`
	PID      int       `json:"pid"`
	Time     time.Time `json:"time"`
}

// Held is a lock blob this client keeps fresh until Release.
type Held struct {
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
func lockLapse() time.Duration { return Stale - min(Refresh, Stale/2) }

// Check reports an error when the lock may have gone stale in the eyes of
// other clients, now or at any moment since it was taken, because
// refreshing it failed for too long (a storage outage, a paused process, a
// stalled node): a prune may have run meanwhile, and what this client
// wrote may reference data it deleted. A lock lost once stays lost.
func (l *Held) Check() error {
	lost := time.Duration(l.lostFor.Load())
	if since := time.Since(time.Unix(0, l.lastWritten.Load())); since > lockLapse() {
		lost = max(lost, since)
	}
	if lost > 0 {
		l.lostFor.CompareAndSwap(0, int64(lost))
		return fmt.Errorf("%w: it could not be refreshed for %s, so another client may have pruned meanwhile: nothing committed, retry", ErrLost, lost.Round(time.Second))
	}
	return nil
}

// ErrLost means a repository lock lapsed while it was held; the work
// done under it was not committed.
var ErrLost = errors.New("the repository lock was lost")

// ID is the lock's blob.
func (l *Held) ID() blob.ID { return l.id }

// NewID names a new lock blob of kind.
func NewID(kind string) blob.ID {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return blob.ID(fmt.Sprintf("%s%s_%d_%s", BlobPrefix, kind, time.Now().UnixNano(), hex.EncodeToString(b[:])))
}

// Write writes (or rewrites) lock blob id of kind, naming this host and
// process.
func Write(ctx context.Context, st blob.Storage, id blob.ID, kind string) error {
	host, _ := os.Hostname()
	data, _ := json.Marshal(lockInfo{Kind: kind, Hostname: host, PID: os.Getpid(), Time: time.Now().UTC()})
	return st.PutBlob(ctx, id, blobmem.Bytes(data), blob.PutOptions{})
}

// Acquire writes a lock blob of kind and keeps it fresh until Release.
func Acquire(ctx context.Context, st blob.Storage, kind string) (*Held, error) {
	l := &Held{id: NewID(kind), st: st, stop: make(chan struct{})}
	start := time.Now()
	if err := Write(ctx, st, l.id, kind); err != nil {
		return nil, fmt.Errorf("write repository lock: %w", err)
	}
	l.lastWritten.Store(start.UnixNano())
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		t := time.NewTicker(Refresh)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				// A lapse is noticed before rewriting the blob, which
				// would make it look as if it had never lapsed; a lost
				// lock is not refreshed again. A failed refresh is
				// seen by Check, before a commit.
				if l.Check() != nil {
					return
				}
				// The time before the write: the blob is at least
				// that fresh, whatever the write's latency.
				start := time.Now()
				if Write(context.WithoutCancel(ctx), st, l.id, kind) == nil {
					l.lastWritten.Store(start.UnixNano())
				}
			}
		}
	}()
	return l, nil
}

// Release stops refreshing the lock and deletes its blob.
func (l *Held) Release() {
	close(l.stop)
	l.done.Wait()
	_ = l.st.DeleteBlob(context.Background(), l.id)
}

// Fresh lists the locks of a kind ("" for all) other than own that
// were refreshed recently. Their age is measured on the storage's clock,
// against own's timestamp, which this client has just written: a client
// whose clock is ahead of the storage's would otherwise take every lock
// for stale, and prune while others write. Without own in the listing it
// falls back to this client's clock.
func Fresh(ctx context.Context, st blob.Storage, kind string, own blob.ID) ([]blob.Metadata, error) {
	mds, err := blob.ListAllBlobs(ctx, st, blob.ID(BlobPrefix))
	if err != nil {
		return nil, fmt.Errorf("list repository locks: %w", err)
	}
	now := storageNow(mds, own)
	var out []blob.Metadata
	for _, md := range mds {
		if md.BlobID == own || !strings.HasPrefix(string(md.BlobID), BlobPrefix+kind) {
			continue
		}
		if now.Sub(md.Timestamp) > Stale {
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

// Describe says who holds the lock blob md, for messages.
func Describe(ctx context.Context, st blob.Storage, md blob.Metadata) string {
	var buf blobmem.Buffer
	if err := st.GetBlob(ctx, md.BlobID, 0, -1, &buf); err == nil {
		var li lockInfo
		if json.Unmarshal(buf.Bytes(), &li) == nil {
			return fmt.Sprintf("host %s (pid %d) since %s", li.Hostname, li.PID, li.Time.Format(time.RFC3339))
		}
	}
	return string(md.BlobID)
}

// RemoveStale deletes lock blobs left behind by killed clients, aged on
// the storage's clock against own, a lock this client holds.
func RemoveStale(ctx context.Context, st blob.Storage, own blob.ID) {
	mds, err := blob.ListAllBlobs(ctx, st, blob.ID(BlobPrefix))
	if err != nil {
		return
	}
	now := storageNow(mds, own)
	for _, md := range mds {
		if md.BlobID != own && now.Sub(md.Timestamp) > Stale {
			_ = st.DeleteBlob(ctx, md.BlobID)
		}
	}
}
