//go:build !unix

package treeprint

import (
	"errors"
	"os"
	"path/filepath"
)

// list reads the entries of the directory at abs with os.Lstat, as
// kopia's local filesystem does. Owners are not known here, and are 0.
func list(abs string) (entries []Meta, complete bool, err error) {
	des, err := os.ReadDir(abs)
	if err != nil {
		return nil, false, err
	}
	complete = true
	for _, de := range des {
		fi, err := os.Lstat(filepath.Join(abs, de.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, false, err
		}
		m, ok := metaOfInfo(de.Name(), fi)
		if !ok {
			complete = false
			continue
		}
		entries = append(entries, m)
	}
	return entries, complete, nil
}

func lstatMeta(abs string) (Meta, error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return Meta{}, err
	}
	m, _ := metaOfInfo(abs, fi)
	return m, nil
}

func metaOfInfo(name string, fi os.FileInfo) (Meta, bool) {
	m, ok := metaOfMode(name, fi.Mode())
	if !ok {
		return Meta{}, false
	}
	if m.Kind != 'd' {
		m.Size = fi.Size()
	}
	m.MTime = fi.ModTime().UnixNano()
	return m, true
}
