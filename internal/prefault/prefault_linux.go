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

// MinorFaults returns the minor page faults the process has taken so far:
// what faulting in ahead moves off an allocation's path, so tests can
// tell whether it did.
func MinorFaults() (int64, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return ru.Minflt, nil
}
