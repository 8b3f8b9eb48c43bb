// Package bufpool hands out a bounded number of equal buffers and reuses a
// returned buffer before it makes a new one.
//
// Reuse comes first because memory the process has not touched yet costs
// a page fault per page, which is slow on the virtual machines backups
// often run on: a pool that made all its buffers before
// reusing any touched its whole bound on every stream, however small.
//
// Buffers also outlive the pool that made them: a backup of many files
// (an Elasticsearch dump writes several per index) opens a pool per
// file, and each new pool takes the buffers its predecessors gave back
// (Take, Give) instead of making, and zeroing, fresh ones.
package bufpool

import "sync"

// Pool holds up to max buffers of size bytes. One goroutine calls Get; any
// may call Put.
type Pool struct {
	free      chan []byte
	size, max int
	made      int // touched only by Get's caller
}

// New returns a pool of at most max buffers of size bytes, none made yet.
func New(size, max int) *Pool {
	return &Pool{free: make(chan []byte, max), size: size, max: max}
}

// Get returns a buffer of size bytes: a returned one if there is one, else
// a new one while fewer than max were made, else the next one returned.
// It returns nil once done is closed.
func (p *Pool) Get(done <-chan struct{}) []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.made < p.max {
		p.made++
		return Take(p.size)
	}
	select {
	case b := <-p.free:
		return b
	case <-done:
		return nil
	}
}

// Put returns b, a buffer Get gave out, for reuse.
func (p *Pool) Put(b []byte) { p.free <- b[:cap(b)] }

// Close gives the buffers returned so far to later pools of their size
// (Give). Buffers still out stay with their holders: a caller closes the
// pool once every buffer has come back.
func (p *Pool) Close() {
	for {
		select {
		case b := <-p.free:
			Give(b)
		default:
			return
		}
	}
}

// spare holds, per size, buffers given back. A sync.Pool lets the
// garbage collector take them when nothing asks for them for two cycles,
// so a process that stops backing up does not keep its peak.
var spare sync.Map // int -> *sync.Pool of *[]byte

func spareOf(size int) *sync.Pool {
	if p, ok := spare.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := spare.LoadOrStore(size, &sync.Pool{})
	return p.(*sync.Pool)
}

// Take returns a buffer of size bytes: one given back earlier if there is
// one, else a new one. Its content is undefined.
func Take(size int) []byte {
	if v := spareOf(size).Get(); v != nil {
		return *v.(*[]byte)
	}
	return make([]byte, size)
}

// Give hands b, whose capacity is its size, back for Take to reuse. The
// caller must not touch b afterwards.
func Give(b []byte) {
	b = b[:cap(b)]
	if len(b) == 0 {
		return
	}
	spareOf(len(b)).Put(&b)
}
