package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/stash-backup/stash/internal/repository/blobmem"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/format"
)

// Creating a repository is check-then-write in kopia: two clients that
// find none at the same moment (two databases backed up on one schedule
// into one new Repository) both create one, each under its own key, and
// the storage ends with one client's blob config and the other's format
// blob, which nobody can open. So creators first elect one of them through
// marker blobs, ordered by the storage's own timestamps (one clock, unlike
// the clients'); the others wait for its repository.
const (
	initLockPrefix = "_stashinit_"
	// initSettle covers a marker write still in flight when another
	// creator lists them.
	initSettle = 500 * time.Millisecond
	// initStale ignores the marker of a creator that died.
	initStale = 2 * time.Minute
	// initWait bounds how long a creator that lost waits for the winner's
	// repository to appear.
	initWait = 2 * time.Minute
	initPoll = 200 * time.Millisecond
)

// electCreator writes this client's marker and reports whether it is the
// one to create the repository; release removes the marker.
func electCreator(ctx context.Context, st blob.Storage) (leader bool, release func(), err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	own := blob.ID(fmt.Sprintf("%s%d_%s", initLockPrefix, time.Now().UnixNano(), hex.EncodeToString(b[:])))
	if err := st.PutBlob(ctx, own, blobmem.Bytes([]byte(fmt.Sprintf("%s %d", host, os.Getpid()))), blob.PutOptions{}); err != nil {
		return false, nil, fmt.Errorf("write repository creation marker: %w", err)
	}
	release = func() { _ = st.DeleteBlob(context.WithoutCancel(ctx), own) }
	select {
	case <-ctx.Done():
		release()
		return false, nil, ctx.Err()
	case <-time.After(initSettle):
	}
	mds, err := blob.ListAllBlobs(ctx, st, initLockPrefix)
	if err != nil {
		release()
		return false, nil, fmt.Errorf("list repository creation markers: %w", err)
	}
	var ownMD *blob.Metadata
	for i := range mds {
		if mds[i].BlobID == own {
			ownMD = &mds[i]
		}
	}
	if ownMD == nil {
		release()
		return false, nil, fmt.Errorf("repository creation marker %s not listed after writing it", own)
	}
	live := slices.DeleteFunc(mds, func(md blob.Metadata) bool {
		return md.BlobID != own && ownMD.Timestamp.Sub(md.Timestamp) > initStale
	})
	slices.SortFunc(live, func(a, b blob.Metadata) int {
		if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
			return c
		}
		return strings.Compare(string(a.BlobID), string(b.BlobID))
	})
	return live[0].BlobID == own, release, nil
}

// awaitCreated waits for another client's new repository to appear.
func awaitCreated(ctx context.Context, st blob.Storage) error {
	deadline := time.Now().Add(initWait)
	for {
		_, err := st.GetMetadata(ctx, format.KopiaRepositoryBlobID)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another client began creating the repository %s ago and has not finished: retry later", initWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(initPoll):
		}
	}
}
