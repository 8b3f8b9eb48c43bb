package prefault

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate maps buf's whole pages writable in one madvise. Kernels before
// 5.14 refuse MADV_POPULATE_WRITE; touching the pages then does it all.
func populate(buf []byte) {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	first := (start + pageSize - 1) &^ (pageSize - 1)
	last := (start + uintptr(len(buf))) &^ (pageSize - 1)
	if last <= first {
		return
	}
	_ = unix.Madvise(buf[first-start:last-start], unix.MADV_POPULATE_WRITE)
}
