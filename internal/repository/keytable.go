package repository

import (
	"sync"

	"github.com/stash-backup/stash/internal/prefault"
)

// keyTableBytes is the table scrypt fills to derive a kopia repository's
// format key: 128·r·N bytes for scrypt-65536-8-1, the algorithm kopia
// writes into every repository it creates. Each page of it is touched for
// the first time during the derivation, on the path of every command that
// opens a repository.
const keyTableBytes = 128 * 8 * 65536

var keyTable struct {
	mu    sync.Mutex
	pages *prefault.Pages
}

// PrefaultKeyTable starts faulting in, on a spare CPU, the memory that
// deriving a repository's key takes, for a process that is about to open a
// repository. The next Open or Init hands it to the derivation; a process
// that opens none loses it after a few seconds.
func PrefaultKeyTable() {
	keyTable.mu.Lock()
	defer keyTable.mu.Unlock()
	if keyTable.pages == nil {
		keyTable.pages = prefault.Start(keyTableBytes)
	}
}

// ReleaseKeyTable hands the pages PrefaultKeyTable faulted in to the next
// allocation, which should be the key derivation: Open and Init call it
// right before kopia derives the key, and the reader of restic
// repositories before it derives its own (its scrypt lanes take them).
func ReleaseKeyTable() {
	keyTable.mu.Lock()
	p := keyTable.pages
	keyTable.pages = nil
	keyTable.mu.Unlock()
	p.Release()
}
