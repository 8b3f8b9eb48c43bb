//go:build !unix

package repository

import (
	"os"

	"github.com/kopia/kopia/fs"
)

func ownerOf(os.FileInfo) fs.OwnerInfo   { return fs.OwnerInfo{} }
func deviceOf(os.FileInfo) fs.DeviceInfo { return fs.DeviceInfo{} }
