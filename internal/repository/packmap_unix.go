//go:build unix

package repository

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// canMap says withMappedRange maps files here.
const canMap = true

// withMappedRange calls use with the n bytes at off of the file at path,
// mapped read-only, and unmaps them when use returns. A range past the
// file's end is refused; a fault while use reads the mapping (the file was
// cut short meanwhile) is returned as errMappingFault instead of crashing
// the process.
func withMappedRange(path string, off, n int64, use func([]byte) error) (err error) {
	if off < 0 || n <= 0 {
		return fmt.Errorf("map %s: bad range %d+%d", path, off, n)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() < off || fi.Size()-off < n {
		return fmt.Errorf("map %s: %w: %d bytes at %d, the file has %d", path, errShortFile, n, off, fi.Size())
	}
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	m, err := unix.Mmap(int(f.Fd()), start, int(off-start+n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	defer func() {
		if uerr := unix.Munmap(m); uerr != nil && err == nil {
			err = fmt.Errorf("unmap %s: %w", path, uerr)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	// Deferred after the line above, so run before it: a fault becomes
	// this function's error, then the goroutine's setting is restored and
	// the range unmapped.
	defer func() {
		if p := recover(); p != nil {
			// Only a fault inside the mapping is the file's doing; any
			// other is a bug, and crashes as it would have.
			fault, ok := p.(interface{ Addr() uintptr })
			base := uintptr(unsafe.Pointer(&m[0]))
			if !ok || fault.Addr() < base || fault.Addr()-base >= uintptr(len(m)) {
				panic(p)
			}
			err = fmt.Errorf("map %s: %w", path, errMappingFault)
		}
	}()
	return use(m[off-start:])
}

var (
	// errShortFile is a range that lies past its file's end.
	errShortFile = errors.New("range past the end of the file")
	// errMappingFault is a mapped range that could not be read.
	errMappingFault = errors.New("fault reading the mapped range (the file changed while it was read)")
)
