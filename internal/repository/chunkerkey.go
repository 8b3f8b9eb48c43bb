package repository

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"

	"github.com/stash-backup/stash/internal/chunker"
)

// chunkerKeyType labels the manifest that holds a repository's chunker
// key. Manifests are encrypted with the repository's key, so the key is
// as secret as the data; kopia keeps manifests of types it does not know
// through its maintenance (TestKopiaCLIReadsAndMaintains).
const chunkerKeyType = "stash-chunker-key"

// chunkerKey is the manifest's payload.
type chunkerKey struct {
	// Version names the derivation of the table from the key
	// (chunker.Keyed).
	Version int    `json:"version"`
	Key     []byte `json:"key"`
}

// writeChunkerKey gives a new repository its secret chunker key.
func writeChunkerKey(ctx context.Context, w repo.RepositoryWriter) error {
	k := chunkerKey{Version: 1, Key: make([]byte, chunker.KeySize)}
	_, _ = rand.Read(k.Key) // crypto/rand.Read never fails
	if _, err := w.PutManifest(ctx, map[string]string{manifest.TypeLabelKey: chunkerKeyType}, &k); err != nil {
		return fmt.Errorf("store chunker key: %w", err)
	}
	return nil
}

// loadChunker returns the stream chunker of rep: keyed by its key, or the
// fixed table for a repository created before keys (whose streams must
// keep deduplicating against what it holds).
func loadChunker(ctx context.Context, rep repo.Repository) (*chunker.Chunker, error) {
	mds, err := rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: chunkerKeyType})
	if err != nil {
		return nil, fmt.Errorf("read chunker key: %w", err)
	}
	if len(mds) == 0 {
		return chunker.Unkeyed(), nil
	}
	// Only initialization writes a key; should two ever exist, the
	// oldest is the one every earlier stream was cut with.
	oldest := mds[0]
	for _, md := range mds[1:] {
		if md.ModTime.Before(oldest.ModTime) || (md.ModTime.Equal(oldest.ModTime) && md.ID < oldest.ID) {
			oldest = md
		}
	}
	var k chunkerKey
	if _, err := rep.GetManifest(ctx, oldest.ID, &k); err != nil {
		return nil, fmt.Errorf("read chunker key: %w", err)
	}
	if k.Version != 1 {
		return nil, fmt.Errorf("chunker key version %d is newer than this stash knows (1): upgrade stash", k.Version)
	}
	c, err := chunker.Keyed(k.Key)
	if err != nil {
		return nil, fmt.Errorf("chunker key %s: %w", oldest.ID, err)
	}
	return c, nil
}
