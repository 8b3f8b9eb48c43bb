package repository

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Each open repository has a private directory in os.TempDir for kopia's
// connection config and maintenance lock. Close removes it; a process
// killed with SIGKILL cannot, so the next Close in any process removes the
// directories whose owner is gone. The owner holds an exclusive lock on
// ownerLock for the directory's life; the kernel drops it when the process
// dies, however it dies, and it is seen from every PID namespace sharing
// the directory, where a PID would not be.
const (
	configDirPrefix = "stash-repo-"
	ownerLock       = "owner.lock"
	// legacyAge is how old a directory without an owner lock must be to be
	// removed: one made before the locks were, or, for a moment, one whose
	// owner has not locked it yet.
	legacyAge = 24 * time.Hour
)

// newConfigDir makes a private directory and locks it for this process.
// The lock is made under another name and renamed into place once held,
// so that a sweeping process never finds ownerLock unlocked while its
// owner lives.
func newConfigDir() (dir string, lock *os.File, err error) {
	dir, err = os.MkdirTemp("", configDirPrefix)
	if err != nil {
		return "", nil, err
	}
	lock, err = lockOwner(dir)
	if err != nil {
		os.RemoveAll(dir) //nolint:errcheck
		return "", nil, err
	}
	return dir, lock, nil
}

// sweepConfigDirs removes the directories of owners that are gone. Errors
// are ignored: another user's directory is not ours to remove, and a
// directory left behind holds no secret (see open).
func sweepConfigDirs(now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), configDirPrefix+"*"))
	for _, d := range dirs {
		if ownerGone(d, now) {
			os.RemoveAll(d) //nolint:errcheck
		}
	}
}

func ownerGone(dir string, now time.Time) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	held, err := ownerLockHeld(filepath.Join(dir, ownerLock))
	if errors.Is(err, fs.ErrNotExist) {
		return now.Sub(fi.ModTime()) > legacyAge
	}
	return err == nil && !held
}
