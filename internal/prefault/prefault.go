// Package prefault faults in heap memory on a spare CPU ahead of the
// allocation it is meant for. A process that is about to allocate a large
// buffer and touch all of it (scrypt's table, when a repository's key is
// derived) first pays a page fault for every page; on virtual machines each
// fault is a trip through the hypervisor. Pages faulted in here, on another
// CPU while the process starts, then let go and collected, are what the Go
// allocator hands out for that allocation instead of fresh ones.
package prefault

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// unclaimed is how long faulted-in pages wait for Release before they are
// let go anyway, so a process that never makes the allocation (a command
// that fails early, a long-running one) does not keep them.
var unclaimed = 10 * time.Second

// touchBatch is how many bytes are touched between checks for Release, so
// Release waits for at most this much faulting.
const touchBatch = 1 << 20

// Pages is heap memory being faulted in, made by Start; a nil *Pages
// holds nothing.
type Pages struct {
	stop    atomic.Bool
	release chan struct{}
	faulted chan struct{} // closed once every page is faulted in or Release stopped it
	done    chan struct{}
	once    sync.Once
}

// Start begins faulting in size bytes of heap on a goroutine of its own. It
// returns nil, and does nothing, when the process has a single CPU
// (GOMAXPROCS 1): the faults would then only take time from the work they
// are meant to speed up.
func Start(size int) *Pages {
	if size <= 0 || runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	p := &Pages{release: make(chan struct{}), faulted: make(chan struct{}), done: make(chan struct{})}
	go p.run(size)
	return p
}

func (p *Pages) run(size int) {
	defer close(p.done)
	buf := make([]byte, size)
	// Populating first maps the pages in one system call; touching them
	// then settles what is left of each fault on a paravirtualized guest.
	populate(buf)
	for off := 0; off < len(buf) && !p.stop.Load(); off += touchBatch {
		end := min(off+touchBatch, len(buf))
		for i := off; i < end; i += pageSize {
			buf[i] = 1
		}
	}
	close(p.faulted)
	// Held until Release, so that the allocations the process makes
	// meanwhile do not take and split them.
	select {
	case <-p.release:
	case <-time.After(unclaimed):
	}
	runtime.KeepAlive(buf)
}

// pageSize is the smallest page a fault maps; touching one byte in each
// faults in all of them.
const pageSize = 4096

// Release stops the faulting, lets the pages go and collects them, so that
// the process's next allocation of up to the size Start was given takes
// them. It returns once that is so. It may be called on nil and more than
// once.
func (p *Pages) Release() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		p.stop.Store(true)
		close(p.release)
		<-p.done
		runtime.GC()
	})
}

// WaitFaulted returns once every page is faulted in, or Release stopped the
// faulting. Release does not need it; it tells a test when the faults the
// process counts are over.
func (p *Pages) WaitFaulted() {
	if p != nil {
		<-p.faulted
	}
}
