//go:build unix && !linux

package repository

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errNoOpenat2 means the kernel cannot resolve a path with openat2.
var errNoOpenat2 = errors.New("openat2 unavailable")

// openat2Beneath is Linux's; elsewhere the restore walks the path one
// O_NOFOLLOW component at a time.
func openat2Beneath(int, string) (int, error) { return -1, errNoOpenat2 }

// syncFilesystem flushes every filesystem (there is no syncfs here).
func syncFilesystem(int) error {
	unix.Sync()
	return nil
}
