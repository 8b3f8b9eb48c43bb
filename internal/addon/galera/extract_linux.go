package galera

import (
	"os"

	"golang.org/x/sys/unix"
)

// dontNeed tells the kernel f's cached pages will not be read again: it
// starts writing back those that are dirty and frees those already
// written. Advice only: an error changes nothing the extraction relies on.
func dontNeed(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
