//go:build unix

package repository

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// relinkResolved, when set (by tests), runs once a file's directory has
// been resolved and before its link is made: where another process could
// swap a directory of the target for a symlink.
var relinkResolved func(rel string)

// Relink makes each group of files a restore wrote under target (paths
// relative to it) hard links of the group's first file again. Only pass
// files the restore wrote: a file of the group it left out (by include or
// exclude) may exist in the target, and is not the restore's to replace.
// Each file's directory is opened beneath the target without following a
// symlink, and the link is made and renamed over the file relative to that
// descriptor, so a process writing in the target meanwhile cannot turn a
// checked directory into a way out. The link is made under a temporary
// name and renamed over the file, so a failure leaves the restored copy.
func Relink(target string, groups [][]string) error {
	root, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open restore target %s: %w", target, err)
	}
	defer unix.Close(root)
	for _, rels := range groups {
		if err := relinkGroup(root, rels); err != nil {
			return err
		}
	}
	return nil
}

func relinkGroup(root int, rels []string) error {
	firstDir, firstBase := -1, ""
	defer func() {
		if firstDir >= 0 {
			unix.Close(firstDir)
		}
	}()
	for _, rel := range rels {
		dir, base, ok := restoredFile(root, rel)
		if !ok {
			continue
		}
		if firstDir < 0 {
			firstDir, firstBase = dir, base
			continue
		}
		err := link(firstDir, firstBase, dir, base, rel)
		unix.Close(dir)
		if err != nil {
			return err
		}
	}
	return nil
}

func link(fromDir int, fromBase string, dir int, base, rel string) error {
	if relinkResolved != nil {
		relinkResolved(rel)
	}
	tmp := ".stash-link-" + base
	// Flags 0: linkat does not follow a symlink put in place of the
	// group's first file; it would link the symlink, inside the target.
	if err := unix.Linkat(fromDir, fromBase, dir, tmp, 0); err != nil {
		return fmt.Errorf("hard link %s: %w", rel, err)
	}
	if err := unix.Renameat(dir, tmp, dir, base); err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
		return fmt.Errorf("hard link %s: %w", rel, err)
	}
	return nil
}

// restoredFile opens rel's directory beneath root without following a
// symlink and reports whether rel is a regular file in it; the caller
// closes the descriptor.
func restoredFile(root int, rel string) (int, string, bool) {
	d, base := split(rel)
	if base == "" || base == "." || base == ".." {
		return -1, "", false
	}
	dir, err := openBeneath(root, d)
	if err != nil {
		return -1, "", false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(dir)
		return -1, "", false
	}
	return dir, base, true
}

// openBeneath opens directory rel ("" for root itself) below root without
// following a symlink: openat2 where the kernel has it, else one O_NOFOLLOW
// component at a time.
func openBeneath(root int, rel string) (int, error) {
	if rel == "" {
		return unix.Dup(root)
	}
	if !noOpenat2.Load() {
		fd, err := openat2Beneath(root, rel)
		if !errors.Is(err, errNoOpenat2) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	return walkBeneath(root, rel)
}
