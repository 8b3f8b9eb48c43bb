package repository

import (
	"os"

	"golang.org/x/sys/unix"
)

// canAdvise says adviseWillNeed does something here.
const canAdvise = true

// adviseWillNeed asks the kernel to read a file's range into the page cache
// in the background.
func adviseWillNeed(path string, off, n int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
	f.Close()
}
