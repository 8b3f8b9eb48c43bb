//go:build linux

package repository

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stash-backup/stash/internal/keytable"
	"github.com/stash-backup/stash/internal/prefault"
)

func minorFaults(t *testing.T) int64 {
	t.Helper()
	n, err := prefault.MinorFaults()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenDerivesTheKeyInPrefaultedPages opens a repository after
// keytable.Start, as a data command does: the key derivation must take
// the pages faulted in beforehand, not fault in its 64 MiB table anew.
func TestOpenDerivesTheKeyInPrefaultedPages(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	o := localOptions(t)
	if err := Init(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	tablePages := int64(keytable.Bytes / 4096)

	// Without: every page of the table is faulted in during Open (unless
	// this kernel maps the heap with huge pages, where faults tell
	// nothing).
	debug.FreeOSMemory()
	before := minorFaults(t)
	openExisting(t, o)
	without := minorFaults(t) - before
	if without < tablePages {
		t.Skipf("Open took %d minor faults, fewer than the table's %d pages: faults do not count pages here", without, tablePages)
	}

	debug.FreeOSMemory()
	keytable.Start()
	p := keytable.Pending()
	if p == nil {
		t.Fatal("keytable.Start started nothing with GOMAXPROCS 2")
	}
	// The faulting goroutine's own faults count in the process's too:
	// they are counted from when it is done.
	p.WaitFaulted()
	before = minorFaults(t)
	openExisting(t, o)
	with := minorFaults(t) - before
	if keytable.Pending() != nil {
		t.Error("Open left the prefaulted key table held")
	}
	if with > without-tablePages/2 {
		t.Errorf("Open took %d minor faults after keytable.Start, %d without: the key derivation did not take the prefaulted pages", with, without)
	}
	t.Logf("Open took %d minor faults after keytable.Start, %d without", with, without)
}
