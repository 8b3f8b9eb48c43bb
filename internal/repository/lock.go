package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kopia/kopia/repo"

	"github.com/stash-backup/stash/internal/repository/lock"
)

// How long a backup waits for an immediate prune to end, and how often it
// looks; variables so tests can shorten them.
var (
	lockWait = 10 * time.Minute
	lockPoll = 2 * time.Second
)

// ErrLockLost means a repository lock lapsed while it was held; the work
// done under it was not committed.
var ErrLockLost = lock.ErrLost

// lockShared registers a running backup. It waits while an exclusive prune
// holds the repository, up to lockWait. A backup asks the lock whether it
// is still held before it commits.
func (r *Reader) lockShared(ctx context.Context) (*lock.Held, error) {
	deadline := time.Now().Add(lockWait)
	for {
		l, err := lock.Acquire(ctx, r.st, lock.Shared)
		if err != nil {
			return nil, &lockWriteError{err}
		}
		excl, err := lock.Fresh(ctx, r.st, lock.Exclusive, l.ID())
		if err != nil {
			l.Release()
			return nil, err
		}
		if len(excl) == 0 {
			// The index was read when the repository opened; a prune
			// may have deleted contents since. A backup deduplicating
			// against them would commit a snapshot of missing data.
			// From here no prune can start until the lock is released.
			if err := r.refresh(ctx); err != nil {
				l.Release()
				return nil, err
			}
			return l, nil
		}
		l.Release()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("repository is being pruned by %s: retry later", lock.Describe(ctx, r.st, excl[0]))
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
	return l.Release, nil
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
func (r *Reader) lockExclusiveNow(ctx context.Context) (*lock.Held, string, error) {
	l, err := lock.Acquire(ctx, r.st, lock.Exclusive)
	if err != nil {
		return nil, "", err
	}
	others, err := lock.Fresh(ctx, r.st, "", l.ID())
	if err != nil {
		l.Release()
		return nil, "", err
	}
	if len(others) > 0 {
		who := lock.Describe(ctx, r.st, others[0])
		l.Release()
		return nil, who, errBusy
	}
	lock.RemoveStale(ctx, r.st, l.ID())
	return l, "", nil
}

// stillExclusive re-checks an exclusive lock before a destructive phase of
// a prune: it has never lapsed, its blob is still there (a client that took
// it for stale would have removed it), and no other client holds a fresh
// lock (one that took it for stale may have started a backup).
func (r *Reader) stillExclusive(ctx context.Context, l *lock.Held) error {
	if err := l.Check(); err != nil {
		return err
	}
	if _, err := r.st.GetMetadata(ctx, l.ID()); err != nil {
		return fmt.Errorf("%w: its lock blob is gone (%v): another client took it for stale", ErrLockLost, err)
	}
	others, err := lock.Fresh(ctx, r.st, "", l.ID())
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return fmt.Errorf("%w: %s started meanwhile", ErrLockLost, lock.Describe(ctx, r.st, others[0]))
	}
	return l.Check()
}
