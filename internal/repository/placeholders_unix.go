//go:build unix

package repository

import (
	"os"
	"syscall"

	"github.com/kopia/kopia/fs"
)

func ownerOf(fi os.FileInfo) fs.OwnerInfo {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fs.OwnerInfo{UserID: st.Uid, GroupID: st.Gid}
	}
	return fs.OwnerInfo{}
}

func deviceOf(fi os.FileInfo) fs.DeviceInfo {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fs.DeviceInfo{Dev: uint64(st.Dev), Rdev: uint64(st.Rdev)} //nolint:unconvert // int32 on some platforms
	}
	return fs.DeviceInfo{}
}
