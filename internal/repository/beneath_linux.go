package repository

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errNoOpenat2 means the kernel cannot resolve a path with openat2.
var errNoOpenat2 = errors.New("openat2 unavailable")

// openat2Beneath opens directory rel below dirfd, refusing to resolve
// through any symlink or out of dirfd (RESOLVE_BENEATH also refuses ".."
// that would climb above it), in one system call.
func openat2Beneath(dirfd int, rel string) (int, error) {
	fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	// ENOSYS: before Linux 5.6; EPERM: a seccomp profile without it.
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return -1, errNoOpenat2
	}
	return fd, err
}

// syncFilesystem flushes the filesystem holding fd to stable storage, once
// for a whole restore instead of once per file.
func syncFilesystem(fd int) error { return unix.Syncfs(fd) }
