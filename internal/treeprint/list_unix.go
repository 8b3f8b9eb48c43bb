//go:build unix

package treeprint

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// list reads the entries of the directory at abs, each with an lstat
// relative to the directory's descriptor (no walk of the whole path per
// entry). complete is false when an entry is of a kind a print does not
// vouch for.
func list(abs string) (entries []Meta, complete bool, err error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, false, err
	}
	defer f.Close() //nolint:errcheck
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, false, err
	}
	fd := int(f.Fd())
	complete = true
	entries = make([]Meta, 0, len(names))
	var st unix.Stat_t
	for _, name := range names {
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, false, err
		}
		m, ok := metaOfStat(name, &st)
		if !ok {
			complete = false
			continue
		}
		entries = append(entries, m)
	}
	return entries, complete, nil
}

func lstatMeta(abs string) (Meta, error) {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return Meta{}, &os.PathError{Op: "lstat", Path: abs, Err: err}
	}
	m, _ := metaOfStat(abs, &st)
	return m, nil
}

// metaOfStat converts st as os.Lstat and kopia's local filesystem do:
// the mode as os.FileMode, a directory's size as 0.
func metaOfStat(name string, st *unix.Stat_t) (Meta, bool) {
	mode := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFREG:
	default:
		mode |= os.ModeIrregular
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	m, ok := metaOfMode(name, mode)
	if !ok {
		return Meta{}, false
	}
	if m.Kind != 'd' {
		m.Size = st.Size
	}
	m.MTime = st.Mtim.Sec*1e9 + st.Mtim.Nsec
	m.UID, m.GID = st.Uid, st.Gid
	m.Dev, m.Rdev = uint64(st.Dev), uint64(st.Rdev) //nolint:unconvert // narrower on some platforms
	return m, true
}
