// Package bufpool hands out a bounded number of equal buffers and reuses a
// returned buffer before it makes a new one.
//
// Reuse comes first because memory the process has not touched yet costs
// a page fault per page, which is slow on the virtual machines backups
// often run on: a pool that made all its buffers before
// reusing any touched its whole bound on every stream, however small.
package bufpool

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
		return make([]byte, p.size)
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
