package bufpool

import (
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
