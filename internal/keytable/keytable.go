// Package keytable faults in, from the moment a process starts, the memory
// that opening a repository will take to derive its key: scrypt's table,
// touched page by page during the derivation (see internal/prefault). It
// starts while the binary's packages initialize, for a command line that
// names a data command, and the repository's open releases the pages right
// before kopia derives the key.
package keytable

import (
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/stash-backup/stash/internal/prefault"
)

// Bytes is the table scrypt fills to derive a kopia repository's format
// key: 128·r·N bytes for scrypt-65536-8-1, the algorithm kopia writes
// into every repository it creates. restic's keys take tables of their
// own size, often half of it per lane, two lanes at once.
const Bytes = 128 * 8 * 65536

// DataCommands are the stash commands that open a repository, by the first
// word of their command line: internal/cli's data commands, which its
// tests keep in step with this list.
var DataCommands = []string{
	"repo", "backup-pvc", "restore-pvc", "upload", "download", "run-backup", "restore",
	"backup-pg", "restore-pg", "backup-mysql", "restore-mysql", "backup-mongo", "restore-mongo",
	"backup-es", "restore-es", "backup-percona-xtradb", "restore-percona-xtradb",
}

var pending struct {
	mu    sync.Mutex
	pages *prefault.Pages
}

// The command line is read before main, because the packages' own
// initialization is most of a command's start: the pages fault in
// meanwhile, on another CPU.
func init() {
	if ForCommand(os.Args[1:]) {
		Start()
	}
}

// ForCommand reports whether the command line args (without the
// program's name) runs a data command. Only the first word that is not a
// flag is looked at; a command it misses (after a flag that takes a
// value) is started by internal/cli once the command is parsed.
func ForCommand(args []string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return slices.Contains(DataCommands, a)
		}
	}
	return false
}

// Start begins faulting in the table's pages, unless that has begun. It
// does nothing with GOMAXPROCS 1 (prefault.Start).
func Start() {
	pending.mu.Lock()
	defer pending.mu.Unlock()
	if pending.pages == nil {
		pending.pages = prefault.Start(Bytes)
	}
}

// Release hands the pages Start faulted in to the process's next
// allocation, which should be the key derivation: the repository's Open
// and Init call it right before kopia derives the key, and the reader of
// restic repositories before it derives its own.
func Release() {
	pending.mu.Lock()
	p := pending.pages
	pending.pages = nil
	pending.mu.Unlock()
	p.Release()
}

// Pending returns the pages Start began faulting in and nobody has
// released yet, nil if none (for tests).
func Pending() *prefault.Pages {
	pending.mu.Lock()
	defer pending.mu.Unlock()
	return pending.pages
}
