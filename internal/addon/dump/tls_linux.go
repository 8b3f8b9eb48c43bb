package dump

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memFiles says memFile can make memory files here.
const memFiles = true

// memFile returns data in a memory file (memfd) with mode 0600 and a path
// the tools this process starts can open while f stays open:
// /proc/<pid>/fd/<n>. Each open of that path reads the file from its
// start, as a client reading its key for every connection needs.
func memFile(name string, data []byte) (f *os.File, path string, err error) {
	fd, err := unix.MemfdCreate("stash-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, "", fmt.Errorf("memory file for %s: %w", name, err)
	}
	f = os.NewFile(uintptr(fd), name)
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return nil, "", err
	}
	if _, err := f.Write(data); err != nil {
		return nil, "", err
	}
	path = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	// Where /proc is not mounted the tools could not open it either.
	if _, err := os.Stat(path); err != nil {
		return nil, "", err
	}
	return f, path, nil
}
