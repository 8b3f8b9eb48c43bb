package repository

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/repo/blob"
)

// heldRanges are ranges of pack blobs that a restore has read whole into
// memory. kopia reads every content with a request of its own; a content
// inside a held range is copied from memory instead, so a restore reads
// each stretch of a pack once, however many contents it holds.
type heldRanges struct {
	mu sync.RWMutex
	m  map[blob.ID][]*heldRange
	// served counts the reads served from memory.
	served atomic.Int64
}

type heldRange struct {
	off  int64
	data []byte
}

// hold serves reads of id within [off, off+len(data)) from data until
// release is called.
func (h *heldRanges) hold(id blob.ID, off int64, data []byte) (release func()) {
	r := &heldRange{off: off, data: data}
	h.mu.Lock()
	if h.m == nil {
		h.m = map[blob.ID][]*heldRange{}
	}
	h.m[id] = append(h.m[id], r)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		rs := h.m[id]
		for i, x := range rs {
			if x == r {
				rs = append(rs[:i], rs[i+1:]...)
				break
			}
		}
		if len(rs) == 0 {
			delete(h.m, id)
		} else {
			h.m[id] = rs
		}
	}
}

// read writes [off, off+length) of id to out if a held range covers it.
func (h *heldRanges) read(id blob.ID, off, length int64, out blob.OutputBuffer) (bool, error) {
	if h == nil || off < 0 || length < 0 {
		return false, nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, r := range h.m[id] {
		if off >= r.off && off+length <= r.off+int64(len(r.data)) {
			out.Reset()
			_, err := out.Write(r.data[off-r.off : off-r.off+length])
			h.served.Add(1)
			return true, err
		}
	}
	return false, nil
}

// GetBlob implements blob.Storage: from a held range when one covers the
// read.
func (v kopiaView) GetBlob(ctx context.Context, id blob.ID, off, length int64, out blob.OutputBuffer) error {
	if ok, err := v.held.read(id, off, length, out); ok {
		return err
	}
	return v.Storage.GetBlob(ctx, id, off, length, out)
}
