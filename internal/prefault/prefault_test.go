//go:build linux

package prefault

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func minorFaults(t *testing.T) int64 {
	t.Helper()
	n, err := MinorFaults()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// faultsOfAllocation allocates size bytes, touches every page and returns
// the minor faults that took, with the buffer (kept alive by the caller so
// that the next allocation cannot reuse it).
func faultsOfAllocation(t *testing.T, size int) (int64, []byte) {
	t.Helper()
	before := minorFaults(t)
	b := make([]byte, size)
	for i := 0; i < len(b); i += pageSize {
		b[i] = 1
	}
	return minorFaults(t) - before, b
}

func TestReleasedPagesServeTheNextAllocation(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const size = 32 << 20
	pages := int64(size / pageSize)

	// A fresh allocation beside a live one faults in every page; if it
	// does not, the kernel maps the heap some other way (huge pages) and
	// the faults cannot tell reused pages from fresh ones.
	debug.FreeOSMemory()
	_, live := faultsOfAllocation(t, size)
	fresh, live2 := faultsOfAllocation(t, size)
	if fresh < pages/2 {
		t.Skipf("a fresh %d MiB took %d minor faults, not about %d: faults do not count pages here", size>>20, fresh, pages)
	}

	p := Start(size)
	if p == nil {
		t.Fatal("Start returned nil with GOMAXPROCS 2")
	}
	p.Release()
	reused, b := faultsOfAllocation(t, size)
	if reused > pages/8 {
		t.Errorf("the allocation after Release took %d minor faults (a fresh one took %d): it did not get the faulted-in pages", reused, fresh)
	}
	runtime.KeepAlive(live)
	runtime.KeepAlive(live2)
	runtime.KeepAlive(b)
}

func TestStartDoesNothingOnOneCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if p := Start(1 << 20); p != nil {
		p.Release()
		t.Fatal("Start faulted pages in with GOMAXPROCS 1")
	}
	var p *Pages
	p.Release() // nil: nothing to do, no panic
}

func TestReleaseTwiceAndWhileFaulting(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	p := Start(256 << 20)
	done := make(chan struct{})
	go func() {
		p.Release()
		p.Release()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Release did not return")
	}
}

func TestUnclaimedPagesAreLetGo(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer func(d time.Duration) { unclaimed = d }(unclaimed)
	unclaimed = 10 * time.Millisecond
	p := Start(1 << 20)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("pages nobody released were still held")
	}
}
