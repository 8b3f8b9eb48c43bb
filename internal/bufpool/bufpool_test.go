package bufpool

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestReuseBeforeNew(t *testing.T) {
	p := New(16, 3)
	a := p.Get(nil)
	if len(a) != 16 {
		t.Fatalf("buffer of %d bytes, want 16", len(a))
	}
	p.Put(a[:3])
	// Room for two more new buffers, but the returned one comes first.
	if b := p.Get(nil); &b[0] != &a[0] || len(b) != 16 {
		t.Fatal("a returned buffer was not reused before a new one was made")
	}
}

func TestBound(t *testing.T) {
	p := New(8, 2)
	a, b := p.Get(nil), p.Get(nil)
	if &a[0] == &b[0] {
		t.Fatal("the same buffer twice")
	}
	// Both out: Get waits for a return, or for done.
	done := make(chan struct{})
	got := make(chan []byte)
	go func() { got <- p.Get(done) }()
	select {
	case <-got:
		t.Fatal("a third buffer beyond the bound of 2")
	case <-time.After(50 * time.Millisecond):
	}
	p.Put(b)
	if c := <-got; &c[0] != &b[0] {
		t.Fatal("the waiting Get did not get the returned buffer")
	}
	go func() { got <- p.Get(done) }()
	close(done)
	if c := <-got; c != nil {
		t.Fatal("Get after done returned a buffer beyond the bound")
	}
}

func TestCloseGivesToLaterPools(t *testing.T) {
	if race {
		t.Skip("the race detector makes sync.Pool drop a share of what it is given")
	}
	// No collection may empty the spare buffers during the test.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// A size no other test uses, so that nothing else takes the buffer.
	const size = 4093
	p := New(size, 2)
	a := p.Get(nil)
	p.Put(a)
	p.Close()
	q := New(size, 1)
	if b := q.Get(nil); len(b) != size || &b[0] != &a[0] {
		t.Fatal("a new pool made a buffer while a closed one had given one back")
	}
}

func TestTakeGive(t *testing.T) {
	const size = 4091
	b := Take(size)
	if len(b) != size {
		t.Fatalf("Take(%d) gave %d bytes", size, len(b))
	}
	Give(b[:10])
	if c := Take(size); len(c) != size {
		t.Fatalf("Take(%d) after Give gave %d bytes", size, len(c))
	}
	Give(nil) // nothing to keep, no panic
}
